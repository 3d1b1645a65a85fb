/*
** safetensors_write.h: writing safetensors files (the format is described in
** safetensors.h). Runtime layer (L2).
*/
#ifndef RF_RUNTIME_SAFETENSORS_WRITE_H
#define RF_RUNTIME_SAFETENSORS_WRITE_H

#include "rf_base.h"
#include "tensor.h"

struct rf_st_item {
	const char *name;
	const rf_tensor *tensor;     /* host or device (downloaded) */
};

/* Writes tensors (in the given order, data back to back) and optional metadata pairs
** (NULL-terminated key, value, key, value, ..., NULL; may be NULL). Writes to `path.tmp`,
** fsyncs and renames, so a crash never leaves a half-written file under the final name.
** RF_ERR_INVALID (nothing written) for a NULL name or tensor, a name used twice, the
** reserved name "__metadata__", a metadata key used twice or without a value, and names
** or strings that are not UTF-8; RF_ERR_IO when the file cannot be written. */
enum rf_status rf_safetensors_write(const char *path, const struct rf_st_item *items, uint32_t n,
				    const char *const *metadata);

#endif
