/*
** spirv.h: what refract reads from a SPIR-V module itself rather than trusting a number
** kept by hand: the size of its push-constant block, so that every dispatch can check
** that the launcher's C struct is exactly the shader's block. Runtime layer (L3).
*/
#ifndef RF_RUNTIME_SPIRV_H
#define RF_RUNTIME_SPIRV_H

#include "rf_base.h"

/* Bytes the module's push-constant block spans (the largest member offset plus that
** member's size, as the block's Offset and ArrayStride decorations lay it out); 0 when
** the module has no push constants. RF_ERR_FORMAT, naming `name`, for a module that is
** not SPIR-V or a block member of a kind push constants here never use (matrices,
** runtime arrays, pointers). */
enum rf_status rf_spirv_push_size(const uint32_t *code, size_t bytes, const char *name,
				  uint32_t *out);

#endif
