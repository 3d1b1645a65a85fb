/*
** transfer.c: uploads and downloads through the frame's staging buffer (in chunks, so
** any size fits), fills and device-to-device copies, each ordered by the frame's
** barrier tracker like a dispatch. Runtime layer (L3).
*/
#include "transfer.h"
#include "context_internal.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

/* Staging space in the current frame: submits the frame first if it is full. */
static enum rf_status stage(rf_ctx *ctx, uint64_t size, struct rf_frame **out, uint64_t *offset)
{
	struct rf_frame *f;
	enum rf_status s = rf_frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	size = RF_ALIGN_UP(size, 16);
	if (f->staging.used && f->staging.used + size > f->staging.size) {
		if ((s = rf_ctx_submit(ctx)) != RF_OK || (s = rf_frame_begin(ctx, &f)) != RF_OK)
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
		struct rf_range r = rf_range_of(m, offset + done, n, true);
		rf_frame_track(ctx, f, &r, 1);
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
		struct rf_range r = rf_range_of(m, offset + done, n, false);
		rf_frame_track(ctx, f, &r, 1);
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
	enum rf_status s = rf_frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	struct rf_range r = rf_range_of(m, offset, size, true);
	rf_frame_track(ctx, f, &r, 1);
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
	enum rf_status s = rf_frame_begin(ctx, &f);
	if (s != RF_OK)
		return s;
	struct rf_range r[2] = { rf_range_of(src, src_offset, size, false),
				 rf_range_of(dst, dst_offset, size, true) };
	rf_frame_track(ctx, f, r, 2);
	VkBufferCopy copy = { src->offset + src_offset, dst->offset + dst_offset, size };
	vkCmdCopyBuffer(f->cmd, rf_block_buffer(src->block), rf_block_buffer(dst->block), 1, &copy);
	return RF_OK;
}
