/*
** l_image.c: images from Lua: decoding, CLIP preprocessing of paths into pixel tensors,
** and datasets iterated in batches decoded on worker threads (refract.dataset,
** refract.images). Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "ltensor.h"
#include "clip.h"
#include "dataset.h"
#include "image.h"
#include "status.h"

#include <float.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DATASET_MT "refract.Dataset"
#define LOADER_MT "refract.Loader"

/* {===== preprocessing options */

/* The keys of the tables that preprocessing, datasets and batches take (ended by NULL). */
#define PREPROCESS_KEYS "model", "size", "mean", "std", "resize"
#define DATASET_KEYS "dir", "list", "files", "pattern", "exclude"
#define BATCHES_KEYS "batch", "start", "stop", "workers"
static const char *const preprocess_keys[] = { PREPROCESS_KEYS, NULL };
static const char *const dataset_keys[] = { DATASET_KEYS, NULL };
static const char *const batches_keys[] = { BATCHES_KEYS, PREPROCESS_KEYS, NULL };
static const char *const images_keys[] = { DATASET_KEYS, BATCHES_KEYS, PREPROCESS_KEYS, NULL };

/* Reads preprocessing from a model or an options table {size=, mean=, std=, resize=}
** (raw: no metamethods). Mean and std must be finite numbers (std positive): a NaN or an
** infinity would make every pixel NaN or 0 without a word. */
static struct rf_preprocess check_preprocess(lua_State *L, int idx)
{
	if (luaL_testudata(L, idx, "refract.Model"))
		return rf_clip_get_config(rf_lua_check_model(L, idx))->preprocess;
	luaL_argcheck(L, lua_istable(L, idx), idx, "a model or a table {size=, mean=, std=} expected");
	if (rf_lua_rawfield(L, idx, "model") != LUA_TNIL) {
		struct rf_preprocess p = rf_clip_get_config(rf_lua_check_model(L, lua_gettop(L)))->preprocess;
		lua_pop(L, 1);
		return p;
	}
	lua_pop(L, 1);
	rf_lua_rawfield(L, idx, "size");
	lua_Integer size = luaL_optinteger(L, -1, 224);
	luaL_argcheck(L, size >= 1 && size <= 8192, idx, "size must be in 1..8192");
	struct rf_preprocess p = rf_preprocess_openai((int)size);
	static const char *keys[] = { "mean", "std" };
	for (int k = 0; k < 2; k++) {
		rf_lua_rawfield(L, idx, keys[k]);
		if (lua_istable(L, -1)) {
			luaL_argcheck(L, lua_rawlen(L, -1) == 3, idx, "mean and std need 3 numbers");
			for (int i = 0; i < 3; i++) {
				lua_rawgeti(L, -1, i + 1);
				double d = luaL_checknumber(L, -1);
				if (!(fabs(d) <= FLT_MAX && (k == 0 || d > 0)))
					luaL_argerror(L, idx, lua_pushfstring(L, "%s[%d] is %f: %s", keys[k], i + 1,
									      d, k ? "std must be positive and finite"
										   : "mean must be finite"));
				(k ? p.std : p.mean)[i] = (float)d;
				lua_pop(L, 1);
			}
		} else if (!lua_isnil(L, -1)) {
			luaL_argerror(L, idx, "mean and std need 3 numbers");
		}
		lua_pop(L, 1);
	}
	rf_lua_rawfield(L, idx, "resize");
	const char *mode = luaL_optstring(L, -1, "shortest");
	if (!strcmp(mode, "squash"))
		p.mode = RF_RESIZE_SQUASH;
	else
		luaL_argcheck(L, !strcmp(mode, "shortest"), idx, "resize must be \"shortest\" or \"squash\"");
	lua_pop(L, 2);
	return p;
}

/* }===== */

/* refract.image_load(path) -> u8 host tensor [H, W, C] as stored (C = 1, 2, 3 or 4). */
static int l_image_load(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	/* The handle first: from the load to the free below nothing can raise. */
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	struct rf_image img;
	enum rf_status s = rf_image_load(path, &img);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "image_load");
	struct rf_shape shape = rf_shape_of(3, (int64_t)img.height, (int64_t)img.width, (int64_t)img.channels);
	s = rf_tensor_from_host_data(RF_U8, &shape, img.pixels, &h->t);
	rf_image_fini(&img);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "image_load");
	return 1;
}

/* refract.preprocess(path or {paths}, model or options) -> f32 device [B, 3, S, S]. The
** list is read raw, and each path is used while it is on the stack. */
static int l_preprocess(lua_State *L)
{
	if (lua_istable(L, 2))
		rf_lua_check_keys(L, 2, "preprocess", preprocess_keys);
	struct rf_preprocess p = check_preprocess(L, 2);
	int n = 1;
	if (lua_istable(L, 1))
		n = rf_lua_list_len(L, 1, 1 << 20, "preprocess");
	else
		rf_lua_check_cstring(L, 1);
	luaL_argcheck(L, n >= 1, 1, "no image paths");
	size_t per = 3 * (size_t)p.size * (size_t)p.size;
	float *host = lua_newuserdatauv(L, (size_t)n * per * sizeof(float), 0);
	for (int i = 0; i < n; i++) {
		if (lua_istable(L, 1))
			lua_rawgeti(L, 1, i + 1);
		else
			lua_pushvalue(L, 1);
		char what[48];
		snprintf(what, sizeof what, "preprocess: path %d", i + 1);
		const char *path = rf_lua_to_cstring(L, -1, what);
		enum rf_status s = rf_image_load_preprocessed(path, &p, host + (size_t)i * per);
		if (s != RF_OK)
			return rf_lua_fail(L, s, "preprocess");
		lua_pop(L, 1);
	}
	struct rf_shape shape = rf_shape_of(4, (int64_t)n, (int64_t)3, (int64_t)p.size, (int64_t)p.size);
	rf_tensor *t = rf_lua_new_device_tensor(L, RF_F32, &shape);
	enum rf_status s = rf_tensor_upload(t, host, (uint64_t)n * per * sizeof(float));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "preprocess");
	return 1;
}

/* {===== datasets */

/* A dataset is read by the worker threads of its loaders (the batches iterators): its
** `free` (or __close, or the collector) only closes the handle while a loader is alive,
** and the last loader to finish destroys it. Each loader holds its dataset's userdata
** (as its uservalue), so the memory of the count stays valid for it. */
typedef struct {
	rf_dataset *ds;
	int loaders;          /* live loaders reading ds */
	bool closed;          /* freed from Lua: no more use, destroyed with the last loader */
} ldataset;

typedef struct {
	rf_loader *ld;
	ldataset *owner;      /* released once (loader_release) */
	struct rf_preprocess pre;
	bool busy;            /* inside loader_step */
} lloader;

static rf_dataset *check_dataset(lua_State *L, int idx)
{
	ldataset *h = luaL_checkudata(L, idx, DATASET_MT);
	luaL_argcheck(L, h->ds != NULL && !h->closed, idx, "dataset has been freed");
	return h->ds;
}

static int dataset_free(lua_State *L)
{
	ldataset *h = luaL_checkudata(L, 1, DATASET_MT);
	h->closed = true;
	if (h->loaders == 0) {
		rf_dataset_destroy(h->ds);
		h->ds = NULL;
	}
	return 0;
}

/* Stops the loader's workers, then lets go of its dataset (destroying it if it was freed
** from Lua and this was its last loader). */
static void loader_release(lloader *h)
{
	rf_loader_destroy(h->ld);
	h->ld = NULL;
	ldataset *d = h->owner;
	h->owner = NULL;
	if (d && --d->loaders == 0 && d->closed) {
		rf_dataset_destroy(d->ds);
		d->ds = NULL;
	}
}

/* Whether an image found under `dir` matches a glob (fnmatch): a glob with a '/' is
** matched against the path below dir ('*' not crossing folders), any other against the
** file name. */
static bool glob_matches(const char *glob, const char *path, const char *dir)
{
	const char *rel = path + strlen(dir) + 1;   /* the listing joins dir and name with '/' */
	if (strchr(glob, '/'))
		return fnmatch(glob, rel, FNM_PATHNAME) == 0;
	const char *slash = strrchr(rel, '/');
	return fnmatch(glob, slash ? slash + 1 : rel, 0) == 0;
}

/* Keeps the images of *ds (listed from dir) that match `pattern` (if any) and not
** `exclude` (if any). */
static enum rf_status filter_dataset(lua_State *L, rf_dataset **ds, const char *dir, const char *pattern,
				     const char *exclude)
{
	size_t n = rf_dataset_count(*ds), kept = 0;
	const char **paths = lua_newuserdatauv(L, (n ? n : 1) * sizeof *paths, 0);
	for (size_t i = 0; i < n; i++) {
		const char *p = rf_dataset_path(*ds, i);
		if ((!pattern || glob_matches(pattern, p, dir)) && !(exclude && glob_matches(exclude, p, dir)))
			paths[kept++] = p;
	}
	if (!kept)
		luaL_error(L, "dataset: no image under %s matches%s%s%s%s", dir, pattern ? " pattern " : "",
			   pattern ? pattern : "", exclude ? " without matching exclude " : "", exclude ? exclude : "");
	rf_dataset *filtered;
	enum rf_status s = rf_dataset_from_paths(paths, kept, &filtered);
	lua_pop(L, 1);
	if (s != RF_OK)
		return s;
	rf_dataset_destroy(*ds);
	*ds = filtered;
	return RF_OK;
}

/* refract.dataset{dir= [, pattern=, exclude=]} | {list=} | {files={...}}; `check`: whether
** to refuse keys other than the dataset's (refract.images passes its batches' too). */
static int dataset_open(lua_State *L, bool check)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (check)
		rf_lua_check_keys(L, 1, "dataset", dataset_keys);
	ldataset *h = lua_newuserdatauv(L, sizeof *h, 1);
	*h = (ldataset){ 0 };
	rf_lua_set_handle_mt(L, DATASET_MT);
	enum rf_status s;
	rf_lua_rawfield(L, 1, "pattern");
	rf_lua_rawfield(L, 1, "exclude");
	const char *pattern = lua_isnil(L, -2) ? NULL : rf_lua_to_cstring(L, -2, "dataset: pattern");
	const char *exclude = lua_isnil(L, -1) ? NULL : rf_lua_to_cstring(L, -1, "dataset: exclude");
	rf_lua_rawfield(L, 1, "dir");
	rf_lua_rawfield(L, 1, "list");
	rf_lua_rawfield(L, 1, "files");
	if ((pattern || exclude) && lua_isnil(L, -3))
		return luaL_error(L, "dataset: pattern and exclude go with dir");
	/* Two sources: one of them was used and the other ignored without a word. */
	if (!lua_isnil(L, -3) + !lua_isnil(L, -2) + !lua_isnil(L, -1) > 1)
		return luaL_error(L, "dataset: give one of dir=, list= or files=, not several");
	if (!lua_isnil(L, -3)) {
		const char *dir = rf_lua_to_cstring(L, -3, "dataset: dir");
		s = rf_dataset_from_dir(dir, &h->ds);
		if (s == RF_OK && (pattern || exclude))
			s = filter_dataset(L, &h->ds, dir, pattern, exclude);
	} else if (!lua_isnil(L, -2)) {
		s = rf_dataset_from_list(rf_lua_to_cstring(L, -2, "dataset: list"), &h->ds);
	} else if (lua_istable(L, -1)) {
		/* Read raw, strings only (a number converted on the stack and popped would leave
		** a dangling pointer), kept alive by the table until they are copied. */
		int n = rf_lua_list_len(L, -1, INT32_MAX / 2, "dataset: files");
		const char **paths = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *paths, 0);
		for (int i = 0; i < n; i++) {
			lua_rawgeti(L, -2, i + 1);
			char what[48];
			snprintf(what, sizeof what, "dataset: files[%d]", i + 1);
			paths[i] = rf_lua_to_cstring(L, -1, what);
			lua_pop(L, 1);
		}
		s = rf_dataset_from_paths(paths, (size_t)n, &h->ds);
		lua_pop(L, 1);
	} else {
		return luaL_error(L, "dataset: give one of dir=, list= or files=");
	}
	if (s != RF_OK)
		return rf_lua_fail(L, s, "dataset");
	lua_pop(L, 5);
	return 1;
}

static int l_dataset(lua_State *L)
{
	return dataset_open(L, true);
}

static int l_dataset_unchecked(lua_State *L)
{
	return dataset_open(L, false);
}

static int dataset_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)rf_dataset_count(check_dataset(L, 1)));
	return 1;
}

/* ds:path(i) with i 1-based. */
static int dataset_path(lua_State *L)
{
	rf_dataset *ds = check_dataset(L, 1);
	lua_Integer i = luaL_checkinteger(L, 2);
	luaL_argcheck(L, i >= 1 && (size_t)i <= rf_dataset_count(ds), 2, "index out of range");
	lua_pushstring(L, rf_dataset_path(ds, (size_t)i - 1));
	return 1;
}

static int loader_free(lua_State *L)
{
	loader_release(luaL_checkudata(L, 1, LOADER_MT));
	return 0;
}

/* Iterator step: returns pixels (device [b, 3, S, S]), the 1-based index of the first
** image, and the count; nil at the end. The batch's pixels belong to the loader only
** until its next step, which hands them back to the workers (or, at the end, frees
** them): so from rf_loader_next to the upload nothing runs Lua code, which could call
** the iterator again (a finalizer run by an allocation), but the one collection after a
** device memory error, during which the iterator refuses to run. */
static int loader_step(lua_State *L)
{
	lloader *h = luaL_checkudata(L, lua_upvalueindex(1), LOADER_MT);
	if (!h->ld)
		return 0;
	if (h->busy)
		return luaL_error(L, "loading images: the batches iterator was called while it was "
				  "taking a batch (from a finalizer?)");
	rf_ctx *ctx = rf_lua_ctx(L);
	rf_ltensor *th = rf_lua_push_tensor_handle(L);   /* Lua allocations before the batch */
	const float *pixels;
	size_t index;
	int count;
	enum rf_status s = rf_loader_next(h->ld, &pixels, &index, &count);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "loading images");
	if (count == 0) {
		loader_release(h);
		return 0;
	}
	struct rf_shape shape = rf_shape_of(4, (int64_t)count, (int64_t)3, (int64_t)h->pre.size,
					    (int64_t)h->pre.size);
	s = rf_tensor_create(ctx, RF_F32, &shape, &th->t);
	if (s == RF_ERR_OOM_DEVICE) {
		h->busy = true;              /* lua_gc raises nothing: busy is always reset */
		lua_gc(L, LUA_GCCOLLECT);
		h->busy = false;
		s = rf_tensor_create(ctx, RF_F32, &shape, &th->t);
	}
	if (s == RF_OK)
		s = rf_tensor_upload(th->t, pixels, rf_tensor_nbytes(th->t));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "loading images");
	/* The device memory counted as if Lua had allocated it (rf_lua_new_device_tensor). */
	uint64_t kb = rf_tensor_nbytes(th->t) >> 10;
	if (kb > 0 && lua_gc(L, LUA_GCISRUNNING))
		lua_gc(L, LUA_GCSTEP, (int)RF_MIN(kb, (uint64_t)INT_MAX / 2));
	lua_pushinteger(L, (lua_Integer)index + 1);
	lua_pushinteger(L, count);
	return 3;
}

/* ds:batches{batch=, model= or size=/mean=/std=, start=, stop= (1-based, inclusive),
** workers=} -> iterator */
static int batches_open(lua_State *L, bool check)
{
	rf_dataset *ds = check_dataset(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	if (check)
		rf_lua_check_keys(L, 2, "batches", batches_keys);
	struct rf_preprocess pre = check_preprocess(L, 2);
	rf_lua_rawfield(L, 2, "batch");
	rf_lua_rawfield(L, 2, "start");
	rf_lua_rawfield(L, 2, "workers");
	rf_lua_rawfield(L, 2, "stop");
	lua_Integer batch = luaL_optinteger(L, -4, 8), start = luaL_optinteger(L, -3, 1);
	lua_Integer workers = luaL_optinteger(L, -2, 0);
	lua_Integer stop = luaL_optinteger(L, -1, (lua_Integer)rf_dataset_count(ds));
	lua_pop(L, 4);
	luaL_argcheck(L, batch >= 1 && batch <= 4096, 2, "batch must be in 1..4096");
	luaL_argcheck(L, start >= 1, 2, "start is 1-based");
	luaL_argcheck(L, stop >= start - 1, 2, "stop must not be before start");
	luaL_argcheck(L, workers >= 0 && workers <= 64, 2, "workers must be in 0..64");
	lloader *h = lua_newuserdatauv(L, sizeof *h, 1);
	*h = (lloader){ .pre = pre };
	rf_lua_set_handle_mt(L, LOADER_MT);
	/* The loader's workers read the dataset's paths: the loader holds the dataset's
	** userdata, and the dataset counts its loaders (see ldataset). */
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	ldataset *owner = luaL_checkudata(L, 1, DATASET_MT);
	ds = check_dataset(L, 1);   /* again: the allocations above may have run finalizers */
	enum rf_status s = rf_loader_create(ds, &pre, (int)batch, (int)workers, 2, (size_t)start - 1,
					    (size_t)stop, &h->ld);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "batches");
	h->owner = owner;
	owner->loaders++;
	lua_pushcclosure(L, loader_step, 1);
	return 1;
}

static int dataset_batches(lua_State *L)
{
	return batches_open(L, true);
}

static int batches_unchecked(lua_State *L)
{
	return batches_open(L, false);
}

/* refract.images{dir= | list= | files=, batch=, model= or size=..., start=, stop=,
** workers=} -> the batches iterator of refract.dataset(spec):batches(spec). */
static int l_images(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	rf_lua_check_keys(L, 1, "images", images_keys);
	lua_settop(L, 1);
	lua_pushcfunction(L, l_dataset_unchecked);
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);              /* the dataset, kept alive by the loader's uservalue */
	lua_pushcfunction(L, batches_unchecked);
	lua_insert(L, -2);
	lua_pushvalue(L, 1);
	lua_call(L, 2, 1);
	return 1;
}

/* }===== */

void rf_lua_open_image(lua_State *L)
{
	static const luaL_Reg dataset_methods[] = {
		{ "path", dataset_path }, { "batches", dataset_batches }, { "free", dataset_free },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, DATASET_MT);
	lua_pushcfunction(L, dataset_free);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, dataset_free);
	lua_setfield(L, -2, "__close");
	lua_pushcfunction(L, dataset_len);
	lua_setfield(L, -2, "__len");
	luaL_newlib(L, dataset_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, LOADER_MT);
	lua_pushcfunction(L, loader_free);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	static const luaL_Reg fns[] = {
		{ "image_load", l_image_load }, { "preprocess", l_preprocess }, { "dataset", l_dataset },
		{ "images", l_images },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
