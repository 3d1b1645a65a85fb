/*
** transfer.h: copies between host and device memory and within the device, recorded
** into the context's current command frame (ordered by the same barrier tracking as
** dispatches). Uploads and downloads go through the frame's host-visible staging, in
** chunks, so any size works. Runtime layer (L3).
*/
#ifndef RF_RUNTIME_TRANSFER_H
#define RF_RUNTIME_TRANSFER_H

#include "rf_base.h"
#include "memory.h"

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
