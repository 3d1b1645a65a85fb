/*
** l_io.c: tensor files from Lua: refract.read, refract.write, refract.metadata and the
** t:save method, for .npy, .npz and .safetensors files (the extension picks the format).
** Tensors read from files land where refract.tensor would put them: f32 and f16 on the
** device, bf16 widened to f32 on the device (kernels compute in f32/f16), integer
** dtypes (tokens, labels, images) on the host. Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "npy.h"
#include "npz.h"
#include "safetensors.h"
#include "safetensors_write.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

#define READER_MT "refract.SafetensorsReader"
#define NPZ_MT "refract.NpzReader"

enum file_kind { KIND_NPY, KIND_NPZ, KIND_SAFETENSORS };

/* {===== shared */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

static enum file_kind check_kind(lua_State *L, int idx, const char *path)
{
	if (ends_with(path, ".npy"))
		return KIND_NPY;
	if (ends_with(path, ".npz"))
		return KIND_NPZ;
	if (ends_with(path, ".safetensors"))
		return KIND_SAFETENSORS;
	luaL_argerror(L, idx, lua_pushfstring(L, "'%s': unknown file type (the name must end in .npy, "
					      ".npz or .safetensors)", path));
	return KIND_NPY;
}

/* Raises "<verb>: <path>: <problem>". File errors from the runtime already start with
** the path; others (device memory, uploads) get it added. */
static int fail(lua_State *L, enum rf_status s, const char *verb, const char *path)
{
	if (!strncmp(rf_error_message(), path, strlen(path)))
		return rf_lua_fail(L, s, verb);
	return rf_lua_fail(L, s, lua_pushfstring(L, "%s: %s", verb, path));
}

/* }===== */

/* {===== reading */

struct lreader {
	rf_safetensors *st;  /* NULL once closed */
};

static int reader_gc(lua_State *L)
{
	struct lreader *r = luaL_checkudata(L, 1, READER_MT);
	rf_safetensors_close(r->st);
	r->st = NULL;
	return 0;
}

/* Opens `path` into a box on the stack top: if a later error unwinds past it (device
** memory, a Lua allocation), the collector still unmaps the file. */
static rf_safetensors *push_reader(lua_State *L, const char *path)
{
	struct lreader *r = lua_newuserdatauv(L, sizeof *r, 0);
	r->st = NULL;
	rf_lua_set_handle_mt(L, READER_MT);
	enum rf_status s = rf_safetensors_open(path, &r->st);
	if (s != RF_OK)
		fail(L, s, "read", path);
	return r->st;
}

/* Closes the reader at `idx` now rather than at the next collection (files can be big). */
static void close_reader(lua_State *L, int idx)
{
	struct lreader *r = luaL_checkudata(L, idx, READER_MT);
	rf_safetensors_close(r->st);
	r->st = NULL;
}

/* Pushes a tensor holding `data` where scripts expect it (see the file comment). */
static void push_tensor_from(lua_State *L, enum rf_dtype dt, const struct rf_shape *s,
			     const void *data, const char *path)
{
	enum rf_status st;
	/* Out of device memory names the file: a hostile .npz can claim gigabytes. */
	const char *what = lua_pushfstring(L, "read: %s", path);
	int anchor = lua_gettop(L);
	if (dt == RF_BF16) {
		size_t n = (size_t)rf_shape_numel(s);
		float *wide = lua_newuserdatauv(L, n ? n * sizeof *wide : 1, 0);
		rf_convert_to_f32(RF_BF16, data, wide, n);
		rf_tensor *t = rf_lua_new_device_tensor_for(L, RF_F32, s, what);
		st = rf_tensor_upload(t, wide, n * sizeof *wide);
		lua_remove(L, -2);
		lua_remove(L, anchor);
	} else if (rf_lua_dtype_on_device(dt)) {
		rf_tensor *t = rf_lua_new_device_tensor_for(L, dt, s, what);
		st = rf_tensor_upload(t, data, rf_tensor_nbytes(t));
		lua_remove(L, anchor);
	} else {
		lua_remove(L, anchor);
		rf_ltensor *h = rf_lua_push_tensor_handle(L);
		st = rf_tensor_from_host_data(dt, s, data, &h->t);
	}
	if (st != RF_OK)
		fail(L, st, "read", path);
}

static int read_npy(lua_State *L, const char *path)
{
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	enum rf_status s = rf_npy_read(path, &h->t);
	if (s != RF_OK)
		return fail(L, s, "read", path);
	if (!rf_lua_dtype_on_device(h->t->dtype))
		return 1;
	push_tensor_from(L, h->t->dtype, &h->t->shape, h->t->host, path);
	/* The host copy has been uploaded: free it now, not at the next collection. */
	rf_tensor_destroy(h->t);
	h->t = NULL;
	return 1;
}

/* An .npz archive open in a box on the stack top, closed by the collector if an error
** unwinds past it (as push_reader). */
struct lnpz {
	rf_npz *z;
};

static int npz_gc(lua_State *L)
{
	struct lnpz *r = luaL_checkudata(L, 1, NPZ_MT);
	rf_npz_close(r->z);
	r->z = NULL;
	return 0;
}

static rf_npz *push_npz(lua_State *L, const char *path)
{
	struct lnpz *r = lua_newuserdatauv(L, sizeof *r, 0);
	r->z = NULL;
	rf_lua_set_handle_mt(L, NPZ_MT);
	enum rf_status s = rf_npz_open(path, &r->z);
	if (s != RF_OK)
		fail(L, s, "read", path);
	return r->z;
}

/* Reads member `name` of the archive at `box` and pushes it where scripts expect it. */
static void push_npz_tensor(lua_State *L, rf_npz *z, const char *name, const char *path)
{
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	enum rf_status s = rf_npz_read(z, name, &h->t);
	if (s != RF_OK)
		fail(L, s, "read", path);
	if (!rf_lua_dtype_on_device(h->t->dtype))
		return;
	push_tensor_from(L, h->t->dtype, &h->t->shape, h->t->host, path);
	rf_tensor_destroy(h->t);
	h->t = NULL;
	lua_remove(L, -2);
}

static int missing_npz_name(lua_State *L, const rf_npz *z, const char *path, const char *name)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	uint32_t n = rf_npz_count(z);
	for (uint32_t i = 0; i < n && i < 6; i++) {
		luaL_addstring(&b, i ? ", " : "");
		luaL_addstring(&b, i < 5 ? rf_npz_name(z, i) : "...");
	}
	luaL_pushresult(&b);
	return luaL_error(L, "read: %s: no tensor named '%s' (it has: %s)", path, name,
			  n ? lua_tostring(L, -1) : "no tensors");
}

/* refract.read on an .npz file: the member `name`, or all of them by name. */
static int read_npz(lua_State *L, const char *path, const char *name)
{
	rf_npz *z = push_npz(L, path);
	int box = lua_gettop(L);
	if (name) {
		if (!rf_npz_has(z, name))
			return missing_npz_name(L, z, path, name);
		push_npz_tensor(L, z, name, path);
	} else {
		uint32_t n = rf_npz_count(z);
		lua_createtable(L, 0, (int)n);
		for (uint32_t i = 0; i < n; i++) {
			push_npz_tensor(L, z, rf_npz_name(z, i), path);
			lua_setfield(L, -2, rf_npz_name(z, i));
		}
	}
	lua_pushcfunction(L, npz_gc);
	lua_pushvalue(L, box);
	lua_call(L, 1, 0);
	return 1;
}

/* "no tensor named 'x' (it has: a, b, c, ...)": the names help spot a typo. */
static int missing_name(lua_State *L, const rf_safetensors *st, const char *path, const char *name)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	uint32_t n = rf_safetensors_count(st);
	for (uint32_t i = 0; i < n && i < 6; i++) {
		luaL_addstring(&b, i ? ", " : "");
		luaL_addstring(&b, i < 5 ? rf_safetensors_entry(st, i)->name : "...");
	}
	luaL_pushresult(&b);
	return luaL_error(L, "read: %s: no tensor named '%s' (it has: %s)", path, name,
			  n ? lua_tostring(L, -1) : "no tensors");
}

/* refract.read(path [, name]): a .npy file gives its tensor; a .safetensors file gives
** the tensor called `name`, or without a name a table of all its tensors by name. */
static int l_read(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	const char *name = lua_isnoneornil(L, 2) ? NULL : rf_lua_check_cstring(L, 2);
	enum file_kind kind = check_kind(L, 1, path);
	if (kind == KIND_NPY) {
		luaL_argcheck(L, !name, 2, "a .npy file holds one unnamed tensor");
		return read_npy(L, path);
	}
	if (kind == KIND_NPZ)
		return read_npz(L, path, name);
	rf_safetensors *st = push_reader(L, path);
	int reader = lua_gettop(L);
	if (name) {
		const struct rf_st_entry *e = rf_safetensors_find(st, name);
		if (!e)
			return missing_name(L, st, path, name);
		push_tensor_from(L, e->dtype, &e->shape, e->data, path);
	} else {
		uint32_t n = rf_safetensors_count(st);
		lua_createtable(L, 0, (int)n);
		for (uint32_t i = 0; i < n; i++) {
			const struct rf_st_entry *e = rf_safetensors_entry(st, i);
			push_tensor_from(L, e->dtype, &e->shape, e->data, path);
			lua_setfield(L, -2, e->name);
		}
	}
	close_reader(L, reader);
	return 1;
}

/* refract.metadata(path): the "__metadata__" strings of a .safetensors file, or the
** "__metadata__.json" member of an .npz file, as a table (empty if it has none). */
static int l_metadata(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	enum file_kind kind = check_kind(L, 1, path);
	luaL_argcheck(L, kind != KIND_NPY, 1, "metadata is only kept in .safetensors and .npz files");
	if (kind == KIND_NPZ) {
		rf_npz *z = push_npz(L, path);
		lua_newtable(L);
		const char *key;
		for (uint32_t i = 0; (key = rf_npz_metadata_key(z, i)) != NULL; i++) {
			lua_pushstring(L, rf_npz_metadata(z, key));
			lua_setfield(L, -2, key);
		}
		return 1;
	}
	rf_safetensors *st = push_reader(L, path);
	int reader = lua_gettop(L);
	lua_newtable(L);
	const char *key;
	for (uint32_t i = 0; (key = rf_safetensors_metadata_key(st, i)) != NULL; i++) {
		lua_pushstring(L, rf_safetensors_metadata(st, key));
		lua_setfield(L, -2, key);
	}
	close_reader(L, reader);
	return 1;
}

/* }===== */

/* {===== writing */

/* Widest dtypes first, then by name (as the reference writer orders them): the data
** section starts 8-byte aligned, so every tensor then starts aligned to its element
** size, which readers that map the file into typed arrays rely on. */
static int by_alignment(const void *a, const void *b)
{
	const struct rf_st_item *x = a, *y = b;
	size_t sx = rf_dtype_size(x->tensor->dtype), sy = rf_dtype_size(y->tensor->dtype);
	if (sx != sy)
		return sx > sy ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The live tensor in a name -> tensor table's value on the stack top, or an error that
** names the key. */
static const rf_tensor *table_tensor(lua_State *L, const char *key)
{
	rf_ltensor *h = luaL_testudata(L, -1, RF_TENSOR_MT);
	if (!h)
		luaL_error(L, "write: the value for '%s' is a %s, not a tensor", key, luaL_typename(L, -1));
	if (!h->t)
		luaL_error(L, "write: tensor '%s' has been freed", key);
	return h->t;
}

/* The items to write from the value at `idx`: a tensor (named "tensor") or a table of
** name -> tensor, sorted (by_alignment) so the file does not depend on table order. The
** array is a userdata left on the stack; names point into the (anchored) table. */
static uint32_t check_items(lua_State *L, int idx, struct rf_st_item **out)
{
	rf_ltensor *one = luaL_testudata(L, idx, RF_TENSOR_MT);
	if (one) {
		struct rf_st_item *it = lua_newuserdatauv(L, sizeof *it, 0);
		it->name = "tensor";
		it->tensor = rf_lua_check_tensor(L, idx);
		*out = it;
		return 1;
	}
	if (!lua_istable(L, idx))
		luaL_typeerror(L, idx, "tensor or table of tensors");
	uint32_t n = 0;
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
		n++;
	struct rf_st_item *items = lua_newuserdatauv(L, (n ? n : 1) * sizeof *items, 0);
	uint32_t at = 0;
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
		/* Only real strings: lua_tostring on a number key would confuse lua_next. */
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "write: tensor names must be strings (found a %s key)",
				   luaL_typename(L, -2));
		items[at].name = rf_lua_to_cstring(L, -2, "write: a tensor name");
		items[at].tensor = table_tensor(L, items[at].name);
		at++;
	}
	qsort(items, n, sizeof *items, by_alignment);
	*out = items;
	return n;
}

struct kv {
	const char *key, *value;
};

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

/* Metadata from a table of string -> string at `idx` (nil: none), as the NULL-terminated
** key, value list rf_safetensors_write takes, sorted by key; left on the stack. */
static const char *const *check_metadata(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return NULL;
	luaL_checktype(L, idx, LUA_TTABLE);
	uint32_t n = 0;
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
		n++;
	struct kv *pairs = lua_newuserdatauv(L, (n ? n : 1) * sizeof *pairs, 0);
	const char **list = lua_newuserdatauv(L, (2 * n + 1) * sizeof *list, 0);
	uint32_t at = 0;
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "write: metadata keys and values must be strings (found %s = %s)",
				   luaL_typename(L, -2), luaL_typename(L, -1));
		pairs[at++] = (struct kv){ rf_lua_to_cstring(L, -2, "write: a metadata key"),
					   rf_lua_to_cstring(L, -1, "write: a metadata value") };
	}
	qsort(pairs, n, sizeof *pairs, by_key);
	for (uint32_t i = 0; i < n; i++) {
		list[2 * i] = pairs[i].key;
		list[2 * i + 1] = pairs[i].value;
	}
	list[2 * n] = NULL;
	return list;
}

static int write_value(lua_State *L, int path_idx, int x_idx, int md_idx)
{
	/* Absent arguments become nils, so what is pushed below never looks like one. */
	lua_settop(L, 3);
	const char *path = rf_lua_check_cstring(L, path_idx);
	enum rf_status s;
	enum file_kind kind = check_kind(L, path_idx, path);
	if (kind == KIND_NPY) {
		luaL_argcheck(L, lua_isnoneornil(L, md_idx), md_idx, "metadata needs a .safetensors or .npz file");
		luaL_argcheck(L, !lua_istable(L, x_idx), x_idx,
			      "a .npy file holds one tensor, not a table (use .safetensors or .npz)");
		s = rf_npy_write(path, rf_lua_check_tensor(L, x_idx));
	} else {
		/* The metadata first: its allocations (which may run finalizers) come before the
		** tensors are looked up, and nothing allocates from there to the write. */
		const char *const *md = check_metadata(L, md_idx);
		struct rf_st_item *items;
		uint32_t n = check_items(L, x_idx, &items);
		s = kind == KIND_NPZ ? rf_npz_write(path, items, n, md) : rf_safetensors_write(path, items, n, md);
	}
	if (s != RF_OK)
		return fail(L, s, "write", path);
	return 0;
}

/* refract.write(path, x [, metadata]): x is a tensor or (.safetensors, .npz) a table of
** name -> tensor; metadata (.safetensors, .npz) a table of string -> string. */
static int l_write(lua_State *L)
{
	return write_value(L, 1, 2, 3);
}

/* t:save(path [, metadata]): refract.write(path, t, metadata). */
static int t_save(lua_State *L)
{
	rf_lua_check_tensor(L, 1);
	return write_value(L, 2, 1, 3);
}

/* }===== */

void rf_lua_open_io(lua_State *L)
{
	static const luaL_Reg reader_meta[] = {
		{ "__gc", reader_gc }, { "__close", reader_gc }, { NULL, NULL },
	};
	luaL_newmetatable(L, READER_MT);
	luaL_setfuncs(L, reader_meta, 0);
	lua_pop(L, 1);
	static const luaL_Reg npz_meta[] = {
		{ "__gc", npz_gc }, { "__close", npz_gc }, { NULL, NULL },
	};
	luaL_newmetatable(L, NPZ_MT);
	luaL_setfuncs(L, npz_meta, 0);
	lua_pop(L, 1);
	static const luaL_Reg funcs[] = {
		{ "read", l_read }, { "write", l_write }, { "metadata", l_metadata }, { NULL, NULL },
	};
	luaL_setfuncs(L, funcs, 0);
	/* t:save joins the tensor methods (module.Tensor, set by rf_lua_open_tensor). */
	lua_getfield(L, -1, "Tensor");
	lua_pushcfunction(L, t_save);
	lua_setfield(L, -2, "save");
	lua_pop(L, 1);
}
