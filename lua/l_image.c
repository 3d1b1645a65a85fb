/*
** l_image.c: images from Lua: decoding, CLIP preprocessing of paths into pixel tensors,
** and datasets iterated in batches decoded on worker threads (refract.dataset,
** refract.images). Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "clip.h"
#include "dataset.h"
#include "image.h"
#include "status.h"

#include <fnmatch.h>
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

/* Reads preprocessing from a model or an options table {size=, mean=, std=, resize=}. */
static struct rf_preprocess check_preprocess(lua_State *L, int idx)
{
	if (luaL_testudata(L, idx, "refract.Model"))
		return rf_clip_get_config(rf_lua_check_model(L, idx))->preprocess;
	luaL_argcheck(L, lua_istable(L, idx), idx, "a model or a table {size=, mean=, std=} expected");
	lua_getfield(L, idx, "model");
	if (!lua_isnil(L, -1)) {
		struct rf_preprocess p = rf_clip_get_config(rf_lua_check_model(L, lua_gettop(L)))->preprocess;
		lua_pop(L, 1);
		return p;
	}
	lua_pop(L, 1);
	lua_getfield(L, idx, "size");
	int size = (int)luaL_optinteger(L, -1, 224);
	luaL_argcheck(L, size >= 1 && size <= 8192, idx, "size must be in 1..8192");
	struct rf_preprocess p = rf_preprocess_openai(size);
	static const char *keys[] = { "mean", "std" };
	for (int k = 0; k < 2; k++) {
		lua_getfield(L, idx, keys[k]);
		if (lua_istable(L, -1)) {
			luaL_argcheck(L, luaL_len(L, -1) == 3, idx, "mean and std need 3 numbers");
			for (int i = 0; i < 3; i++) {
				lua_geti(L, -1, i + 1);
				float v = (float)luaL_checknumber(L, -1);
				if (k == 0)
					p.mean[i] = v;
				else {
					luaL_argcheck(L, v > 0, idx, "std must be positive");
					p.std[i] = v;
				}
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	lua_getfield(L, idx, "resize");
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
	const char *path = luaL_checkstring(L, 1);
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

/* refract.preprocess(path or {paths}, model or options) -> f32 device [B, 3, S, S]. */
static int l_preprocess(lua_State *L)
{
	if (lua_istable(L, 2))
		rf_lua_check_keys(L, 2, "preprocess", preprocess_keys);
	struct rf_preprocess p = check_preprocess(L, 2);
	int n = 1;
	if (lua_istable(L, 1))
		n = (int)luaL_len(L, 1);
	else
		luaL_checkstring(L, 1);
	luaL_argcheck(L, n >= 1, 1, "no image paths");
	size_t per = 3 * (size_t)p.size * (size_t)p.size;
	float *host = lua_newuserdatauv(L, (size_t)n * per * sizeof(float), 0);
	for (int i = 0; i < n; i++) {
		if (lua_istable(L, 1))
			lua_geti(L, 1, i + 1);
		else
			lua_pushvalue(L, 1);
		const char *path = lua_tostring(L, -1);
		if (!path)
			luaL_error(L, "bad argument #1 to 'preprocess': entry %d is not a path", i + 1);
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

typedef struct {
	rf_dataset *ds;
} ldataset;

typedef struct {
	rf_loader *ld;
	struct rf_preprocess pre;
} lloader;

static rf_dataset *check_dataset(lua_State *L, int idx)
{
	ldataset *h = luaL_checkudata(L, idx, DATASET_MT);
	luaL_argcheck(L, h->ds != NULL, idx, "dataset has been freed");
	return h->ds;
}

static int dataset_free(lua_State *L)
{
	ldataset *h = luaL_checkudata(L, 1, DATASET_MT);
	rf_dataset_destroy(h->ds);
	h->ds = NULL;
	return 0;
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
	const char **paths = lua_newuserdatauv(L, n * sizeof *paths, 0);   /* a listing is never empty */
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
	h->ds = NULL;
	luaL_setmetatable(L, DATASET_MT);
	enum rf_status s;
	lua_getfield(L, 1, "pattern");
	lua_getfield(L, 1, "exclude");
	for (int i = -2; i <= -1; i++)
		if (!lua_isnil(L, i) && lua_type(L, i) != LUA_TSTRING)
			return luaL_error(L, "dataset: pattern and exclude must be strings (globs such as \"*.png\")");
	const char *pattern = lua_tostring(L, -2), *exclude = lua_tostring(L, -1);
	lua_getfield(L, 1, "dir");
	lua_getfield(L, 1, "list");
	lua_getfield(L, 1, "files");
	if ((pattern || exclude) && !lua_isstring(L, -3))
		return luaL_error(L, "dataset: pattern and exclude go with dir");
	if (lua_isstring(L, -3)) {
		const char *dir = lua_tostring(L, -3);
		s = rf_dataset_from_dir(dir, &h->ds);
		if (s == RF_OK && (pattern || exclude))
			s = filter_dataset(L, &h->ds, dir, pattern, exclude);
	} else if (lua_isstring(L, -2)) {
		s = rf_dataset_from_list(lua_tostring(L, -2), &h->ds);
	} else if (lua_istable(L, -1)) {
		int n = (int)luaL_len(L, -1);
		const char **paths = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *paths, 0);
		for (int i = 0; i < n; i++) {
			lua_geti(L, -2, i + 1);
			paths[i] = lua_tostring(L, -1);
			if (!paths[i])
				return luaL_error(L, "dataset: files[%d] is not a path", i + 1);
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
	lloader *h = luaL_checkudata(L, 1, LOADER_MT);
	rf_loader_destroy(h->ld);
	h->ld = NULL;
	return 0;
}

/* Iterator step: returns pixels (device [b, 3, S, S]), the 1-based index of the first
** image, and the count; nil at the end. */
static int loader_step(lua_State *L)
{
	lloader *h = luaL_checkudata(L, lua_upvalueindex(1), LOADER_MT);
	if (!h->ld)
		return 0;
	const float *pixels;
	size_t index;
	int count;
	enum rf_status s = rf_loader_next(h->ld, &pixels, &index, &count);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "loading images");
	if (count == 0) {
		rf_loader_destroy(h->ld);
		h->ld = NULL;
		return 0;
	}
	struct rf_shape shape = rf_shape_of(4, (int64_t)count, (int64_t)3, (int64_t)h->pre.size,
					    (int64_t)h->pre.size);
	rf_tensor *t = rf_lua_new_device_tensor(L, RF_F32, &shape);
	if ((s = rf_tensor_upload(t, pixels, rf_tensor_nbytes(t))) != RF_OK)
		return rf_lua_fail(L, s, "loading images");
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
	lua_getfield(L, 2, "batch");
	lua_getfield(L, 2, "start");
	lua_getfield(L, 2, "workers");
	lua_getfield(L, 2, "stop");
	lua_Integer batch = luaL_optinteger(L, -4, 8), start = luaL_optinteger(L, -3, 1);
	lua_Integer workers = luaL_optinteger(L, -2, 0);
	lua_Integer stop = luaL_optinteger(L, -1, (lua_Integer)rf_dataset_count(ds));
	lua_pop(L, 4);
	luaL_argcheck(L, batch >= 1 && batch <= 4096, 2, "batch must be in 1..4096");
	luaL_argcheck(L, start >= 1, 2, "start is 1-based");
	luaL_argcheck(L, stop >= start - 1, 2, "stop must not be before start");
	luaL_argcheck(L, workers >= 0 && workers <= 64, 2, "workers must be in 0..64");
	lloader *h = lua_newuserdatauv(L, sizeof *h, 1);
	h->ld = NULL;
	h->pre = pre;
	luaL_setmetatable(L, LOADER_MT);
	/* The loader reads the dataset's paths: keep the dataset alive with it. */
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	enum rf_status s = rf_loader_create(ds, &pre, (int)batch, (int)workers, 2, (size_t)start - 1,
					    (size_t)stop, &h->ld);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "batches");
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
