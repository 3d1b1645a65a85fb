/*
** pipeline.c: descriptor-set layouts keyed by binding signature, and compute pipelines
** keyed by (shader, specialization constants). Runtime layer (L3).
*/
#include "pipeline.h"
#include "pipeline_internal.h"
#include "context_internal.h"
#include "spirv.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rf_set_layout {
	struct rf_set_layout *next;
	char signature[RF_MAX_BINDINGS + 1];
	VkDescriptorSetLayout set_layout;
	VkPipelineLayout pipeline_layout;
};

VkDescriptorType rf_binding_type(char letter)
{
	return (letter == 'r' || letter == 'w') ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
						: VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
}

static enum rf_status get_layout(rf_ctx *ctx, const char *signature, struct rf_set_layout **out)
{
	for (struct rf_set_layout *l = ctx->set_layouts; l; l = l->next)
		if (!strcmp(l->signature, signature)) {
			*out = l;
			return RF_OK;
		}
	size_t n = strlen(signature);
	if (n == 0 || n > RF_MAX_BINDINGS || strspn(signature, "rwthf") != n)
		return rf_error(RF_ERR_INVALID, "bad binding signature \"%s\"", signature);
	struct rf_set_layout *l = calloc(1, sizeof *l);
	if (!l)
		return rf_error(RF_ERR_OOM_HOST, "allocating a descriptor layout");
	memcpy(l->signature, signature, n + 1);
	VkDescriptorSetLayoutBinding bindings[RF_MAX_BINDINGS];
	for (size_t i = 0; i < n; i++)
		bindings[i] = (VkDescriptorSetLayoutBinding){
			.binding = (uint32_t)i,
			.descriptorType = rf_binding_type(signature[i]),
			.descriptorCount = 1,
			.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		};
	VkDescriptorSetLayoutCreateInfo set_info = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
		.bindingCount = (uint32_t)n,
		.pBindings = bindings,
	};
	VkResult r = vkCreateDescriptorSetLayout(ctx->device, &set_info, NULL, &l->set_layout);
	if (r != VK_SUCCESS) {
		free(l);
		return rf_ctx_vk_fail(ctx, r, "creating a descriptor set layout");
	}
	VkPushConstantRange push = {
		.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		.offset = 0,
		.size = RF_PUSH_BYTES,
	};
	VkPipelineLayoutCreateInfo layout_info = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
		.setLayoutCount = 1,
		.pSetLayouts = &l->set_layout,
		.pushConstantRangeCount = 1,
		.pPushConstantRanges = &push,
	};
	r = vkCreatePipelineLayout(ctx->device, &layout_info, NULL, &l->pipeline_layout);
	if (r != VK_SUCCESS) {
		vkDestroyDescriptorSetLayout(ctx->device, l->set_layout, NULL);
		free(l);
		return rf_ctx_vk_fail(ctx, r, "creating a pipeline layout");
	}
	l->next = ctx->set_layouts;
	ctx->set_layouts = l;
	*out = l;
	return RF_OK;
}

static enum rf_status build(rf_ctx *ctx, rf_pipeline *p)
{
	VkShaderModuleCreateInfo module_info = {
		.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
		.codeSize = p->shader->code_size,
		.pCode = p->shader->code,
	};
	VkShaderModule module;
	VkResult r = vkCreateShaderModule(ctx->device, &module_info, NULL, &module);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "creating a shader module");
	VkSpecializationMapEntry entries[RF_MAX_SPEC];
	for (uint32_t i = 0; i < p->nspec; i++)
		entries[i] = (VkSpecializationMapEntry){ i, i * 4, 4 };
	VkSpecializationInfo spec = {
		.mapEntryCount = p->nspec,
		.pMapEntries = entries,
		.dataSize = p->nspec * 4,
		.pData = p->spec,
	};
	VkComputePipelineCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.stage = {
			.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
			.stage = VK_SHADER_STAGE_COMPUTE_BIT,
			.module = module,
			.pName = "main",
			.pSpecializationInfo = p->nspec ? &spec : NULL,
		},
		.layout = p->layout->pipeline_layout,
	};
	r = vkCreateComputePipelines(ctx->device, ctx->pipeline_cache, 1, &info, NULL, &p->pipeline);
	vkDestroyShaderModule(ctx->device, module, NULL);
	if (r != VK_SUCCESS) {
		char what[128];
		snprintf(what, sizeof what, "building the compute pipeline '%s'", p->shader->name);
		return rf_ctx_vk_fail(ctx, r, what);
	}
	return RF_OK;
}

enum rf_status rf_pipeline_get(rf_ctx *ctx, const struct rf_shader *shader,
			       const uint32_t *spec, uint32_t nspec, rf_pipeline **out)
{
	RF_ASSERT(nspec <= RF_MAX_SPEC);
	for (rf_pipeline *p = ctx->pipelines; p; p = p->next)
		if (p->shader == shader && p->nspec == nspec &&
		    (nspec == 0 || !memcmp(p->spec, spec, nspec * 4))) {
			*out = p;
			return RF_OK;
		}
	rf_pipeline *p = calloc(1, sizeof *p);
	if (!p)
		return rf_error(RF_ERR_OOM_HOST, "allocating a pipeline record");
	p->shader = shader;
	p->nspec = nspec;
	if (nspec)
		memcpy(p->spec, spec, nspec * 4);
	enum rf_status s = rf_spirv_push_size(shader->code, shader->code_size, shader->name, &p->push_size);
	if (s == RF_OK && p->push_size > RF_PUSH_BYTES)
		s = rf_error(RF_ERR_INTERNAL, "shader '%s': its push-constant block has %u bytes, more "
			     "than the %d every pipeline layout provides", shader->name, p->push_size,
			     RF_PUSH_BYTES);
	if (s == RF_OK)
		s = get_layout(ctx, shader->signature, &p->layout);
	if (s == RF_OK)
		s = build(ctx, p);
	if (s != RF_OK) {
		free(p);
		return s;
	}
	p->next = ctx->pipelines;
	ctx->pipelines = p;
	*out = p;
	return RF_OK;
}

const struct rf_shader *rf_pipeline_shader(const rf_pipeline *p)
{
	return p->shader;
}

uint32_t rf_pipeline_push_size(const rf_pipeline *p)
{
	return p->push_size;
}

void rf_pipelines_fini(rf_ctx *ctx)
{
	while (ctx->pipelines) {
		rf_pipeline *p = ctx->pipelines;
		ctx->pipelines = p->next;
		vkDestroyPipeline(ctx->device, p->pipeline, NULL);
		free(p);
	}
	while (ctx->set_layouts) {
		struct rf_set_layout *l = ctx->set_layouts;
		ctx->set_layouts = l->next;
		vkDestroyPipelineLayout(ctx->device, l->pipeline_layout, NULL);
		vkDestroyDescriptorSetLayout(ctx->device, l->set_layout, NULL);
		free(l);
	}
	if (ctx->pipeline_cache)
		vkDestroyPipelineCache(ctx->device, ctx->pipeline_cache, NULL);
	ctx->pipeline_cache = VK_NULL_HANDLE;
}

VkDescriptorSetLayout rf_layout_set(const struct rf_set_layout *l)
{
	return l->set_layout;
}

VkPipelineLayout rf_layout_pipeline(const struct rf_set_layout *l)
{
	return l->pipeline_layout;
}
