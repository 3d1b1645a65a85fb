/*
** cmd.c: command frames (command buffer, fence, descriptor pools), submission, the
** barrier tracker, and dispatch recording. Transfers (transfer.c) and timestamps
** (profile.c) record into the same frames. Runtime layer (L3).
*/
#include "cmd.h"
#include "context_internal.h"
#include "pipeline_internal.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 512

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
	return rf_profile_frame_init(ctx, f);
}

static void frame_fini(rf_ctx *ctx, struct rf_frame *f)
{
	for (uint32_t i = 0; i < f->npools; i++)
		vkDestroyDescriptorPool(ctx->device, f->pools[i], NULL);
	free(f->pools);
	free(f->downloads);
	rf_staging_destroy(ctx, &f->staging);
	rf_profile_frame_fini(ctx, f);
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
}

/* A full compute/transfer memory barrier. Coarse on purpose: the tracker decides *when*
** one is needed; its scope covers everything earlier in submission order, including
** earlier command buffers, which makes frames safe against each other too. */
static void record_barrier(rf_ctx *ctx, struct rf_frame *f)
{
	VkMemoryBarrier b = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
				 VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
	};
	VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
	vkCmdPipelineBarrier(f->cmd, stages, stages, 0, 1, &b, 0, NULL, 0, NULL);
	f->ntracked = 0;
	ctx->barriers++;
}

/* Waits for a submitted frame, then collects its timestamps and downloads. */
static enum rf_status frame_wait(rf_ctx *ctx, struct rf_frame *f)
{
	if (!f->submitted)
		return RF_OK;
	VkResult r = vkWaitForFences(ctx->device, 1, &f->fence, VK_TRUE, UINT64_MAX);
	if (r != VK_SUCCESS)
		return rf_ctx_vk_fail(ctx, r, "waiting for the device");
	f->submitted = false;
	rf_profile_frame_collect(ctx, f);
	for (uint32_t i = 0; i < f->ndownloads; i++)
		memcpy(f->downloads[i].dst, (char *)f->staging.map + f->downloads[i].staging_offset,
		       f->downloads[i].size);
	f->ndownloads = 0;
	return RF_OK;
}

enum rf_status rf_frame_begin(rf_ctx *ctx, struct rf_frame **out)
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
		rf_profile_frame_begin(ctx, f);
		record_barrier(ctx, f);
		f->recording = true;
	}
	*out = f;
	return RF_OK;
}

enum rf_status rf_frames_submit(rf_ctx *ctx)
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

enum rf_status rf_frames_finish(rf_ctx *ctx)
{
	enum rf_status s = rf_frames_submit(ctx);
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

/* Two accesses to overlapping bytes of one block need a barrier between them unless
** both only read. */
static bool conflicts(const struct rf_range *a, const struct rf_range *b)
{
	return (a->write || b->write) && a->block == b->block && a->begin < b->end &&
	       b->begin < a->end;
}

void rf_frame_track(rf_ctx *ctx, struct rf_frame *f, const struct rf_range *ranges, uint32_t n)
{
	RF_ASSERT(n <= RF_CMD_TRACKED_RANGES);
	/* No room to remember these: a barrier orders everything so far and empties the set. */
	bool barrier = f->ntracked + n > RF_CMD_TRACKED_RANGES;
	for (uint32_t i = 0; i < n && !barrier; i++)
		for (uint32_t j = 0; j < f->ntracked && !barrier; j++)
			barrier = conflicts(&f->tracked[j], &ranges[i]);
	if (barrier)
		record_barrier(ctx, f);
	for (uint32_t i = 0; i < n; i++)
		f->tracked[f->ntracked++] = ranges[i];
}

uint64_t rf_cmd_barriers(const rf_ctx *ctx)
{
	return ctx->barriers;
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
	enum rf_status s = rf_frame_begin(ctx, &f);
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
		ranges[i] = rf_range_of(a->mem, a->offset, a->size, sig[i] == 'w');
	}
	vkUpdateDescriptorSets(ctx->device, nargs, writes, 0, NULL);
	rf_frame_track(ctx, f, ranges, nargs);

	VkPipelineLayout layout = rf_layout_pipeline(p->layout);
	vkCmdBindPipeline(f->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
	vkCmdBindDescriptorSets(f->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
	uint8_t pc[RF_PUSH_BYTES] = { 0 };
	if (push_size)
		memcpy(pc, push, push_size);
	vkCmdPushConstants(f->cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, RF_PUSH_BYTES, pc);
	bool timed = rf_profile_dispatch_begin(ctx, f);
	vkCmdDispatch(f->cmd, gx, gy, gz);
	if (timed)
		rf_profile_dispatch_end(f, p->shader->name);
	f->dispatches++;
	return RF_OK;
}

/* }===== */
