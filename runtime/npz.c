/*
** npz.c: NumPy .npz archives through libzip (see npz.h). Runtime layer (L2).
**
** Writing hands libzip each member as two fragments, the .npy header and the tensor's
** bytes, so nothing is copied; libzip builds the archive at `path.tmp` (through its own
** temporary file) when it is closed, and rf_file_out_publish then flushes and renames it.
*/
#include "npz.h"
#include "host_memory.h"
#include "file_out.h"
#include "npy.h"
#include "status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

/* 2000-01-01 00:00:00 UTC: the date every member carries (see npz.h). */
#define FIXED_MTIME ((time_t)946684800)

/* {===== shared */

/* libzip's message for an error code from zip_open. */
static enum rf_status zip_open_error(enum rf_status s, const char *path, const char *what, int code)
{
	zip_error_t e;
	zip_error_init_with_code(&e, code);
	s = rf_error(s, "%s: %s: %s", path, what, zip_error_strerror(&e));
	zip_error_fini(&e);
	return s;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* }===== */

/* {===== writing */

/* One member's pieces; they must live until zip_close has written them. */
struct member {
	char header[RF_NPY_HEADER_MAX];
	const void *bytes;
	void *scratch;      /* downloaded or widened data (malloc'd), or NULL */
};

/* The data of `t` as the .npy file holds it: bf16 widened to f32 (NumPy has none). */
static enum rf_status member_data(const rf_tensor *t, const char *path, struct member *m)
{
	enum rf_status s = rf_file_out_tensor_bytes(t, path, &m->bytes, &m->scratch);
	if (s != RF_OK || t->dtype != RF_BF16)
		return s;
	size_t n = (size_t)rf_tensor_numel(t);
	float *wide = malloc(n ? n * sizeof *wide : 1);
	if (!wide)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu floats to widen bf16", path, n);
	rf_convert_to_f32(RF_BF16, m->bytes, wide, n);
	free(m->scratch);
	m->bytes = m->scratch = wide;
	return RF_OK;
}

static enum rf_status check_items(const char *path, const struct rf_st_item *items, uint32_t n,
				  const char *const *metadata)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!items[i].name || !items[i].name[0] || !items[i].tensor)
			return rf_error(RF_ERR_INVALID, "%s: item %u has no name or no tensor", path, i + 1);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(items[i].name, items[j].name))
				return rf_error(RF_ERR_INVALID, "%s: tensor name '%s' is used twice", path,
						items[i].name);
	}
	for (size_t i = 0; metadata && metadata[i]; i += 2)
		if (!metadata[i + 1])
			return rf_error(RF_ERR_INVALID, "%s: metadata key '%s' has no value", path, metadata[i]);
	return RF_OK;
}

/* Adds `n` bytes as member `name`, stored (no compression) with the fixed date. libzip
** owns the source once zip_file_add succeeds; before that it is ours to free. */
static enum rf_status add_member(zip_t *za, const char *path, const char *name,
				 const zip_buffer_fragment_t *parts, int nparts)
{
	zip_source_t *src = zip_source_buffer_fragment(za, parts, (zip_uint64_t)nparts, 0);
	if (!src)
		return rf_error(RF_ERR_OOM_HOST, "%s: adding %s: %s", path, name, zip_strerror(za));
	zip_int64_t at = zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8);
	if (at < 0) {
		zip_source_free(src);
		return rf_error(RF_ERR_IO, "%s: adding %s: %s", path, name, zip_strerror(za));
	}
	if (zip_set_file_compression(za, (zip_uint64_t)at, ZIP_CM_STORE, 0) != 0 ||
	    zip_file_set_mtime(za, (zip_uint64_t)at, FIXED_MTIME, 0) != 0)
		return rf_error(RF_ERR_IO, "%s: adding %s: %s", path, name, zip_strerror(za));
	return RF_OK;
}

static enum rf_status add_tensor(zip_t *za, const char *path, const struct rf_st_item *it,
				 struct member *m)
{
	enum rf_status s = member_data(it->tensor, path, m);
	if (s != RF_OK)
		return s;
	size_t hlen = rf_npy_format_header(it->tensor, m->header, sizeof m->header);
	uint64_t bytes = (uint64_t)rf_tensor_numel(it->tensor) *
		(it->tensor->dtype == RF_BF16 ? sizeof(float) : rf_dtype_size(it->tensor->dtype));
	zip_buffer_fragment_t parts[2] = {
		{ (zip_uint8_t *)m->header, hlen }, { (zip_uint8_t *)m->bytes, bytes },
	};
	size_t n = strlen(it->name);
	char *name = malloc(n + sizeof ".npy");
	if (!name)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a member name", path);
	memcpy(name, it->name, n);
	memcpy(name + n, ".npy", sizeof ".npy");
	s = add_member(za, path, name, parts, bytes ? 2 : 1);
	free(name);
	return s;
}

/* The metadata pairs as a JSON object (malloc'd text in *out). */
static enum rf_status metadata_json(const char *path, const char *const *metadata, char **out)
{
	json_t *obj = json_object();
	enum rf_status s = obj ? RF_OK : rf_error(RF_ERR_OOM_HOST, "%s: building metadata", path);
	for (size_t i = 0; s == RF_OK && metadata[i]; i += 2) {
		json_t *v = json_string(metadata[i + 1]);
		if (!v || json_object_set_new(obj, metadata[i], v) != 0)
			s = rf_error(RF_ERR_INVALID, "%s: metadata '%s' is not valid UTF-8", path, metadata[i]);
	}
	if (s == RF_OK && !(*out = json_dumps(obj, JSON_SORT_KEYS | JSON_INDENT(1))))
		s = rf_error(RF_ERR_OOM_HOST, "%s: writing metadata", path);
	json_decref(obj);
	return s;
}

/* Adds every member; the buffers stay in `members` and `*md` for zip_close. */
static enum rf_status add_all(zip_t *za, const char *path, const struct rf_st_item *items, uint32_t n,
			      const char *const *metadata, struct member *members, char **md)
{
	enum rf_status s = RF_OK;
	for (uint32_t i = 0; i < n && s == RF_OK; i++)
		s = add_tensor(za, path, &items[i], &members[i]);
	if (s == RF_OK && metadata && (s = metadata_json(path, metadata, md)) == RF_OK) {
		zip_buffer_fragment_t part = { (zip_uint8_t *)*md, strlen(*md) };
		s = add_member(za, path, RF_NPZ_METADATA, &part, 1);
	}
	return s;
}

enum rf_status rf_npz_write(const char *path, const struct rf_st_item *items, uint32_t n,
			    const char *const *metadata)
{
	enum rf_status s = check_items(path, items, n, metadata);
	if (s != RF_OK)
		return s;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + sizeof ".tmp");
	struct member *members = calloc(n ? n : 1, sizeof *members);
	if (!tmp || !members) {
		free(tmp);
		free(members);
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating %u members", path, n);
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", sizeof ".tmp");
	int code = 0;
	char *md = NULL;
	zip_t *za = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &code);
	if (!za)
		s = zip_open_error(RF_ERR_IO, path, "cannot create", code);
	if (za && (s = add_all(za, path, items, n, metadata, members, &md)) != RF_OK)
		zip_discard(za);
	else if (za && zip_close(za) != 0) {
		s = rf_error(RF_ERR_IO, "%s: writing %s: %s", path, tmp, zip_strerror(za));
		zip_discard(za);
	}
	/* An empty archive: libzip writes no file at all, but np.load wants one. */
	if (s == RF_OK && n == 0 && !metadata) {
		static const uint8_t empty_zip[22] = { 0x50, 0x4b, 0x05, 0x06 };
		struct rf_file_out f;
		if ((s = rf_file_out_open(&f, path)) == RF_OK &&
		    (s = rf_file_out_write(&f, empty_zip, sizeof empty_zip)) == RF_OK)
			s = rf_file_out_commit(&f);
		else
			rf_file_out_abort(&f);
	} else if (s == RF_OK)
		s = rf_file_out_publish(tmp, path);
	else
		unlink(tmp);   /* a stale one from an earlier run; libzip wrote nothing */
	for (uint32_t i = 0; i < n; i++)
		free(members[i].scratch);
	free(members);
	free(md);
	free(tmp);
	return s;
}

/* }===== */

/* {===== reading */

struct rf_npz {
	zip_t *za;
	char *path;
	uint32_t count;
	char **names;             /* without ".npy" */
	zip_uint64_t *index;      /* each name's member index */
	json_t *metadata;         /* an object of strings (empty if absent) */
};

void rf_npz_close(rf_npz *z)
{
	if (!z)
		return;
	if (z->za)
		zip_discard(z->za);
	for (uint32_t i = 0; i < z->count; i++)
		free(z->names[i]);
	free(z->names);
	free(z->index);
	json_decref(z->metadata);
	free(z->path);
	free(z);
}

/* The whole member `at` (uncompressed) into a malloc'd buffer. */
static enum rf_status read_member(rf_npz *z, zip_uint64_t at, const char *name, uint8_t **out,
				  uint64_t *size)
{
	zip_stat_t st;
	*out = NULL;
	if (zip_stat_index(z->za, at, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
		return rf_error(RF_ERR_FORMAT, "%s: %s: %s", z->path, name, zip_strerror(z->za));
	/* The size is what the archive claims: a crafted one claims terabytes, which malloc
	** refuses at best (a sanitizer build aborts). A stored member holds exactly its
	** bytes, and deflate expands at most 1032-fold. */
	bool known = (st.valid & ZIP_STAT_COMP_SIZE) && (st.valid & ZIP_STAT_COMP_METHOD);
	uint64_t most = !known ? UINT64_MAX
		: st.comp_method == ZIP_CM_STORE ? st.comp_size
		: st.comp_method == ZIP_CM_DEFLATE && st.comp_size < UINT64_MAX / 1032 - 1024
		? st.comp_size * 1032 + 1024 : UINT64_MAX;
	if (st.size > most || st.size > rf_host_memory_limit())
		return rf_error(RF_ERR_FORMAT, "%s: %s: the archive claims %llu bytes for the member, "
				"more than its %llu compressed bytes can hold or this machine's memory "
				"(corrupt or crafted archive)", z->path, name,
				(unsigned long long)st.size, (unsigned long long)st.comp_size);
	uint8_t *buf = malloc(st.size ? st.size : 1);
	if (!buf)
		return rf_error(RF_ERR_OOM_HOST, "%s: %s: allocating %llu bytes", z->path, name,
				(unsigned long long)st.size);
	zip_file_t *f = zip_fopen_index(z->za, at, 0);
	zip_int64_t got = f ? zip_fread(f, buf, st.size) : -1;
	/* libzip checks the CRC only on reaching the end: read once more to get there. */
	uint8_t past;
	if (got >= 0 && (zip_uint64_t)got == st.size && zip_fread(f, &past, 1) != 0)
		got = -1;
	enum rf_status s = RF_OK;
	if (got < 0 || (zip_uint64_t)got != st.size)
		s = rf_error(RF_ERR_FORMAT, "%s: %s: cannot read the member: %s", z->path, name,
			     f ? zip_file_strerror(f) : zip_strerror(z->za));
	if (f)
		zip_fclose(f);
	if (s != RF_OK) {
		free(buf);
		return s;
	}
	*out = buf;
	*size = st.size;
	return RF_OK;
}

static enum rf_status load_metadata(rf_npz *z, zip_uint64_t at)
{
	uint8_t *text;
	uint64_t n;
	enum rf_status s = read_member(z, at, RF_NPZ_METADATA, &text, &n);
	if (s != RF_OK)
		return s;
	json_error_t err;
	json_t *obj = json_loadb((const char *)text, (size_t)n, 0, &err);
	free(text);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return rf_error(RF_ERR_FORMAT, "%s: %s is not a JSON object", z->path, RF_NPZ_METADATA);
	}
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
		if (!json_is_string(v)) {
			/* The message first: `key` belongs to obj. */
			s = rf_error(RF_ERR_FORMAT, "%s: %s: the value of '%s' is not a string", z->path,
				     RF_NPZ_METADATA, key);
			json_decref(obj);
			return s;
		}
	json_decref(z->metadata);
	z->metadata = obj;
	return RF_OK;
}

/* Lists the .npy members and reads the metadata. */
static enum rf_status index_members(rf_npz *z)
{
	zip_int64_t n = zip_get_num_entries(z->za, 0);
	int metadata_seen = 0;
	z->names = calloc(n > 0 ? (size_t)n : 1, sizeof *z->names);
	z->index = calloc(n > 0 ? (size_t)n : 1, sizeof *z->index);
	if (!z->names || !z->index || !(z->metadata = json_object()))
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating the member list", z->path);
	for (zip_int64_t i = 0; i < n; i++) {
		const char *name = zip_get_name(z->za, (zip_uint64_t)i, 0);
		if (!name)
			return rf_error(RF_ERR_FORMAT, "%s: member %lld: %s", z->path, (long long)i + 1,
					zip_strerror(z->za));
		/* Two members of one name would make a read pick one of them silently (NumPy
		** takes the last); libzip locates a name through its hash table. */
		if (zip_name_locate(z->za, name, 0) != i)
			return rf_error(RF_ERR_FORMAT, "%s: the member '%s' appears more than once",
					z->path, name);
		if (!strcmp(name, RF_NPZ_METADATA)) {
			if (metadata_seen++)
				return rf_error(RF_ERR_FORMAT, "%s: two members are named '%s': the archive "
						"is ambiguous", z->path, name);
			enum rf_status s = load_metadata(z, (zip_uint64_t)i);
			if (s != RF_OK)
				return s;
		} else if (ends_with(name, ".npy")) {
			size_t len = strlen(name) - 4;
			if (!(z->names[z->count] = strndup(name, len)))
				return rf_error(RF_ERR_OOM_HOST, "%s: allocating a name", z->path);
			/* Two members of one name: NumPy reads the last, a reader by name the
			** first; either would be a silent choice. */
			for (uint32_t k = 0; k < z->count; k++)
				if (!strcmp(z->names[k], z->names[z->count])) {
					free(z->names[z->count]);
					z->names[z->count] = NULL;
					return rf_error(RF_ERR_FORMAT, "%s: two members are named '%s': the "
							"archive is ambiguous", z->path, name);
				}
			z->index[z->count++] = (zip_uint64_t)i;
		}
	}
	return RF_OK;
}

enum rf_status rf_npz_open(const char *path, rf_npz **out)
{
	*out = NULL;
	rf_npz *z = calloc(1, sizeof *z);
	if (!z || !(z->path = strdup(path))) {
		free(z);
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a reader", path);
	}
	int code = 0;
	z->za = zip_open(path, ZIP_RDONLY, &code);
	enum rf_status s = RF_OK;
	if (!z->za)
		s = zip_open_error(code == ZIP_ER_NOZIP || code == ZIP_ER_INCONS ? RF_ERR_FORMAT : RF_ERR_IO,
				   path, code == ZIP_ER_NOZIP ? "not an .npz file" : "cannot open", code);
	else
		s = index_members(z);
	if (s != RF_OK) {
		rf_npz_close(z);
		return s;
	}
	*out = z;
	return RF_OK;
}

uint32_t rf_npz_count(const rf_npz *z)
{
	return z->count;
}

const char *rf_npz_name(const rf_npz *z, uint32_t i)
{
	return i < z->count ? z->names[i] : NULL;
}

static int find(const rf_npz *z, const char *name)
{
	for (uint32_t i = 0; i < z->count; i++)
		if (!strcmp(z->names[i], name))
			return (int)i;
	return -1;
}

bool rf_npz_has(const rf_npz *z, const char *name)
{
	return find(z, name) >= 0;
}

enum rf_status rf_npz_read(rf_npz *z, const char *name, rf_tensor **out)
{
	*out = NULL;
	int i = find(z, name);
	if (i < 0)
		return rf_error(RF_ERR_INVALID, "%s: no tensor named '%s'", z->path, name);
	size_t n = strlen(z->path) + strlen(name) + 2;
	char *label = malloc(n);
	if (!label)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a name", z->path);
	snprintf(label, n, "%s:%s", z->path, name);
	uint8_t *bytes;
	uint64_t size;
	enum rf_status s = read_member(z, z->index[i], name, &bytes, &size);
	if (s == RF_OK) {
		s = rf_npy_parse(bytes, size, label, out);
		free(bytes);
	}
	free(label);
	return s;
}

const char *rf_npz_metadata_key(const rf_npz *z, uint32_t i)
{
	/* json_object_iter order is the file's (jansson keeps insertion order). */
	void *it = json_object_iter(z->metadata);
	for (uint32_t k = 0; it && k < i; k++)
		it = json_object_iter_next(z->metadata, it);
	return it ? json_object_iter_key(it) : NULL;
}

const char *rf_npz_metadata(const rf_npz *z, const char *key)
{
	return json_string_value(json_object_get(z->metadata, key));
}

/* }===== */
