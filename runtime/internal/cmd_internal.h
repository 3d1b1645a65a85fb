/*
** cmd_internal.h: the command frame and the entry points into it that the context,
** transfers and profiling use (cmd.c). Runtime-internal (L3): nothing above runtime/
** includes it.
*/
#ifndef RF_RUNTIME_CMD_INTERNAL_H
#define RF_RUNTIME_CMD_INTERNAL_H

#include <vulkan/vulkan.h>
#include "cmd.h"
#include "memory_internal.h"

#define RF_FRAMES 2
#define RF_MAX_BINDINGS 12
#define RF_PUSH_BYTES 128
#define RF_QUERIES_PER_FRAME 4096

/* A byte range of one block touched since the last barrier, and whether it was written. */
struct rf_range {
	const struct rf_block *block;
	uint64_t begin, end;
	bool write;
};

/* One command buffer with everything its recording needs; two frames let the host
** record one batch while the device runs the other. */
struct rf_frame {
	VkCommandBuffer cmd;
	VkFence fence;
	bool recording, submitted;
	uint32_t dispatches;
	VkDescriptorPool *pools;
	uint32_t npools, pool_cap, pool_used;
	/* Accesses since the last barrier. A fixed array, so that recording one can never
	** fail: when it is full, a full barrier empties it. */
	struct rf_range tracked[RF_CMD_TRACKED_RANGES];
	uint32_t ntracked;
	struct rf_staging staging;
	VkQueryPool queries;
	uint32_t nqueries;
	const char *labels[RF_QUERIES_PER_FRAME / 2];
	/* Downloads waiting for this frame to finish: copy staging -> host pointer. */
	struct rf_pending_download { void *dst; uint64_t staging_offset, size; } *downloads;
	uint32_t ndownloads, download_cap;
};

enum rf_status rf_frames_init(rf_ctx *ctx);
void rf_frames_fini(rf_ctx *ctx);
/* rf_ctx_submit and rf_ctx_finish (context.h) are these. */
enum rf_status rf_frames_submit(rf_ctx *ctx);
enum rf_status rf_frames_finish(rf_ctx *ctx);

/* The current frame, begun (waited for and reset) if it was not recording yet. */
enum rf_status rf_frame_begin(rf_ctx *ctx, struct rf_frame **out);

/* Records a barrier first if any of the n accesses conflicts with one since the last
** barrier (read after write, write after read or write), then remembers them. n must
** not exceed RF_CMD_TRACKED_RANGES. Cannot fail. */
void rf_frame_track(rf_ctx *ctx, struct rf_frame *f, const struct rf_range *ranges, uint32_t n);

static inline struct rf_range rf_range_of(const struct rf_mem *m, uint64_t offset, uint64_t size,
					  bool write)
{
	return (struct rf_range){ m->block, m->offset + offset, m->offset + offset + size, write };
}

#endif
