/*
** l_segment.c: the scoring steps of zero-shot segmentation from Lua (segment.h):
** refract.segment_relevance, refract.segment_score and refract.mask_labels. The maps
** come from lua/lib/refract/segment.lua. Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "image.h"
#include "segment.h"
#include "status.h"

#include <math.h>
#include <string.h>

/* The values of a float map with at least one element, as f32 in a userdata left on the
** stack top. */
static float *map_floats(lua_State *L, const rf_tensor *t, const char *fn)
{
	size_t n = (size_t)rf_tensor_numel(t);
	if (n == 0 || t->shape.ndim < 1)
		luaL_error(L, "%s: the map must have at least one value (shape %s)", fn,
			   rf_lua_push_shape_str(L, &t->shape));
	const double *v = rf_lua_tensor_values(L, t);
	float *f = lua_newuserdatauv(L, n * sizeof *f, 0);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	lua_remove(L, -2);
	return f;
}

/* refract.segment_relevance(map) -> f32 tensor of the same shape: the map clamped to
** [0, its max], then scaled to [0, 1] (NaN everywhere for a constant map). */
static int l_segment_relevance(lua_State *L)
{
	const rf_tensor *t = rf_lua_check_tensor(L, 1);
	size_t n = (size_t)rf_tensor_numel(t);
	const float *u = map_floats(L, t, "segment_relevance");
	float *r = lua_newuserdatauv(L, n * sizeof *r, 0);
	rf_seg_relevance(u, n, r);
	rf_tensor *out = rf_lua_new_device_tensor(L, RF_F32, &t->shape);
	enum rf_status s = rf_tensor_upload(out, r, rf_tensor_nbytes(out));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "segment_relevance");
	return 1;
}

static void set_int(lua_State *L, const char *key, int64_t v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, key);
}

static void set_pair(lua_State *L, const char *key, const int64_t v[2])
{
	lua_createtable(L, 2, 0);
	for (int i = 0; i < 2; i++) {
		lua_pushinteger(L, (lua_Integer)v[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, key);
}

/* refract.segment_score(relevance [, labels]) -> score, mask. mask: u8 host tensor of
** relevance's shape, 1 where relevance > its mean. score: {threshold} and, with labels
** (a tensor of the same shape, nonzero = object), correct, labeled, inter = {background,
** object}, union = {background, object} and ap (see segment.h). */
static int l_segment_score(lua_State *L)
{
	lua_settop(L, 2);
	const rf_tensor *t = rf_lua_check_tensor(L, 1);
	size_t n = (size_t)rf_tensor_numel(t);
	const float *rel = map_floats(L, t, "segment_score");
	const uint8_t *labels = NULL;
	if (!lua_isnil(L, 2)) {
		const rf_tensor *lt = rf_lua_check_tensor(L, 2);
		if (!rf_shape_equal(&lt->shape, &t->shape)) {
			const char *a = rf_lua_push_shape_str(L, &lt->shape);
			return luaL_error(L, "segment_score: labels %s must have the relevance's shape %s", a,
					  rf_lua_push_shape_str(L, &t->shape));
		}
		const double *v = rf_lua_tensor_values(L, lt);
		uint8_t *l = lua_newuserdatauv(L, n, 0);
		for (size_t i = 0; i < n; i++)
			l[i] = v[i] != 0;
		labels = l;
	}
	rf_ltensor *mh = rf_lua_push_tensor_handle(L);
	enum rf_status s = rf_tensor_create_host(RF_U8, &t->shape, &mh->t);
	struct rf_seg_score sc;
	if (s == RF_OK)
		s = rf_seg_score(rel, labels, n, mh->t->host, &sc);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "segment_score");
	lua_createtable(L, 0, 6);
	lua_pushnumber(L, sc.threshold);
	lua_setfield(L, -2, "threshold");
	if (labels) {
		set_int(L, "correct", sc.correct);
		set_int(L, "labeled", sc.labeled);
		set_pair(L, "inter", sc.inter);
		set_pair(L, "union", sc.uni);
		lua_pushnumber(L, sc.ap);
		lua_setfield(L, -2, "ap");
	}
	lua_insert(L, -2);
	return 2;
}

#define IMAGE_BOX_MT "refract.DecodedImage"

/* A decoded image owned by a userdata, so an error before it is copied frees it. */
static int image_box_gc(lua_State *L)
{
	rf_image_fini(luaL_checkudata(L, 1, IMAGE_BOX_MT));
	return 0;
}

/* A mask image from `idx`: a path (decoded) or a u8 tensor [H, W] / [H, W, C]; its
** pixels live in a userdata left on the stack top. */
static struct rf_image check_mask(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		struct rf_image *box = lua_newuserdatauv(L, sizeof *box, 0);
		*box = (struct rf_image){ 0 };
		rf_lua_set_handle_mt(L, IMAGE_BOX_MT);
		enum rf_status s = rf_image_load(lua_tostring(L, idx), box);
		if (s != RF_OK)
			rf_lua_fail(L, s, "mask_labels");
		return *box;
	}
	const rf_tensor *t = rf_lua_check_tensor(L, idx);
	const struct rf_shape *sh = &t->shape;
	if (t->dtype != RF_U8 || !(sh->ndim == 2 || (sh->ndim == 3 && sh->dim[2] >= 1 && sh->dim[2] <= 4)) ||
	    sh->dim[0] < 1 || sh->dim[1] < 1 || sh->dim[0] > 32768 || sh->dim[1] > 32768)
		luaL_error(L, "mask_labels: a mask is a path or a u8 tensor [H, W] or [H, W, C], not %s %s",
			   rf_lua_dtype_str(t->dtype), rf_lua_push_shape_str(L, sh));
	struct rf_image img = { .width = (int)sh->dim[1], .height = (int)sh->dim[0],
				.channels = sh->ndim == 3 ? (int)sh->dim[2] : 1 };
	size_t bytes = (size_t)rf_tensor_nbytes(t);
	uint8_t *px = lua_newuserdatauv(L, bytes, 0);
	const void *raw = rf_lua_tensor_bytes(L, t);
	memcpy(px, raw, bytes);
	lua_pop(L, 1);
	img.pixels = px;
	return img;
}

/* refract.mask_labels(mask, size) -> u8 host tensor [size, size] of 0/1: the ground truth
** of a mask file or image for a size x size input (whole mask, NEAREST; see segment.h). */
static int l_mask_labels(lua_State *L)
{
	lua_settop(L, 2);
	int isint;
	lua_Integer size = lua_tointegerx(L, 2, &isint);
	if (!isint || size < 1 || size > 8192)
		return luaL_error(L, "mask_labels: size must be an integer in 1..8192");
	struct rf_image mask = check_mask(L, 1);
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	struct rf_shape shape = rf_shape_of(2, (int64_t)size, (int64_t)size);
	enum rf_status s = rf_tensor_create_host(RF_U8, &shape, &h->t);
	if (s == RF_OK)
		s = rf_seg_labels(&mask, (int)size, h->t->host);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "mask_labels");
	return 1;
}

void rf_lua_open_segment(lua_State *L)
{
	luaL_newmetatable(L, IMAGE_BOX_MT);
	lua_pushcfunction(L, image_box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	static const luaL_Reg fns[] = {
		{ "segment_relevance", l_segment_relevance }, { "segment_score", l_segment_score },
		{ "mask_labels", l_mask_labels }, { NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
