/*
** pipeline_internal.h: the pipeline record, shared by pipeline.c and cmd.c, and the
** context's teardown of its pipelines. Runtime-internal (L3): nothing above runtime/
** includes it.
*/
#ifndef RF_RUNTIME_PIPELINE_INTERNAL_H
#define RF_RUNTIME_PIPELINE_INTERNAL_H

#include <vulkan/vulkan.h>
#include "pipeline.h"

struct rf_set_layout;

struct rf_pipeline {
	rf_pipeline *next;
	const struct rf_shader *shader;
	uint32_t spec[RF_MAX_SPEC];
	uint32_t nspec;
	struct rf_set_layout *layout;
	VkPipeline pipeline;
	uint32_t push_size;      /* bytes of the shader's push-constant block (from its SPIR-V) */
};

VkDescriptorType rf_binding_type(char letter);
VkDescriptorSetLayout rf_layout_set(const struct rf_set_layout *l);
VkPipelineLayout rf_layout_pipeline(const struct rf_set_layout *l);
/* Destroys every pipeline and layout of the context. */
void rf_pipelines_fini(rf_ctx *ctx);

#endif
