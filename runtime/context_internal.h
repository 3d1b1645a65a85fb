/*
** context_internal.h: the layout of rf_ctx and of its command frames, shared by the
** runtime files that implement it (context.c, memory.c, cmd.c, pipeline.c).
** Runtime-internal (L1): nothing above runtime/ includes it.
*/
#ifndef RF_RUNTIME_CONTEXT_INTERNAL_H
#define RF_RUNTIME_CONTEXT_INTERNAL_H

#include <vulkan/vulkan.h>
#include "context.h"
#include "device_internal.h"
#include "memory.h"

#define RF_FRAMES 2
#define RF_MAX_BINDINGS 12
#define RF_PUSH_BYTES 128
#define RF_QUERIES_PER_FRAME 4096

/* A byte range of one block touched since the last barrier. */
struct rf_range {
	const struct rf_block *block;
	uint64_t begin, end;
};

struct rf_range_list {
	struct rf_range *items;
	uint32_t count, cap;
};

/* Host-visible scratch that carries uploads and downloads of one frame. */
struct rf_staging {
	VkBuffer buffer;
	VkDeviceMemory memory;
	void *map;
	uint64_t size, used;
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
	struct rf_range_list reads, writes;    /* since the last barrier */
	struct rf_staging staging;
	VkQueryPool queries;
	uint32_t nqueries;
	const char *labels[RF_QUERIES_PER_FRAME / 2];
	/* Downloads waiting for this frame to finish: copy staging -> host pointer. */
	struct rf_pending_download { void *dst; uint64_t staging_offset, size; } *downloads;
	uint32_t ndownloads, download_cap;
};

struct rf_profile_slot {
	const char *name;
	uint64_t dispatches;
	double total_ns;
};

struct rf_ctx {
	int refcount;
	struct rf_instance inst;
	VkPhysicalDevice physical;
	VkDevice device;
	VkQueue queue;
	uint32_t queue_family;
	struct rf_caps caps;
	bool lost;

	/* memory.c */
	uint32_t device_memory_type;
	uint32_t host_memory_type;
	struct rf_block **blocks;
	uint32_t nblocks, block_cap;
	uint64_t block_size;
	struct rf_mem_stats mem_stats;

	/* pipeline.c */
	VkPipelineCache pipeline_cache;
	struct rf_pipeline *pipelines;        /* singly linked */
	struct rf_set_layout *set_layouts;     /* singly linked, one per binding signature */

	/* cmd.c */
	VkCommandPool command_pool;
	struct rf_frame frames[RF_FRAMES];
	uint32_t current;
	bool profile;
	struct rf_profile_slot *profile_slots;
	uint32_t nprofile, profile_cap;
};

/* Marks the device lost if `r` says so; returns the status for `r`. */
enum rf_status rf_ctx_vk_fail(rf_ctx *ctx, VkResult r, const char *what);

/* memory.c */
enum rf_status rf_memory_init(rf_ctx *ctx);
void rf_memory_fini(rf_ctx *ctx);
/* Frees blocks that hold no allocation; only when the device is idle. */
void rf_memory_trim(rf_ctx *ctx);
VkBuffer rf_block_buffer(const struct rf_block *b);
/* The texel view of a whole block in the given format, created on first use. */
enum rf_status rf_block_view(rf_ctx *ctx, struct rf_block *b, VkFormat format, VkBufferView *out);
enum rf_status rf_staging_reserve(rf_ctx *ctx, struct rf_staging *st, uint64_t need);
void rf_staging_destroy(rf_ctx *ctx, struct rf_staging *st);

/* cmd.c */
enum rf_status rf_frames_init(rf_ctx *ctx);
void rf_frames_fini(rf_ctx *ctx);

/* pipeline.c */
void rf_pipelines_fini(rf_ctx *ctx);

#endif
