/*
** safetensors.c: memory-mapped, validated reading of safetensors files (writing is in
** safetensors_write.c). Runtime layer (L2).
**
** Every check names the file and the problem; nothing in a hostile file can make a read
** go outside the mapping: ranges are validated against the file size before any entry
** is exposed.
*/
#include "safetensors.h"
#include "file_in.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is refused before it is read (real files: < 1 MiB). */
#define MAX_HEADER (100ull << 20)

struct rf_safetensors {
	char *path;
	int fd;                       /* kept open for reads once unmapped */
	struct timespec mtime;        /* at open: a later read checks the file is unchanged */
	void *map;                    /* NULL once unmapped */
	uint64_t size;
	const uint8_t *data;          /* start of the data section */
	uint64_t data_size;
	struct rf_st_entry *entries;  /* sorted by data offset */
	uint32_t count;
	json_t *metadata;             /* "__metadata__" object or NULL */
};

/* {===== parsing */

static enum rf_status bad(const char *path, const char *fmt, const char *detail)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, detail);
	return rf_error(RF_ERR_FORMAT, "%s: %s", path, msg);
}

static bool valid_utf8(const uint8_t *s, uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		uint8_t c = s[i];
		int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!len || i + (uint64_t)len > n)
			return false;
		uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
		for (int k = 1; k < len; k++) {
			if ((s[i + (uint64_t)k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + (uint64_t)k] & 0x3fu);
		}
		/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += (uint64_t)len;
	}
	return true;
}

static bool json_u64(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static enum rf_status parse_entry(rf_safetensors *st, const char *name, json_t *v,
				  struct rf_st_entry *e)
{
	const char *path = st->path;
	char what[320];
	if (!json_is_object(v)) {
		snprintf(what, sizeof what, "tensor '%s' is not a JSON object", name);
		return bad(path, "%s", what);
	}
	json_t *dtype = json_object_get(v, "dtype");
	json_t *shape = json_object_get(v, "shape");
	json_t *offsets = json_object_get(v, "data_offsets");
	snprintf(what, sizeof what, "%s", name);
	if (!json_is_string(dtype))
		return bad(path, "tensor '%s' has no dtype string", what);
	if (!rf_dtype_parse(json_string_value(dtype), &e->dtype)) {
		snprintf(what, sizeof what, "tensor '%s' has unknown dtype \"%s\" (supported: F32, F16, "
			 "BF16, I64, I32, U8)", name, json_string_value(dtype));
		return bad(path, "%s", what);
	}
	if (!json_is_array(shape) || json_array_size(shape) > RF_MAX_DIMS)
		return bad(path, "tensor '%s' has no shape array of at most 8 dimensions", what);
	e->shape.ndim = (int)json_array_size(shape);
	for (int d = 0; d < e->shape.ndim; d++) {
		uint64_t dim;
		if (!json_u64(json_array_get(shape, (size_t)d), &dim) || dim > INT64_MAX)
			return bad(path, "tensor '%s' has a shape entry that is not a non-negative integer", what);
		e->shape.dim[d] = (int64_t)dim;
	}
	/* Every dimension counts, a zero one too: [0, 2^62, 2^62] holds nothing, but its
	** strides would overflow. */
	if (rf_shape_check(&e->shape, e->dtype, name) != RF_OK)
		return bad(path, "tensor '%s' has a shape too large to address", what);
	uint64_t numel = (uint64_t)rf_shape_numel(&e->shape);
	uint64_t begin, end;
	if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
	    !json_u64(json_array_get(offsets, 0), &begin) || !json_u64(json_array_get(offsets, 1), &end))
		return bad(path, "tensor '%s' needs data_offsets [begin, end] of non-negative integers", what);
	if (begin > end)
		return bad(path, "tensor '%s' has data_offsets with begin after end", what);
	if (end > st->data_size) {
		snprintf(what, sizeof what, "tensor '%s' data range [%llu, %llu) is past the end of the "
			 "file (data section is %llu bytes; truncated file?)", name,
			 (unsigned long long)begin, (unsigned long long)end,
			 (unsigned long long)st->data_size);
		return bad(path, "%s", what);
	}
	uint64_t want = numel * rf_dtype_size(e->dtype);
	if (end - begin != want) {
		char shp[160];
		snprintf(what, sizeof what, "tensor '%s' has %llu bytes of data but shape %s of %s needs "
			 "%llu", name, (unsigned long long)(end - begin),
			 rf_shape_str(&e->shape, shp, sizeof shp), rf_dtype_name(e->dtype),
			 (unsigned long long)want);
		return bad(path, "%s", what);
	}
	e->data = st->data + begin;
	e->nbytes = want;
	e->offset = (uint64_t)(st->data - (const uint8_t *)st->map) + begin;
	return RF_OK;
}

static int by_offset(const void *a, const void *b)
{
	const struct rf_st_entry *x = a, *y = b;
	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* The specification requires the data section to be exactly covered by the tensors:
** no overlaps (two names for the same bytes) and no holes or trailing bytes (room for
** a second, hidden payload: a polyglot file). Empty tensors cover nothing. */
static enum rf_status check_coverage(rf_safetensors *st)
{
	qsort(st->entries, st->count, sizeof *st->entries, by_offset);
	const uint8_t *at = st->data;
	const char *prev = NULL;
	char what[320];
	for (uint32_t i = 0; i < st->count; i++) {
		const struct rf_st_entry *e = &st->entries[i];
		const uint8_t *begin = e->data;
		if (!e->nbytes)
			continue;
		if (begin < at) {
			snprintf(what, sizeof what, "the data of tensors '%s' and '%s' overlap", prev, e->name);
			return bad(st->path, "%s", what);
		}
		if (begin > at) {
			snprintf(what, sizeof what, "data bytes [%llu, %llu) belong to no tensor (a hole "
				 "before '%s')", (unsigned long long)(at - st->data),
				 (unsigned long long)(begin - st->data), e->name);
			return bad(st->path, "%s", what);
		}
		at = begin + e->nbytes;
		prev = e->name;
	}
	if (at != st->data + st->data_size) {
		snprintf(what, sizeof what, "%llu trailing bytes after the last tensor's data",
			 (unsigned long long)(st->data + st->data_size - at));
		return bad(st->path, "%s", what);
	}
	return RF_OK;
}

/* Metadata is a map of strings to strings (the specification's Dict[str, str]). */
static enum rf_status check_metadata(rf_safetensors *st, json_t *md)
{
	if (!json_is_object(md))
		return bad(st->path, "%s", "__metadata__ is not an object");
	const char *key;
	json_t *value;
	json_object_foreach(md, key, value) {
		if (!json_is_string(value)) {
			char what[300];
			snprintf(what, sizeof what, "__metadata__ value of '%s' is not a string", key);
			return bad(st->path, "%s", what);
		}
	}
	return RF_OK;
}

static enum rf_status parse_header(rf_safetensors *st, const uint8_t *text, uint64_t len)
{
	if (!valid_utf8(text, len))
		return bad(st->path, "%s", "the header is not valid UTF-8");
	json_error_t err;
	json_t *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return bad(st->path, "the header is not valid JSON: %s", err.text);
	enum rf_status s = RF_OK;
	if (!json_is_object(root)) {
		s = bad(st->path, "%s", "the header is not a JSON object");
		goto out;
	}
	size_t n = json_object_size(root);
	st->entries = calloc(n ? n : 1, sizeof *st->entries);
	if (!st->entries) {
		s = rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu entries", st->path, n);
		goto out;
	}
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value) {
		if (!strcmp(key, "__metadata__")) {
			if ((s = check_metadata(st, value)) != RF_OK)
				goto out;
			st->metadata = json_incref(value);
			continue;
		}
		struct rf_st_entry *e = &st->entries[st->count];
		e->name = strdup(key);
		if (!e->name) {
			s = rf_error(RF_ERR_OOM_HOST, "%s: copying a tensor name", st->path);
			goto out;
		}
		st->count++;
		if ((s = parse_entry(st, key, value, e)) != RF_OK)
			goto out;
	}
	s = check_coverage(st);
out:
	json_decref(root);
	return s;
}

/* }===== */

/* {===== open and close */

void rf_safetensors_close(rf_safetensors *st)
{
	if (!st)
		return;
	for (uint32_t i = 0; i < st->count; i++)
		free((char *)st->entries[i].name);
	free(st->entries);
	json_decref(st->metadata);
	if (st->map)
		munmap(st->map, st->size);
	if (st->fd >= 0)
		close(st->fd);
	free(st->path);
	free(st);
}

void rf_safetensors_unmap(rf_safetensors *st)
{
	if (!st || !st->map)
		return;
	for (uint32_t i = 0; i < st->count; i++)
		st->entries[i].data = NULL;
	st->data = NULL;
	munmap(st->map, st->size);
	st->map = NULL;
}

/* Whether the open file still has the size and modification time it had when opened. */
static enum rf_status check_unchanged(const rf_safetensors *st)
{
	struct stat info;
	if (fstat(st->fd, &info) != 0)
		return rf_error(RF_ERR_IO, "%s: cannot stat: %s", st->path, strerror(errno));
	if ((uint64_t)info.st_size != st->size || info.st_mtim.tv_sec != st->mtime.tv_sec ||
	    info.st_mtim.tv_nsec != st->mtime.tv_nsec)
		return rf_error(RF_ERR_IO, "%s: the file has changed since it was loaded (its size or "
				"modification time differ): load it again", st->path);
	return RF_OK;
}

enum rf_status rf_safetensors_read_bytes(const rf_safetensors *st, const struct rf_st_entry *e,
					 uint64_t offset, uint64_t n, void *out)
{
	if (offset > e->nbytes || n > e->nbytes - offset)
		return rf_error(RF_ERR_INVALID, "%s: bytes [%llu, +%llu) are outside tensor '%s'",
				st->path, (unsigned long long)offset, (unsigned long long)n, e->name);
	if (e->data) {
		memcpy(out, (const uint8_t *)e->data + offset, n);
		return RF_OK;
	}
	enum rf_status s = check_unchanged(st);
	uint8_t *p = out;
	uint64_t at = e->offset + offset;
	while (s == RF_OK && n > 0) {
		ssize_t r = pread(st->fd, p, (size_t)RF_MIN(n, (uint64_t)1 << 30), (off_t)at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			s = rf_error(RF_ERR_IO, "%s: reading '%s': %s", st->path, e->name, strerror(errno));
		else if (r == 0)
			s = rf_error(RF_ERR_IO, "%s: reading '%s': the file ends early (truncated since it "
				     "was loaded?)", st->path, e->name);
		else {
			p += r;
			at += (uint64_t)r;
			n -= (uint64_t)r;
		}
	}
	return s;
}

static enum rf_status map_file(rf_safetensors *st)
{
	uint64_t size;
	enum rf_status s = rf_file_open_read(st->path, &st->fd, &size);   /* regular files only */
	if (s != RF_OK)
		return s;
	struct stat info;
	if (fstat(st->fd, &info) != 0) {
		s = rf_error(RF_ERR_IO, "%s: cannot stat: %s", st->path, strerror(errno));
	} else if (info.st_size < 8) {
		s = rf_error(RF_ERR_FORMAT, "%s: only %lld bytes: a safetensors file starts with an 8-byte "
			     "header length (empty or truncated file?)", st->path, (long long)info.st_size);
	} else {
		st->size = (uint64_t)info.st_size;
		st->mtime = info.st_mtim;
		st->map = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, st->fd, 0);
		if (st->map == MAP_FAILED) {
			st->map = NULL;
			s = rf_error(RF_ERR_IO, "%s: cannot map: %s", st->path, strerror(errno));
		}
	}
	return s;
}

enum rf_status rf_safetensors_open(const char *path, rf_safetensors **out)
{
	*out = NULL;
	rf_safetensors *st = calloc(1, sizeof *st);
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a reader", path);
	}
	st->fd = -1;
	enum rf_status s = map_file(st);
	if (s != RF_OK)
		goto fail;
	const uint8_t *bytes = st->map;
	uint64_t header = 0;
	for (int i = 7; i >= 0; i--)
		header = (header << 8) | bytes[i];
	if (header > st->size - 8) {
		s = rf_error(RF_ERR_FORMAT, "%s: header length %llu is larger than the %llu bytes that "
			     "follow it (truncated or not a safetensors file)", path,
			     (unsigned long long)header, (unsigned long long)(st->size - 8));
		goto fail;
	}
	if (header > MAX_HEADER) {
		s = rf_error(RF_ERR_FORMAT, "%s: header length %llu is over the %llu-byte limit (not a "
			     "safetensors file?)", path, (unsigned long long)header,
			     (unsigned long long)MAX_HEADER);
		goto fail;
	}
	st->data = bytes + 8 + header;
	st->data_size = st->size - 8 - header;
	if ((s = parse_header(st, bytes + 8, header)) != RF_OK)
		goto fail;
	*out = st;
	return RF_OK;
fail:
	rf_safetensors_close(st);
	return s;
}

/* }===== */

/* {===== queries */

const char *rf_safetensors_path(const rf_safetensors *st)
{
	return st->path;
}

uint32_t rf_safetensors_count(const rf_safetensors *st)
{
	return st->count;
}

const struct rf_st_entry *rf_safetensors_entry(const rf_safetensors *st, uint32_t i)
{
	return i < st->count ? &st->entries[i] : NULL;
}

const struct rf_st_entry *rf_safetensors_find(const rf_safetensors *st, const char *name)
{
	for (uint32_t i = 0; i < st->count; i++)
		if (!strcmp(st->entries[i].name, name))
			return &st->entries[i];
	return NULL;
}

const char *rf_safetensors_metadata(const rf_safetensors *st, const char *key)
{
	json_t *v = st->metadata ? json_object_get(st->metadata, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *rf_safetensors_metadata_key(const rf_safetensors *st, uint32_t i)
{
	/* A walk from the start: metadata holds a handful of keys, and this keeps the
	** reader free of a second index. */
	void *it = st->metadata ? json_object_iter(st->metadata) : NULL;
	for (; it && i > 0; i--)
		it = json_object_iter_next(st->metadata, it);
	return it ? json_object_iter_key(it) : NULL;
}

enum rf_status rf_safetensors_read(const rf_safetensors *st, const char *name, rf_tensor **out)
{
	*out = NULL;
	const struct rf_st_entry *e = rf_safetensors_find(st, name);
	if (!e)
		return rf_error(RF_ERR_INVALID, "%s: no tensor named '%s'", st->path, name);
	enum rf_status s = rf_tensor_create_host(e->dtype, &e->shape, out);
	if (s == RF_OK && (s = rf_safetensors_read_bytes(st, e, 0, e->nbytes, (*out)->host)) != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return s;
}

/* }===== */
