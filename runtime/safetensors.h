/*
** safetensors.h: reading safetensors files, memory-mapped and validated (writing them is
** safetensors_write.h). A file is an 8-byte little-endian header length, a JSON header mapping each tensor
** name to {dtype, shape, data_offsets} (plus an optional "__metadata__" of strings), then
** the raw little-endian data. Runtime layer (L2).
**
** Validation on open, each failure a RF_ERR_FORMAT whose message names the file and the
** problem: file shorter than 8 bytes; header length past the end of the file; header not
** UTF-8 or not a JSON object; an entry that is not an object with a known dtype, an
** integer shape and two integer offsets; begin > end; a data range past the end of the
** file; a range whose size differs from shape x dtype; two ranges that overlap; data
** bytes that belong to no tensor (holes or trailing bytes, which the specification
** forbids); "__metadata__" that is not an object of strings.
*/
#ifndef RF_RUNTIME_SAFETENSORS_H
#define RF_RUNTIME_SAFETENSORS_H

#include "rf_base.h"
#include "tensor.h"

typedef struct rf_safetensors rf_safetensors;

struct rf_st_entry {
	const char *name;
	enum rf_dtype dtype;
	struct rf_shape shape;
	const void *data;       /* inside the mapping; NULL once unmapped (rf_safetensors_unmap) */
	uint64_t nbytes;
	uint64_t offset;        /* of the data in the file */
};

/* Maps and validates `path` (a regular file: anything else is refused before it is read). */
enum rf_status rf_safetensors_open(const char *path, rf_safetensors **out);
void rf_safetensors_close(rf_safetensors *st);
/* Releases the mapping but keeps the file open: the entries stay (their data pointers
** become NULL) and rf_safetensors_read_bytes reads through the file. A mapping that
** outlives loading turns a file truncated by someone else into a SIGBUS; a read fails
** cleanly instead, and so does any read after the file has changed (its size or
** modification time differ from when it was opened). */
void rf_safetensors_unmap(rf_safetensors *st);
/* Copies `n` bytes at `offset` inside entry e's data into `out` (from the mapping, or
** from the file once unmapped). */
enum rf_status rf_safetensors_read_bytes(const rf_safetensors *st, const struct rf_st_entry *e,
					 uint64_t offset, uint64_t n, void *out);
const char *rf_safetensors_path(const rf_safetensors *st);

uint32_t rf_safetensors_count(const rf_safetensors *st);
/* Entries in file order of their data offsets. */
const struct rf_st_entry *rf_safetensors_entry(const rf_safetensors *st, uint32_t i);
/* NULL if absent. */
const struct rf_st_entry *rf_safetensors_find(const rf_safetensors *st, const char *name);
/* A "__metadata__" string value, or NULL. */
const char *rf_safetensors_metadata(const rf_safetensors *st, const char *key);
/* The i-th "__metadata__" key in file order, or NULL past the last one (so callers can
** list or copy metadata they do not know the keys of). */
const char *rf_safetensors_metadata_key(const rf_safetensors *st, uint32_t i);

/* Copies one entry into a new host tensor of its own dtype. */
enum rf_status rf_safetensors_read(const rf_safetensors *st, const char *name, rf_tensor **out);

#endif
