/*
** pipeline.h: compute pipelines built from embedded SPIR-V with specialization constants,
** cached per (shader, constants) for the life of the context. Runtime layer (L3).
*/
#ifndef RF_RUNTIME_PIPELINE_H
#define RF_RUNTIME_PIPELINE_H

#include "rf_base.h"

typedef struct rf_ctx rf_ctx;
typedef struct rf_pipeline rf_pipeline;

/* An embedded shader. `signature` has one letter per binding (set 0, binding i = the
** i-th letter), which fixes the descriptor type and how the barrier tracker sees it:
**   'r'  storage buffer the shader only reads
**   'w'  storage buffer the shader writes (and may read)
**   't'  uniform texel buffer, rgba32f view (4 floats per texel)
**   'h'  uniform texel buffer, rgba16f view (4 halves per texel)
**   'f'  uniform texel buffer, r32f view (1 float per texel)
** Every pipeline has a 128-byte push-constant range; a dispatch must pass exactly as many
** bytes as the shader's push-constant block spans (rf_pipeline_push_size). */
struct rf_shader {
	const char *name;
	const uint32_t *code;
	size_t code_size;    /* bytes */
	const char *signature;
};

#define RF_MAX_SPEC 16

/* Returns the pipeline for `shader` with specialization constants 0..nspec-1 set to
** spec[i] (floats are passed bit-cast). Built once, then cached. */
enum rf_status rf_pipeline_get(rf_ctx *ctx, const struct rf_shader *shader,
			       const uint32_t *spec, uint32_t nspec, rf_pipeline **out);

const struct rf_shader *rf_pipeline_shader(const rf_pipeline *p);
/* Bytes of the shader's push-constant block, read from its SPIR-V (0: none). */
uint32_t rf_pipeline_push_size(const rf_pipeline *p);

#endif
