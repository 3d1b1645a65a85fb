/*
** memory.h: device memory suballocated from large blocks (never one VkDeviceMemory per
** tensor), and the copies between host and device. Each block is one VkBuffer; a
** suballocation is a byte range of it, bound as a range no larger than the device's
** maxStorageBufferRange. Runtime layer (L2).
*/
#ifndef RF_RUNTIME_MEMORY_H
#define RF_RUNTIME_MEMORY_H

#include "rf_base.h"

typedef struct rf_ctx rf_ctx;
struct rf_block;

/* A suballocation: `size` bytes at `offset` inside `block`. Plain value; the zero value
** is "no memory". Offsets are aligned for storage and texel bindings (256 bytes). */
struct rf_mem {
	struct rf_block *block;
	uint64_t offset;
	uint64_t size;
};

#define RF_MEM_ALIGN 256

/* Allocates `size` bytes of device memory (contents undefined). RF_ERR_OOM_DEVICE when
** the heap budget would be exceeded; the message gives the sizes. */
enum rf_status rf_mem_alloc(rf_ctx *ctx, uint64_t size, struct rf_mem *out);
/* Returns the memory to its block. Work already recorded that uses it stays correct:
** reuse of the range by a later dispatch is ordered by a barrier. NULL block ok. */
void rf_mem_free(rf_ctx *ctx, struct rf_mem *m);

/* Records a host-to-device copy into the current command frame: `data` is copied to
** staging before returning, so the caller may reuse it at once. */
enum rf_status rf_mem_upload(rf_ctx *ctx, const struct rf_mem *m, uint64_t offset,
			     const void *data, uint64_t size);
/* Copies device memory to the host: submits pending work and waits for it. */
enum rf_status rf_mem_download(rf_ctx *ctx, const struct rf_mem *m, uint64_t offset,
			       void *data, uint64_t size);
/* Records a fill of `size` bytes at `offset` with a 32-bit pattern (0 for zeros). */
enum rf_status rf_mem_fill(rf_ctx *ctx, const struct rf_mem *m, uint64_t offset,
			   uint64_t size, uint32_t pattern);
/* Records a device-to-device copy. */
enum rf_status rf_mem_copy(rf_ctx *ctx, const struct rf_mem *src, uint64_t src_offset,
			   const struct rf_mem *dst, uint64_t dst_offset, uint64_t size);

#endif
