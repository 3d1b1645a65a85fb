/*
** shader_table.h: the embedded SPIR-V of every kernel, indexed by enum rf_shader_id.
** The enum is generated from compute/shaders.cmake. Internal to compute/ops.
** Compute layer (L4).
*/
#ifndef RF_COMPUTE_SHADER_TABLE_H
#define RF_COMPUTE_SHADER_TABLE_H

#include "pipeline.h"

enum rf_shader_id {
#define X(name, sig) RF_SHADER_##name,
#include "shader_rows.inc"
#undef X
	RF_SHADER_COUNT
};

const struct rf_shader *rf_shader(enum rf_shader_id id);

#endif
