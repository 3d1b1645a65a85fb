/*
** cmd.h: recording compute dispatches into the context's current command frame. Many
** dispatches share one submit; the barrier a dispatch or transfer needs (read after
** write, write after read or write on an overlapping byte range) is inserted here,
** automatically. Runtime layer (L3).
*/
#ifndef RF_RUNTIME_CMD_H
#define RF_RUNTIME_CMD_H

#include "rf_base.h"
#include "memory.h"
#include "pipeline.h"

/* One binding: `size` bytes at `offset` inside the suballocation `mem`. For texel
** bindings ('t', 'h', 'f') the whole block's view is bound and the shader must add the
** element offset itself: rf_arg_texel_index() gives it (the range is still what the
** barrier tracker sees and what is checked against the view's limit). */
struct rf_arg {
	const struct rf_mem *mem;
	uint64_t offset;
	uint64_t size;
};

static inline struct rf_arg rf_arg_whole(const struct rf_mem *m)
{
	return (struct rf_arg){ m, 0, m->size };
}

/* Index of the arg's first element in a texel view of `texel_bytes`-sized texels
** (16 for rgba32f, 8 for rgba16f, 4 for r32f). */
uint32_t rf_arg_texel_index(const struct rf_arg *a, uint32_t texel_bytes);

/* Records one dispatch of `p` with bindings args[0..nargs) (nargs must equal the length
** of the shader's signature), `push_size` bytes of push constants (exactly the size of
** the shader's block, rf_pipeline_push_size: RF_ERR_INTERNAL otherwise, since a launcher
** whose struct differs from the GLSL block would pass wrong values) and the given
** workgroup counts. Storage bindings must start on the device's storage alignment and be
** no larger than maxStorageBufferRange: RF_ERR_UNSUPPORTED otherwise. */
enum rf_status rf_cmd_dispatch(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
			       uint32_t nargs, const void *push, uint32_t push_size,
			       uint32_t gx, uint32_t gy, uint32_t gz);

/* How many accesses a frame remembers between barriers; one more forces a full barrier
** (correct, only less precise). */
#define RF_CMD_TRACKED_RANGES 256

/* Pipeline barriers recorded on `ctx` so far: lets tests see that the tracker ordered
** what it must (a barrier between every write and a later access to the same bytes). */
uint64_t rf_cmd_barriers(const rf_ctx *ctx);

#endif
