/*
** memory.c: device memory blocks and the first-fit suballocator inside each, texel views
** of whole blocks, and host-visible staging buffers. Runtime layer (L2).
**
** Each block is one VkDeviceMemory bound to one VkBuffer. A suballocation binds a range
** of that buffer; texel-buffer kernels read through one view of the whole block and get
** their element offset in push constants, so no view is ever made per tensor.
*/
#include "context_internal.h"
#include "status.h"
#include "log.h"
#include "vkcheck.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RF_BLOCK_DEFAULT (256ull << 20)
#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

struct rf_free_range {
	uint64_t offset, size;
};

struct rf_block {
	VkDeviceMemory memory;
	VkBuffer buffer;
	uint64_t size;
	VkBufferView view_f32x4, view_f16x4, view_f32;
	void *map;                    /* the whole block mapped, on first rf_mem_host_ptr */
	struct rf_free_range *free;   /* sorted by offset, never adjacent */
	uint32_t nfree, free_cap;
	uint32_t live;                /* suballocations in this block */
};

/* {===== memory types */

static bool find_memory_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits,
			     VkMemoryPropertyFlags want, uint32_t *out)
{
	for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
		if ((bits & (1u << t)) && (mp->memoryTypes[t].propertyFlags & want) == want) {
			*out = t;
			return true;
		}
	return false;
}

static VkBufferUsageFlags block_usage(void)
{
	return VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
	       VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
}

/* {===== fault injection (rf_mem_fail_device_alloc_at) */

static _Atomic int64_t device_allocs_made;
static _Atomic int64_t device_alloc_fail_at = -1;

int64_t rf_mem_fail_device_alloc_at(int64_t n)
{
	atomic_store(&device_alloc_fail_at, n);
	return atomic_exchange(&device_allocs_made, 0);
}

/* Counts one allocation; whether the test hook makes it fail. */
static bool injected_failure(void)
{
	int64_t made = atomic_fetch_add(&device_allocs_made, 1);
	int64_t at = atomic_load(&device_alloc_fail_at);
	return at >= 0 && made >= at;
}

/* vkAllocateMemory, unless the test hook says this one fails. */
static VkResult allocate_memory(rf_ctx *ctx, const VkMemoryAllocateInfo *info, VkDeviceMemory *out)
{
	if (injected_failure())
		return VK_ERROR_OUT_OF_DEVICE_MEMORY;
	return vkAllocateMemory(ctx->device, info, NULL, out);
}

/* }===== */

enum rf_status rf_memory_init(rf_ctx *ctx)
{
	VkPhysicalDeviceMemoryProperties mp;
	vkGetPhysicalDeviceMemoryProperties(ctx->physical, &mp);
	/* Ask a probe buffer which memory types it accepts rather than guessing. */
	VkBufferCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = 4096,
		.usage = block_usage(),
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkBuffer probe;
	VkResult r = vkCreateBuffer(ctx->device, &info, NULL, &probe);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "creating a probe buffer");
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(ctx->device, probe, &req);
	vkDestroyBuffer(ctx->device, probe, NULL);

	if (!find_memory_type(&mp, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
			      &ctx->device_memory_type) &&
	    !find_memory_type(&mp, req.memoryTypeBits, 0, &ctx->device_memory_type))
		return rf_error(RF_ERR_UNSUPPORTED, "device %s offers no memory type for storage buffers",
				ctx->caps.name);
	VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
				     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
	ctx->device_memory_mappable =
		(mp.memoryTypes[ctx->device_memory_type].propertyFlags & host) == host;
	if (!find_memory_type(&mp, req.memoryTypeBits, host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
			      &ctx->host_memory_type) &&
	    !find_memory_type(&mp, req.memoryTypeBits, host, &ctx->host_memory_type))
		return rf_error(RF_ERR_UNSUPPORTED, "device %s offers no host-visible coherent memory",
				ctx->caps.name);
	ctx->block_size = RF_BLOCK_DEFAULT;
	if (ctx->caps.max_allocation && ctx->block_size > ctx->caps.max_allocation)
		ctx->block_size = ctx->caps.max_allocation;
	if (ctx->block_size > ctx->caps.heap_budget / 4)
		ctx->block_size = RF_ALIGN_UP(ctx->caps.heap_budget / 4, RF_MEM_ALIGN);
	return RF_OK;
}

/* }===== */

/* {===== blocks */

static void block_destroy(rf_ctx *ctx, struct rf_block *b)
{
	if (!b)
		return;
	if (b->view_f32x4) vkDestroyBufferView(ctx->device, b->view_f32x4, NULL);
	if (b->view_f16x4) vkDestroyBufferView(ctx->device, b->view_f16x4, NULL);
	if (b->view_f32) vkDestroyBufferView(ctx->device, b->view_f32, NULL);
	if (b->map) vkUnmapMemory(ctx->device, b->memory);
	if (b->buffer) vkDestroyBuffer(ctx->device, b->buffer, NULL);
	if (b->memory) vkFreeMemory(ctx->device, b->memory, NULL);
	ctx->mem_stats.reserved -= b->memory ? b->size : 0;
	free(b->free);
	free(b);
}

static enum rf_status block_create(rf_ctx *ctx, uint64_t size, struct rf_block **out)
{
	*out = NULL;
	struct rf_block *b = calloc(1, sizeof *b);
	if (!b)
		return rf_error(RF_ERR_OOM_HOST, "allocating a memory block record");
	b->size = size;
	VkBufferCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = size,
		.usage = block_usage(),
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkResult r = vkCreateBuffer(ctx->device, &info, NULL, &b->buffer);
	if (r != VK_SUCCESS) {
		block_destroy(ctx, b);
		return rf_ctx_vk_fail(ctx, r, "creating a device buffer");
	}
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
	VkMemoryAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.allocationSize = req.size,
		.memoryTypeIndex = ctx->device_memory_type,
	};
	r = allocate_memory(ctx, &alloc, &b->memory);
	if (r == VK_SUCCESS)
		r = vkBindBufferMemory(ctx->device, b->buffer, b->memory, 0);
	if (r != VK_SUCCESS) {
		if (b->memory)
			ctx->mem_stats.reserved += b->size; /* block_destroy subtracts it */
		block_destroy(ctx, b);
		char what[96];
		snprintf(what, sizeof what, "allocating %.1f MiB of device memory", MIB(size));
		return rf_ctx_vk_fail(ctx, r, what);
	}
	ctx->mem_stats.reserved += size;
	b->free = malloc(4 * sizeof *b->free);
	if (!b->free) {
		block_destroy(ctx, b);
		return rf_error(RF_ERR_OOM_HOST, "allocating a free list");
	}
	b->free_cap = 4;
	b->free[0] = (struct rf_free_range){ 0, size };
	b->nfree = 1;
	*out = b;
	return RF_OK;
}

static bool block_take(struct rf_block *b, uint64_t size, uint64_t *offset)
{
	for (uint32_t i = 0; i < b->nfree; i++) {
		struct rf_free_range *f = &b->free[i];
		if (f->size < size)
			continue;
		*offset = f->offset;
		f->offset += size;
		f->size -= size;
		if (f->size == 0) {
			memmove(f, f + 1, (b->nfree - i - 1) * sizeof *f);
			b->nfree--;
		}
		b->live++;
		return true;
	}
	return false;
}

/* Returns [offset, offset+size) to the sorted free list, merging with neighbours. */
static enum rf_status block_give(struct rf_block *b, uint64_t offset, uint64_t size)
{
	uint32_t i = 0;
	while (i < b->nfree && b->free[i].offset < offset)
		i++;
	bool merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
	bool merge_next = i < b->nfree && offset + size == b->free[i].offset;
	b->live--;
	if (merge_prev && merge_next) {
		b->free[i - 1].size += size + b->free[i].size;
		memmove(&b->free[i], &b->free[i + 1], (b->nfree - i - 1) * sizeof *b->free);
		b->nfree--;
	} else if (merge_prev) {
		b->free[i - 1].size += size;
	} else if (merge_next) {
		b->free[i].offset = offset;
		b->free[i].size += size;
	} else {
		if (b->nfree == b->free_cap) {
			uint32_t cap = b->free_cap * 2;
			struct rf_free_range *grown = realloc(b->free, cap * sizeof *grown);
			if (!grown)
				return rf_error(RF_ERR_OOM_HOST, "growing a free list");
			b->free = grown;
			b->free_cap = cap;
		}
		memmove(&b->free[i + 1], &b->free[i], (b->nfree - i) * sizeof *b->free);
		b->free[i] = (struct rf_free_range){ offset, size };
		b->nfree++;
	}
	return RF_OK;
}

static enum rf_status add_block(rf_ctx *ctx, uint64_t size, struct rf_block **out)
{
	if (ctx->nblocks == ctx->block_cap) {
		uint32_t cap = ctx->block_cap ? ctx->block_cap * 2 : 8;
		struct rf_block **grown = realloc(ctx->blocks, cap * sizeof *grown);
		if (!grown)
			return rf_error(RF_ERR_OOM_HOST, "growing the block table");
		ctx->blocks = grown;
		ctx->block_cap = cap;
	}
	enum rf_status s = block_create(ctx, size, out);
	if (s == RF_OK)
		ctx->blocks[ctx->nblocks++] = *out;
	return s;
}

VkBuffer rf_block_buffer(const struct rf_block *b)
{
	return b->buffer;
}

enum rf_status rf_block_view(rf_ctx *ctx, struct rf_block *b, VkFormat format, VkBufferView *out)
{
	VkBufferView *slot;
	uint64_t texel;
	switch (format) {
	case VK_FORMAT_R32G32B32A32_SFLOAT: slot = &b->view_f32x4; texel = 16; break;
	case VK_FORMAT_R16G16B16A16_SFLOAT: slot = &b->view_f16x4; texel = 8; break;
	case VK_FORMAT_R32_SFLOAT: slot = &b->view_f32; texel = 4; break;
	default: return rf_error(RF_ERR_INVALID, "unsupported texel view format %d", (int)format);
	}
	if (!*slot) {
		uint64_t texels = RF_MIN(b->size / texel, (uint64_t)ctx->caps.max_texel_elements);
		VkBufferViewCreateInfo info = {
			.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
			.buffer = b->buffer,
			.format = format,
			.offset = 0,
			.range = texels * texel,
		};
		VkResult r = vkCreateBufferView(ctx->device, &info, NULL, slot);
		if (r != VK_SUCCESS)
			return rf_ctx_vk_fail(ctx, r, "creating a texel buffer view");
	}
	*out = *slot;
	return RF_OK;
}

/* }===== */

/* {===== suballocation */

static enum rf_status over_budget(rf_ctx *ctx, uint64_t size)
{
	return rf_error(RF_ERR_OOM_DEVICE,
			"out of device memory: %.1f MiB requested, %.1f MiB in use, %.1f MiB reserved "
			"of a %.1f MiB budget on %s", MIB(size), MIB(ctx->mem_stats.in_use),
			MIB(ctx->mem_stats.reserved), MIB(ctx->caps.heap_budget), ctx->caps.name);
}

static bool has_empty_block(const rf_ctx *ctx)
{
	for (uint32_t i = 0; i < ctx->nblocks; i++)
		if (ctx->blocks[i]->live == 0)
			return true;
	return false;
}

enum rf_status rf_mem_alloc(rf_ctx *ctx, uint64_t size, struct rf_mem *out)
{
	memset(out, 0, sizeof *out);
	if (ctx->lost)
		return rf_error(RF_ERR_DEVICE_LOST, "the Vulkan device was lost");
	if (injected_failure())
		return over_budget(ctx, size);
	uint64_t need = RF_ALIGN_UP(size ? size : 1, RF_MEM_ALIGN);
	for (uint32_t i = 0; i < ctx->nblocks; i++) {
		uint64_t offset;
		if (block_take(ctx->blocks[i], need, &offset)) {
			*out = (struct rf_mem){ ctx->blocks[i], offset, size };
			goto out_count;
		}
	}
	uint64_t block = need > ctx->block_size ? need : ctx->block_size;
	if (ctx->mem_stats.reserved + block > ctx->caps.heap_budget) {
		/* Empty blocks may be waiting for in-flight work: wait, free them, try again;
		** then, if a whole block is still too much, one of just the size asked for. */
		if (has_empty_block(ctx)) {
			enum rf_status s = rf_ctx_finish(ctx);
			if (s != RF_OK)
				return s;
			rf_memory_trim(ctx);
		}
		if (ctx->mem_stats.reserved + block > ctx->caps.heap_budget) {
			block = need;
			if (ctx->mem_stats.reserved + block > ctx->caps.heap_budget)
				return over_budget(ctx, size);
		}
	}
	struct rf_block *b = NULL;
	enum rf_status s = add_block(ctx, block, &b);
	if (s != RF_OK)
		return s;
	uint64_t offset;
	RF_ASSERT(block_take(b, need, &offset));
	*out = (struct rf_mem){ b, offset, size };
out_count:
	ctx->mem_stats.in_use += need;
	ctx->mem_stats.allocations++;
	if (ctx->mem_stats.in_use > ctx->mem_stats.peak)
		ctx->mem_stats.peak = ctx->mem_stats.in_use;
	return RF_OK;
}

void rf_mem_free(rf_ctx *ctx, struct rf_mem *m)
{
	if (!m->block)
		return;
	uint64_t need = RF_ALIGN_UP(m->size ? m->size : 1, RF_MEM_ALIGN);
	if (block_give(m->block, m->offset, need) != RF_OK)
		rf_log(RF_LOG_WARN, "leaking %.1f MiB of device memory: %s", MIB(need), rf_error_message());
	ctx->mem_stats.in_use -= need;
	ctx->mem_stats.allocations--;
	memset(m, 0, sizeof *m);
}

void rf_memory_trim(rf_ctx *ctx)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < ctx->nblocks; i++) {
		if (ctx->blocks[i]->live == 0)
			block_destroy(ctx, ctx->blocks[i]);
		else
			ctx->blocks[kept++] = ctx->blocks[i];
	}
	ctx->nblocks = kept;
}

void rf_memory_fini(rf_ctx *ctx)
{
	for (uint32_t i = 0; i < ctx->nblocks; i++) {
		if (ctx->blocks[i]->live)
			rf_log(RF_LOG_WARN, "context destroyed with %u live allocation(s) in a block",
			       ctx->blocks[i]->live);
		block_destroy(ctx, ctx->blocks[i]);
	}
	free(ctx->blocks);
	ctx->blocks = NULL;
	ctx->nblocks = ctx->block_cap = 0;
}

void rf_ctx_memory_stats(const rf_ctx *ctx, struct rf_mem_stats *out)
{
	*out = ctx->mem_stats;
}

void rf_ctx_memory_reset_peak(rf_ctx *ctx)
{
	ctx->mem_stats.peak = ctx->mem_stats.in_use;
}

/* }===== */

/* {===== staging */

void rf_staging_destroy(rf_ctx *ctx, struct rf_staging *st)
{
	if (st->map)
		vkUnmapMemory(ctx->device, st->memory);
	if (st->buffer)
		vkDestroyBuffer(ctx->device, st->buffer, NULL);
	if (st->memory)
		vkFreeMemory(ctx->device, st->memory, NULL);
	memset(st, 0, sizeof *st);
}

/* Makes room for `need` more bytes; only grows an unused staging buffer (callers submit
** the frame first when it is in use). */
enum rf_status rf_staging_reserve(rf_ctx *ctx, struct rf_staging *st, uint64_t need)
{
	if (st->used + need <= st->size)
		return RF_OK;
	RF_ASSERT(st->used == 0);
	rf_staging_destroy(ctx, st);
	uint64_t size = RF_MAX(need, 16ull << 20);
	VkBufferCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = size,
		.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VkResult r = vkCreateBuffer(ctx->device, &info, NULL, &st->buffer);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "creating a staging buffer");
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(ctx->device, st->buffer, &req);
	VkMemoryAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.allocationSize = req.size,
		.memoryTypeIndex = ctx->host_memory_type,
	};
	r = allocate_memory(ctx, &alloc, &st->memory);
	if (r == VK_SUCCESS)
		r = vkBindBufferMemory(ctx->device, st->buffer, st->memory, 0);
	if (r == VK_SUCCESS)
		r = vkMapMemory(ctx->device, st->memory, 0, VK_WHOLE_SIZE, 0, &st->map);
	if (r != VK_SUCCESS) {
		rf_staging_destroy(ctx, st);
		return rf_ctx_vk_fail(ctx, r, "allocating staging memory");
	}
	st->size = size;
	st->used = 0;
	return RF_OK;
}

/* }===== */

/* {===== host access */

bool rf_mem_mappable(const rf_ctx *ctx)
{
	return ctx->device_memory_mappable;
}

enum rf_status rf_mem_host_ptr(rf_ctx *ctx, const struct rf_mem *m, void **out)
{
	*out = NULL;
	if (!m->block)
		return rf_error(RF_ERR_INVALID, "host pointer: no memory");
	if (!ctx->device_memory_mappable)
		return rf_error(RF_ERR_UNSUPPORTED, "host pointer: the device memory of %s is not "
				"host-visible", ctx->caps.name);
	struct rf_block *b = m->block;
	if (!b->map) {
		VkResult r = vkMapMemory(ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->map);
		if (r != VK_SUCCESS) {
			b->map = NULL;
			return rf_ctx_vk_fail(ctx, r, "mapping device memory");
		}
	}
	*out = (char *)b->map + m->offset;
	return RF_OK;
}

/* }===== */
