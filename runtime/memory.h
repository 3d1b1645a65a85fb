/*
** memory.h: device memory suballocated from large blocks (never one VkDeviceMemory per
** tensor), and its statistics; copies are in transfer.h. Each block is one VkBuffer; a
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

/* Host access to device memory, where the device's memory is host-visible and coherent
** (CPU devices such as lavapipe, some integrated GPUs): rf_mem_mappable says whether it
** is, rf_mem_host_ptr gives a pointer to `m`'s first byte (its block stays mapped while
** it lives; RF_ERR_UNSUPPORTED where the memory is not host-visible). The caller orders
** host and device access: rf_ctx_finish before touching memory that recorded work uses;
** what the host writes is seen by work recorded after it. */
bool rf_mem_mappable(const rf_ctx *ctx);
enum rf_status rf_mem_host_ptr(rf_ctx *ctx, const struct rf_mem *m, void **out);

struct rf_mem_stats {
	uint64_t in_use;        /* bytes of live suballocations */
	uint64_t peak;          /* high-water mark of in_use since the last reset */
	uint64_t reserved;      /* bytes of VkDeviceMemory blocks held */
	uint64_t allocations;   /* live suballocations */
};
void rf_ctx_memory_stats(const rf_ctx *ctx, struct rf_mem_stats *out);
void rf_ctx_memory_reset_peak(rf_ctx *ctx);

/* Fault injection for tests: the n-th device allocation from now (counting from 0: every
** rf_mem_alloc, and every Vulkan memory allocation behind a block or a staging buffer, in
** any context) fails as if the device were out of
** memory, and so does every later one until the hook is reset with n = -1 (the default).
** Returns how many allocations were made since the previous call, so a test can count
** the allocations of a run first and then fail each in turn. */
int64_t rf_mem_fail_device_alloc_at(int64_t n);

#endif
