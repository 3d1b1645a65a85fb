/*
** cmd.c: command frames (command buffer, descriptor pools, staging, timestamp queries),
** dispatch recording with automatic barriers, transfers, submission and profiling.
** Runtime layer (L3).
*/
#include "cmd.h"
#include "context_internal.h"
#include "pipeline_internal.h"
#include "status.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 512
#define MAX_TRACKED_RANGES 256

/* {===== frames */

static enum rf_status frame_init(rf_ctx *ctx, struct rf_frame *f)
{
	VkCommandBufferAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = ctx->command_pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VkResult r = vkAllocateCommandBuffers(ctx->device, &alloc, &f->cmd);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "allocating a command buffer");
	VkFenceCreateInfo fence = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	r = vkCreateFence(ctx->device, &fence, NULL, &f->fence);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "creating a fence");
	if (ctx->caps.timestamps) {
		VkQueryPoolCreateInfo q = {
			.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
			.queryType = VK_QUERY_TYPE_TIMESTAMP,
			.queryCount = RF_QUERIES_PER_FRAME,
		};
		r = vkCreateQueryPool(ctx->device, &q, NULL, &f->queries);
		if (r != VK_SUCCESS)
			return rf_ctx_vk_fail(ctx, r, "creating a timestamp query pool");
	}
	return RF_OK;
}

static void frame_fini(rf_ctx *ctx, struct rf_frame *f)
{
	for (uint32_t i = 0; i < f->npools; i++)
		vkDestroyDescriptorPool(ctx->device, f->pools[i], NULL);
	free(f->pools);
	free(f->reads.items);
	free(f->writes.items);
	free(f->downloads);
	rf_staging_destroy(ctx, &f->staging);
	if (f->queries)
		vkDestroyQueryPool(ctx->device, f->queries, NULL);
	if (f->fence)
		vkDestroyFence(ctx->device, f->fence, NULL);
	memset(f, 0, sizeof *f);
}

enum rf_status rf_frames_init(rf_ctx *ctx)
{
	VkCommandPoolCreateInfo pool = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
		.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
		.queueFamilyIndex = ctx->queue_family,
	};
	VkResult r = vkCreateCommandPool(ctx->device, &pool, NULL, &ctx->command_pool);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "creating a command pool");
	for (int i = 0; i < RF_FRAMES; i++) {
		enum rf_status s = frame_init(ctx, &ctx->frames[i]);
		if (s != RF_OK)
			return s;
	}
	return RF_OK;
}

void rf_frames_fini(rf_ctx *ctx)
{
	for (int i = 0; i < RF_FRAMES; i++)
		frame_fini(ctx, &ctx->frames[i]);
	if (ctx->command_pool)
		vkDestroyCommandPool(ctx->device, ctx->command_pool, NULL);
	ctx->command_pool = VK_NULL_HANDLE;
	free(ctx->profile_slots);
	ctx->profile_slots = NULL;
	ctx->nprofile = ctx->profile_cap = 0;
}

/* A full compute/transfer memory barrier. Coarse on purpose: the tracker decides *when*
** one is needed; its scope covers everything earlier in submission order, including
** earlier command buffers, which makes frames safe against each other too. */
static void record_barrier(struct rf_frame *f)
{
	VkMemoryBarrier b = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
				 VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
	};
	VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
	vkCmdPipelineBarrier(f->cmd, stages, stages, 0, 1, &b, 0, NULL, 0, NULL);
	f->reads.count = 0;
	f->writes.count = 0;
}

static void record_profile(rf_ctx *ctx, struct rf_frame *f);

/* Waits for a submitted frame, then collects its timestamps and downloads. */
static enum rf_status frame_wait(rf_ctx *ctx, struct rf_frame *f)
{
	if (!f->submitted)
		return RF_OK;
	VkResult r = vkWaitForFences(ctx->device, 1, &f->fence, VK_TRUE, UINT64_MAX);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "waiting for the device");
	f->submitted = false;
	if (ctx->profile)
		record_profile(ctx, f);
	for (uint32_t i = 0; i < f->ndownloads; i++)
		memcpy(f->downloads[i].dst, (char *)f->staging.map + f->downloads[i].staging_offset,
		       f->downloads[i].size);
	f->ndownloads = 0;
	return RF_OK;
}

/* Makes the current frame ready to record into. */
static enum rf_status frame_begin(rf_ctx *ctx, struct rf_frame **out)
{
	if (ctx->lost)
		return rf_error(RF_ERR_DEVICE_LOST, "the Vulkan device was lost");
	struct rf_frame *f = &ctx->frames[ctx->current];
	if (!f->recording) {
		enum rf_status s = frame_wait(ctx, f);
		if (s != RF_OK)
			return s;
		VkResult r = vkResetFences(ctx->device, 1, &f->fence);
		if (r == VK_SUCCESS)
			r = vkResetCommandBuffer(f->cmd, 0);
		for (uint32_t i = 0; i < f->npools && r == VK_SUCCESS; i++)
			r = vkResetDescriptorPool(ctx->device, f->pools[i], 0);
		VkCommandBufferBeginInfo begin = {
			.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
			.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
		};
		if (r == VK_SUCCESS)
			r = vkBeginCommandBuffer(f->cmd, &begin);
		if (r != VK_SUCCESS)
			return rf_ctx_vk_fail(ctx, r, "starting a command buffer");
		f->pool_used = 0;
		f->dispatches = 0;
		f->staging.used = 0;
		f->nqueries = 0;
		if (f->queries && ctx->profile)
			vkCmdResetQueryPool(f->cmd, f->queries, 0, RF_QUERIES_PER_FRAME);
		record_barrier(f);
		f->recording = true;
	}
	*out = f;
	return RF_OK;
}

enum rf_status rf_ctx_submit(rf_ctx *ctx)
{
	if (ctx->lost)
		return rf_error(RF_ERR_DEVICE_LOST, "the Vulkan device was lost");
	struct rf_frame *f = &ctx->frames[ctx->current];
	if (!f->recording)
		return RF_OK;
	if (f->ndownloads) {
		/* Make the copies into staging visible to the host after the fence. */
		VkMemoryBarrier b = {
			.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
			.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
			.dstAccessMask = VK_ACCESS_HOST_READ_BIT,
		};
		vkCmdPipelineBarrier(f->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
				     0, 1, &b, 0, NULL, 0, NULL);
	}
	f->recording = false;
	VkResult r = vkEndCommandBuffer(f->cmd);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "ending a command buffer");
	VkSubmitInfo submit = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
		.pCommandBuffers = &f->cmd,
	};
	r = vkQueueSubmit(ctx->queue, 1, &submit, f->fence);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "submitting work to the device");
	f->submitted = true;
	ctx->current = (ctx->current + 1) % RF_FRAMES;
	return RF_OK;
}

enum rf_status rf_ctx_finish(rf_ctx *ctx)
{
	enum rf_status s = rf_ctx_submit(ctx);
	for (int i = 0; i < RF_FRAMES; i++) {
		/* Submit order: the older frame first. */
		struct rf_frame *f = &ctx->frames[(ctx->current + i) % RF_FRAMES];
		enum rf_status w = frame_wait(ctx, f);
		if (s == RF_OK)
			s = w;
	}
	return s;
}

/* }===== */

/* {===== barrier tracking */

static bool overlaps(const struct rf_range_list *l, const struct rf_range *r)
{
	for (uint32_t i = 0; i < l->count; i++)
		if (l->items[i].block == r->block && l->items[i].begin < r->end && r->begin < l->items[i].end)
			return true;
	return false;
}

static bool push_range(struct rf_range_list *l, const struct rf_range *r)
{
	if (l->count == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 32;
		struct rf_range *grown = realloc(l->items, cap * sizeof *grown);
		if (!grown)
			return false;
		l->items = grown;
		l->cap = cap;
	}
	l->items[l->count++] = *r;
	return true;
}

static bool is_write(char letter)
{
	return letter == 'w';
}

/* Inserts a barrier if any access conflicts with what ran since the last one, then
** records these accesses. */
static void track(struct rf_frame *f, const struct rf_range *ranges, const bool *writes, uint32_t n)
{
	bool conflict = f->reads.count + f->writes.count + n > MAX_TRACKED_RANGES;
	for (uint32_t i = 0; i < n && !conflict; i++)
		conflict = overlaps(&f->writes, &ranges[i]) || (writes[i] && overlaps(&f->reads, &ranges[i]));
	if (conflict)
		record_barrier(f);
	for (uint32_t i = 0; i < n; i++)
		if (!push_range(writes[i] ? &f->writes : &f->reads, &ranges[i])) {
			/* Out of host memory for the tracker: be safe rather than precise. */
			record_barrier(f);
			return;
		}
}

static struct rf_range range_of(const struct rf_mem *m, uint64_t offset, uint64_t size)
{
	return (struct rf_range){ m->block, m->offset + offset, m->offset + offset + size };
}

/* }===== */

/* {===== dispatch */

static enum rf_status allocate_set(rf_ctx *ctx, struct rf_frame *f, VkDescriptorSetLayout layout,
				   VkDescriptorSet *out)
{
	for (;;) {
		if (f->pool_used < f->npools) {
			VkDescriptorSetAllocateInfo info = {
				.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
				.descriptorPool = f->pools[f->pool_used],
				.descriptorSetCount = 1,
				.pSetLayouts = &layout,
			};
			VkResult r = vkAllocateDescriptorSets(ctx->device, &info, out);
			if (r == VK_SUCCESS)
				return RF_OK;
			if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
				return rf_ctx_vk_fail(ctx, r, "allocating a descriptor set");
			f->pool_used++;
			continue;
		}
		if (f->npools == f->pool_cap) {
			uint32_t cap = f->pool_cap ? f->pool_cap * 2 : 4;
			VkDescriptorPool *grown = realloc(f->pools, cap * sizeof *grown);
			if (!grown)
				return rf_error(RF_ERR_OOM_HOST, "growing the descriptor pool list");
			f->pools = grown;
			f->pool_cap = cap;
		}
		VkDescriptorPoolSize sizes[] = {
			{ VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * 6 },
			{ VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * 4 },
		};
		VkDescriptorPoolCreateInfo info = {
			.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
			.maxSets = SETS_PER_POOL,
			.poolSizeCount = 2,
			.pPoolSizes = sizes,
		};
		VkResult r = vkCreateDescriptorPool(ctx->device, &info, NULL, &f->pools[f->npools]);
		if (r != VK_SUCCESS)
			return rf_ctx_vk_fail(ctx, r, "creating a descriptor pool");
		f->npools++;
		f->pool_used = f->npools - 1;
	}
}

uint32_t rf_arg_texel_index(const struct rf_arg *a, uint32_t texel_bytes)
{
	return (uint32_t)((a->mem->offset + a->offset) / texel_bytes);
}

static VkFormat texel_format(char letter, uint32_t *bytes)
{
	switch (letter) {
	case 't': *bytes = 16; return VK_FORMAT_R32G32B32A32_SFLOAT;
	case 'h': *bytes = 8; return VK_FORMAT_R16G16B16A16_SFLOAT;
	default: *bytes = 4; return VK_FORMAT_R32_SFLOAT;
	}
}

static enum rf_status check_arg(const rf_ctx *ctx, const rf_pipeline *p, uint32_t i,
				const struct rf_arg *a)
{
	char letter = p->shader->signature[i];
	const char *name = p->shader->name;
	if (!a->mem || !a->mem->block)
		return rf_error(RF_ERR_INVALID, "%s: binding %u has no memory", name, i);
	if (a->offset + a->size > a->mem->size)
		return rf_error(RF_ERR_INVALID, "%s: binding %u range [%llu, +%llu) exceeds its %llu-byte "
				"allocation", name, i, (unsigned long long)a->offset,
				(unsigned long long)a->size, (unsigned long long)a->mem->size);
	if (letter == 'r' || letter == 'w') {
		if ((a->mem->offset + a->offset) % ctx->caps.storage_align)
			return rf_error(RF_ERR_INVALID, "%s: binding %u offset is not aligned to %u bytes",
					name, i, ctx->caps.storage_align);
		if (a->size > ctx->caps.max_storage_range)
			return rf_error(RF_ERR_UNSUPPORTED, "%s: binding %u is %.1f MiB, over the device's "
					"%.1f MiB storage-buffer range", name, i, a->size / 1048576.0,
					ctx->caps.max_storage_range / 1048576.0);
	} else {
		uint32_t bytes;
		texel_format(letter, &bytes);
		uint64_t end = a->mem->offset + a->offset + a->size;
		if ((a->mem->offset + a->offset) % bytes)
			return rf_error(RF_ERR_INVALID, "%s: texel binding %u is not aligned to its %u-byte "
					"texels", name, i, bytes);
		if (end > (uint64_t)ctx->caps.max_texel_elements * bytes)
			return rf_error(RF_ERR_UNSUPPORTED, "%s: texel binding %u ends past the device's "
					"%u-texel limit", name, i, ctx->caps.max_texel_elements);
	}
	return RF_OK;
}

enum rf_status rf_cmd_dispatch(rf_ctx *ctx, rf_pipeline *p, const struct rf_arg *args,
			       uint32_t nargs, const void *push, uint32_t push_size,
			       uint32_t gx, uint32_t gy, uint32_t gz)
{
	const char *sig = p->shader->signature;
	RF_ASSERT(nargs == strlen(sig) && nargs <= RF_MAX_BINDINGS);
	if (push_size != p->push_size)
		return rf_error(RF_ERR_INTERNAL, "%s: the launcher passes %u bytes of push constants but "
				"the shader's block has %u (the C struct and the GLSL block differ)",
				p->shader->name, push_size, p->push_size);
	if (gx == 0 || gy == 0 || gz == 0)
		return RF_OK;
	if (gx > ctx->caps.max_workgroup_count[0] || gy > ctx->caps.max_workgroup_count[1] ||
	    gz > ctx->caps.max_workgroup_count[2])
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %u x %u x %u workgroups exceed the device's limit",
				p->shader->name, gx, gy, gz);
	for (uint32_t i = 0; i < nargs; i++) {
		enum rf_status s = check_arg(ctx, p, i, &args[i]);
		if (s != RF_OK)
			return s;
	}
	struct rf_frame *f;
	enum rf_status s = frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	VkDescriptorSet set;
	s = allocate_set(ctx, f, rf_layout_set(p->layout), &set);
	if (s != RF_OK)
		return s;

	VkWriteDescriptorSet writes[RF_MAX_BINDINGS];
	VkDescriptorBufferInfo buffers[RF_MAX_BINDINGS];
	VkBufferView views[RF_MAX_BINDINGS];
	struct rf_range ranges[RF_MAX_BINDINGS];
	bool written[RF_MAX_BINDINGS];
	for (uint32_t i = 0; i < nargs; i++) {
		const struct rf_arg *a = &args[i];
		writes[i] = (VkWriteDescriptorSet){
			.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
			.dstSet = set,
			.dstBinding = i,
			.descriptorCount = 1,
			.descriptorType = rf_binding_type(sig[i]),
		};
		if (sig[i] == 'r' || sig[i] == 'w') {
			/* A zero-sized range is invalid Vulkan; bind one element instead. */
			uint64_t size = a->size ? a->size : RF_MIN(4, a->mem->size ? a->mem->size : 4);
			buffers[i] = (VkDescriptorBufferInfo){
				rf_block_buffer(a->mem->block), a->mem->offset + a->offset, size,
			};
			writes[i].pBufferInfo = &buffers[i];
		} else {
			uint32_t bytes;
			s = rf_block_view(ctx, a->mem->block, texel_format(sig[i], &bytes), &views[i]);
			if (s != RF_OK)
				return s;
			writes[i].pTexelBufferView = &views[i];
		}
		ranges[i] = range_of(a->mem, a->offset, a->size);
		written[i] = is_write(sig[i]);
	}
	vkUpdateDescriptorSets(ctx->device, nargs, writes, 0, NULL);
	track(f, ranges, written, nargs);

	VkPipelineLayout layout = rf_layout_pipeline(p->layout);
	vkCmdBindPipeline(f->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
	vkCmdBindDescriptorSets(f->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
	uint8_t pc[RF_PUSH_BYTES] = { 0 };
	if (push_size)
		memcpy(pc, push, push_size);
	vkCmdPushConstants(f->cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, RF_PUSH_BYTES, pc);
	bool timed = ctx->profile && f->queries && f->nqueries + 2 <= RF_QUERIES_PER_FRAME;
	if (timed)
		vkCmdWriteTimestamp(f->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, f->queries, f->nqueries);
	vkCmdDispatch(f->cmd, gx, gy, gz);
	if (timed) {
		vkCmdWriteTimestamp(f->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, f->queries, f->nqueries + 1);
		f->labels[f->nqueries / 2] = p->shader->name;
		f->nqueries += 2;
	}
	f->dispatches++;
	return RF_OK;
}

/* }===== */

/* {===== transfers */

/* Staging space in the current frame: submits the frame first if it is full. */
static enum rf_status stage(rf_ctx *ctx, uint64_t size, struct rf_frame **out, uint64_t *offset)
{
	struct rf_frame *f;
	enum rf_status s = frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	size = RF_ALIGN_UP(size, 16);
	if (f->staging.used && f->staging.used + size > f->staging.size) {
		if ((s = rf_ctx_submit(ctx)) != RF_OK || (s = frame_begin(ctx, &f)) != RF_OK)
			return s;
	}
	if ((s = rf_staging_reserve(ctx, &f->staging, size)) != RF_OK)
		return s;
	*offset = f->staging.used;
	f->staging.used += size;
	*out = f;
	return RF_OK;
}

#define TRANSFER_CHUNK (64ull << 20)

enum rf_status rf_mem_upload(rf_ctx *ctx, const struct rf_mem *m, uint64_t offset,
			     const void *data, uint64_t size)
{
	if (offset + size > m->size)
		return rf_error(RF_ERR_INVALID, "upload of %llu bytes at %llu exceeds a %llu-byte allocation",
				(unsigned long long)size, (unsigned long long)offset,
				(unsigned long long)m->size);
	for (uint64_t done = 0; done < size;) {
		uint64_t n = RF_MIN(size - done, TRANSFER_CHUNK);
		struct rf_frame *f;
		uint64_t at;
		enum rf_status s = stage(ctx, n, &f, &at);
		if (s != RF_OK)
			return s;
		memcpy((char *)f->staging.map + at, (const char *)data + done, n);
		struct rf_range r = range_of(m, offset + done, n);
		bool w = true;
		track(f, &r, &w, 1);
		VkBufferCopy copy = { at, m->offset + offset + done, n };
		vkCmdCopyBuffer(f->cmd, f->staging.buffer, rf_block_buffer(m->block), 1, &copy);
		done += n;
	}
	return RF_OK;
}

enum rf_status rf_mem_download(rf_ctx *ctx, const struct rf_mem *m, uint64_t offset,
			       void *data, uint64_t size)
{
	if (offset + size > m->size)
		return rf_error(RF_ERR_INVALID, "download of %llu bytes at %llu exceeds a %llu-byte "
				"allocation", (unsigned long long)size, (unsigned long long)offset,
				(unsigned long long)m->size);
	for (uint64_t done = 0; done < size;) {
		uint64_t n = RF_MIN(size - done, TRANSFER_CHUNK);
		struct rf_frame *f;
		uint64_t at;
		enum rf_status s = stage(ctx, n, &f, &at);
		if (s != RF_OK)
			return s;
		if (f->ndownloads == f->download_cap) {
			uint32_t cap = f->download_cap ? f->download_cap * 2 : 8;
			struct rf_pending_download *grown = realloc(f->downloads, cap * sizeof *grown);
			if (!grown)
				return rf_error(RF_ERR_OOM_HOST, "growing the download list");
			f->downloads = grown;
			f->download_cap = cap;
		}
		f->downloads[f->ndownloads++] = (struct rf_pending_download){ (char *)data + done, at, n };
		struct rf_range r = range_of(m, offset + done, n);
		bool w = false;
		track(f, &r, &w, 1);
		VkBufferCopy copy = { m->offset + offset + done, at, n };
		vkCmdCopyBuffer(f->cmd, rf_block_buffer(m->block), f->staging.buffer, 1, &copy);
		done += n;
	}
	return rf_ctx_finish(ctx);
}

enum rf_status rf_mem_fill(rf_ctx *ctx, const struct rf_mem *m, uint64_t offset,
			   uint64_t size, uint32_t pattern)
{
	if (offset + size > m->size || offset % 4 || size % 4)
		return rf_error(RF_ERR_INVALID, "fill of %llu bytes at %llu: out of range or not a "
				"multiple of 4", (unsigned long long)size, (unsigned long long)offset);
	if (size == 0)
		return RF_OK;
	struct rf_frame *f;
	enum rf_status s = frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	struct rf_range r = range_of(m, offset, size);
	bool w = true;
	track(f, &r, &w, 1);
	vkCmdFillBuffer(f->cmd, rf_block_buffer(m->block), m->offset + offset, size, pattern);
	return RF_OK;
}

enum rf_status rf_mem_copy(rf_ctx *ctx, const struct rf_mem *src, uint64_t src_offset,
			   const struct rf_mem *dst, uint64_t dst_offset, uint64_t size)
{
	if (src_offset + size > src->size || dst_offset + size > dst->size)
		return rf_error(RF_ERR_INVALID, "device copy of %llu bytes out of range",
				(unsigned long long)size);
	if (size == 0)
		return RF_OK;
	struct rf_frame *f;
	enum rf_status s = frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	struct rf_range r[2] = { range_of(src, src_offset, size), range_of(dst, dst_offset, size) };
	bool w[2] = { false, true };
	track(f, r, w, 2);
	VkBufferCopy copy = { src->offset + src_offset, dst->offset + dst_offset, size };
	vkCmdCopyBuffer(f->cmd, rf_block_buffer(src->block), rf_block_buffer(dst->block), 1, &copy);
	return RF_OK;
}

/* }===== */

/* {===== profiling */

static void add_profile(rf_ctx *ctx, const char *name, double ns)
{
	for (uint32_t i = 0; i < ctx->nprofile; i++)
		if (ctx->profile_slots[i].name == name) {
			ctx->profile_slots[i].dispatches++;
			ctx->profile_slots[i].total_ns += ns;
			return;
		}
	if (ctx->nprofile == ctx->profile_cap) {
		uint32_t cap = ctx->profile_cap ? ctx->profile_cap * 2 : 32;
		struct rf_profile_slot *grown = realloc(ctx->profile_slots, cap * sizeof *grown);
		if (!grown)
			return;
		ctx->profile_slots = grown;
		ctx->profile_cap = cap;
	}
	ctx->profile_slots[ctx->nprofile++] = (struct rf_profile_slot){ name, 1, ns };
}

static void record_profile(rf_ctx *ctx, struct rf_frame *f)
{
	if (!f->nqueries)
		return;
	uint64_t *stamps = malloc(f->nqueries * sizeof *stamps);
	if (!stamps)
		return;
	VkResult r = vkGetQueryPoolResults(ctx->device, f->queries, 0, f->nqueries,
					   f->nqueries * sizeof *stamps, stamps, sizeof *stamps,
					   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
	if (r == VK_SUCCESS)
		for (uint32_t q = 0; q + 1 < f->nqueries; q += 2)
			add_profile(ctx, f->labels[q / 2],
				    (double)(stamps[q + 1] - stamps[q]) * ctx->caps.timestamp_period_ns);
	free(stamps);
	f->nqueries = 0;
}

static int by_total_desc(const void *a, const void *b)
{
	double x = ((const struct rf_profile_entry *)a)->total_ns;
	double y = ((const struct rf_profile_entry *)b)->total_ns;
	return (x < y) - (x > y);
}

uint32_t rf_ctx_profile(const rf_ctx *ctx, struct rf_profile_entry *out, uint32_t max)
{
	uint32_t n = RF_MIN(max, ctx->nprofile);
	struct rf_profile_entry *all = malloc((ctx->nprofile + 1) * sizeof *all);
	if (!all)
		return 0;
	for (uint32_t i = 0; i < ctx->nprofile; i++)
		all[i] = (struct rf_profile_entry){ ctx->profile_slots[i].name,
						    ctx->profile_slots[i].dispatches,
						    ctx->profile_slots[i].total_ns };
	qsort(all, ctx->nprofile, sizeof *all, by_total_desc);
	memcpy(out, all, n * sizeof *out);
	free(all);
	return n;
}

void rf_ctx_profile_reset(rf_ctx *ctx)
{
	ctx->nprofile = 0;
}

bool rf_ctx_profiling(const rf_ctx *ctx)
{
	return ctx->profile;
}

void rf_ctx_set_profiling(rf_ctx *ctx, bool on)
{
	/* Takes effect at the next frame, whose query pool is then reset. */
	if (on && !ctx->profile)
		rf_ctx_finish(ctx);
	ctx->profile = on && ctx->caps.timestamps;
}

/* }===== */
