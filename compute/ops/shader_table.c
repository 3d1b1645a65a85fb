/*
** shader_table.c: the one translation unit that includes the generated SPIR-V headers
** (each defines a non-static array, so a second includer would duplicate it).
** Compute layer (L4).
*/
#include <stdint.h>
#include "shader_table.h"

#include "shader_includes.inc"

static const struct rf_shader table[RF_SHADER_COUNT] = {
#define X(name, sig) [RF_SHADER_##name] = { #name, name##_spv, sizeof name##_spv, sig },
#include "shader_rows.inc"
#undef X
};

const struct rf_shader *rf_shader(enum rf_shader_id id)
{
	return &table[id];
}
