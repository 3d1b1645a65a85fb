/*
** memory_internal.h: what the rest of runtime/ needs from memory.c: the context's memory
** setup, a block's VkBuffer and texel views, and host-visible staging.
** Runtime-internal (L2): nothing above runtime/ includes it.
*/
#ifndef RF_RUNTIME_MEMORY_INTERNAL_H
#define RF_RUNTIME_MEMORY_INTERNAL_H

#include <vulkan/vulkan.h>
#include "memory.h"

/* Host-visible scratch that carries uploads and downloads of one frame. */
struct rf_staging {
	VkBuffer buffer;
	VkDeviceMemory memory;
	void *map;
	uint64_t size, used;
};

enum rf_status rf_memory_init(rf_ctx *ctx);
void rf_memory_fini(rf_ctx *ctx);
/* Frees blocks that hold no allocation; only when the device is idle. */
void rf_memory_trim(rf_ctx *ctx);
VkBuffer rf_block_buffer(const struct rf_block *b);
/* The texel view of a whole block in the given format, created on first use. */
enum rf_status rf_block_view(rf_ctx *ctx, struct rf_block *b, VkFormat format, VkBufferView *out);
enum rf_status rf_staging_reserve(rf_ctx *ctx, struct rf_staging *st, uint64_t need);
void rf_staging_destroy(rf_ctx *ctx, struct rf_staging *st);

#endif
