/*
** safetensors_write.c: rf_safetensors_write. Runtime layer (L2).
**
** The layout follows the safetensors specification and what the reference writer
** produces: an 8-byte little-endian header length, a compact JSON header padded with
** spaces to a multiple of 8 bytes (so the data section starts 8-byte aligned in the
** file), then the tensors back to back in the given order with no gaps, since the
** specification forbids holes in the data section. Offsets count from the start of the
** data section. "__metadata__" comes last, as in the golden files.
*/
#include "safetensors_write.h"
#include "file_out.h"
#include "status.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "safetensors data is little-endian and is written from memory as is");

/* {===== the header */

static enum rf_status oom(const char *path)
{
	return rf_error(RF_ERR_OOM_HOST, "%s: building the safetensors header", path);
}

static json_t *shape_json(const struct rf_shape *s)
{
	json_t *a = json_array();
	for (int d = 0; a && d < s->ndim; d++)
		if (json_array_append_new(a, json_integer(s->dim[d])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* Adds one tensor's entry at `*offset` and advances it past the tensor's bytes. */
static enum rf_status add_entry(json_t *root, const char *path, const struct rf_st_item *it,
				uint64_t *offset)
{
	if (!it->name || !it->tensor)
		return rf_error(RF_ERR_INVALID, "%s: a tensor item without a name or a tensor", path);
	if (!strcmp(it->name, "__metadata__"))
		return rf_error(RF_ERR_INVALID, "%s: '__metadata__' is reserved and cannot name a tensor",
				path);
	if (json_object_get(root, it->name))
		return rf_error(RF_ERR_INVALID, "%s: tensor name '%s' is used twice", path, it->name);
	const rf_tensor *t = it->tensor;
	uint64_t begin = *offset, end = begin + rf_tensor_nbytes(t);
	json_t *shape = shape_json(&t->shape);
	if (!shape)
		return oom(path);
	json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", rf_dtype_name(t->dtype),
				  "shape", shape, "data_offsets", (json_int_t)begin, (json_int_t)end);
	if (!entry)
		return oom(path);
	/* Setting fails for a key that is not valid UTF-8 (JSON text must be UTF-8). */
	if (json_object_set_new(root, it->name, entry) != 0)
		return rf_error(RF_ERR_INVALID, "%s: tensor name '%s' is not valid UTF-8", path, it->name);
	*offset = end;
	return RF_OK;
}

/* Adds "__metadata__" from NULL-terminated key, value pairs (none: no entry at all). */
static enum rf_status add_metadata(json_t *root, const char *path, const char *const *md)
{
	if (!md || !md[0])
		return RF_OK;
	json_t *obj = json_object();
	if (!obj || json_object_set_new(root, "__metadata__", obj) != 0)
		return oom(path);
	for (size_t i = 0; md[i]; i += 2) {
		const char *key = md[i], *value = md[i + 1];
		if (!value)
			return rf_error(RF_ERR_INVALID, "%s: metadata key '%s' has no value", path, key);
		if (json_object_get(obj, key))
			return rf_error(RF_ERR_INVALID, "%s: metadata key '%s' is used twice", path, key);
		json_t *v = json_string(value);
		if (!v)
			return rf_error(RF_ERR_INVALID, "%s: metadata value of '%s' is not valid UTF-8",
					path, key);
		if (json_object_set_new(obj, key, v) != 0)
			return rf_error(RF_ERR_INVALID, "%s: metadata key '%s' is not valid UTF-8", path, key);
	}
	return RF_OK;
}

/* The header text (malloc'd, without padding), in item order. */
static enum rf_status build_header(const char *path, const struct rf_st_item *items, uint32_t n,
				   const char *const *metadata, char **out)
{
	*out = NULL;
	json_t *root = json_object();
	if (!root)
		return oom(path);
	enum rf_status s = RF_OK;
	uint64_t offset = 0;
	for (uint32_t i = 0; i < n && s == RF_OK; i++)
		s = add_entry(root, path, &items[i], &offset);
	if (s == RF_OK)
		s = add_metadata(root, path, metadata);
	/* Compact separators, as the reference writer: jansson keeps insertion order. */
	if (s == RF_OK && !(*out = json_dumps(root, JSON_COMPACT)))
		s = oom(path);
	json_decref(root);
	return s;
}

/* }===== */

/* {===== the file */

static enum rf_status write_prefix(struct rf_file_out *f, const char *header)
{
	uint64_t len = strlen(header), padded = RF_ALIGN_UP(len, 8);
	uint8_t prefix[8];
	for (int i = 0; i < 8; i++)
		prefix[i] = (uint8_t)(padded >> (8 * i));
	static const char spaces[8] = "        ";
	enum rf_status s = rf_file_out_write(f, prefix, sizeof prefix);
	if (s == RF_OK)
		s = rf_file_out_write(f, header, len);
	if (s == RF_OK)
		s = rf_file_out_write(f, spaces, padded - len);
	return s;
}

static enum rf_status write_tensor(struct rf_file_out *f, const rf_tensor *t)
{
	const void *bytes;
	void *scratch;
	enum rf_status s = rf_file_out_tensor_bytes(t, f->path, &bytes, &scratch);
	if (s == RF_OK)
		s = rf_file_out_write(f, bytes, rf_tensor_nbytes(t));
	free(scratch);
	return s;
}

enum rf_status rf_safetensors_write(const char *path, const struct rf_st_item *items, uint32_t n,
				    const char *const *metadata)
{
	char *header;
	enum rf_status s = build_header(path, items, n, metadata, &header);
	if (s != RF_OK)
		return s;
	struct rf_file_out f;
	if ((s = rf_file_out_open(&f, path)) != RF_OK) {
		free(header);
		return s;
	}
	s = write_prefix(&f, header);
	free(header);
	for (uint32_t i = 0; i < n && s == RF_OK; i++)
		s = write_tensor(&f, items[i].tensor);
	if (s == RF_OK)
		return rf_file_out_commit(&f);
	rf_file_out_abort(&f);
	return s;
}

/* }===== */
