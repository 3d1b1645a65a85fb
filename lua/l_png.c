/*
** l_png.c: pictures out of Lua: refract.write_png (a tensor as a PNG file), refract.heatmap
** (a value map through a colormap, optionally resized) and refract.overlay (a heatmap
** blended over an image). Images are u8 [H, W, C] as refract.image_load returns them, or
** float tensors with values in [0, 1]. Tensors are copied into Lua memory as soon as they
** are checked, so nothing later (an option's error, a collection running finalizers) can
** leave a dangling pointer, and an error at any point leaves nothing behind.
** Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "heatmap.h"
#include "image_write.h"
#include "status.h"

#include <math.h>
#include <string.h>

/* The largest picture made here (as image.h decodes): 32768 per side, 2^28 pixels. */
#define MAX_SIDE 32768
#define MAX_PIXELS (1ll << 28)

/* {===== tensors in */

/* The bytes of `t` (host or device), in a userdata left on the stack top. */
static const void *tensor_bytes(lua_State *L, const rf_tensor *t, const char *fn)
{
	size_t bytes = (size_t)rf_tensor_nbytes(t);
	void *raw = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
	if (!rf_tensor_on_device(t)) {
		memcpy(raw, t->host, bytes);
		return raw;
	}
	enum rf_status s = rf_tensor_download(t, raw, bytes);
	if (s != RF_OK)
		rf_lua_fail(L, s, fn);
	return raw;
}

/* The values of `t` (any dtype) as floats, in a userdata left on the stack top. */
static float *tensor_floats(lua_State *L, const rf_tensor *t, const char *fn)
{
	size_t n = (size_t)rf_tensor_numel(t);
	const void *raw = tensor_bytes(L, t, fn);
	float *v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
	rf_convert_to_f32(t->dtype, raw, v, n);
	lua_remove(L, -2);
	return v;
}

static bool is_float(enum rf_dtype dt)
{
	return dt == RF_F32 || dt == RF_F16 || dt == RF_BF16;
}

/* An image tensor at `idx`: [H, W] or [H, W, C] with C in 1..4, u8 (0..255) or float
** (0..1, clamped); its 8-bit pixels go to a userdata left on the stack top. A NaN is an
** error naming the pixel: no 8-bit value stands for it, and any would be a silent wrong one. */
static struct rf_image check_image(lua_State *L, int idx, const char *fn)
{
	const rf_tensor *t = rf_lua_check_tensor(L, idx);
	const struct rf_shape *s = &t->shape;
	char shape[96];
	if (!(s->ndim == 2 || (s->ndim == 3 && s->dim[2] >= 1 && s->dim[2] <= 4)) || s->dim[0] < 1 ||
	    s->dim[1] < 1 || s->dim[0] > MAX_SIDE || s->dim[1] > MAX_SIDE)
		luaL_error(L, "%s: an image is a tensor [H, W] or [H, W, C] with C = 1, 2, 3 or 4 and sides "
			   "in 1..%d, not %s", fn, MAX_SIDE, rf_shape_str(s, shape, sizeof shape));
	if (t->dtype != RF_U8 && !is_float(t->dtype))
		luaL_error(L, "%s: an image is u8 (0..255) or float (0..1), not %s", fn, rf_dtype_name(t->dtype));
	struct rf_image img = { .width = (int)s->dim[1], .height = (int)s->dim[0],
				.channels = s->ndim == 3 ? (int)s->dim[2] : 1 };
	if (t->dtype == RF_U8) {
		img.pixels = (uint8_t *)tensor_bytes(L, t, fn);
		return img;
	}
	size_t n = (size_t)rf_tensor_numel(t);
	const float *v = tensor_floats(L, t, fn);
	img.pixels = lua_newuserdatauv(L, n, 0);
	for (size_t i = 0; i < n; i++) {
		if (isnan(v[i])) {
			size_t c = (size_t)img.channels, pixel = i / c;
			luaL_error(L, "%s: the image is NaN at row %d, column %d, channel %d", fn,
				   (int)(pixel / (size_t)img.width) + 1, (int)(pixel % (size_t)img.width) + 1,
				   (int)(i % c) + 1);
		}
		img.pixels[i] = (uint8_t)floor(fmin(fmax(v[i], 0.0f), 1.0f) * 255.0 + 0.5);
	}
	lua_remove(L, -2);
	return img;
}

/* A value map: the values of a 2-d tensor [h, w] of any dtype, read at once. */
struct map {
	const float *v;   /* in a userdata on the stack */
	int h, w;
};

static struct map check_map(lua_State *L, int idx, const char *fn)
{
	const rf_tensor *t = rf_lua_check_tensor(L, idx);
	char shape[96];
	if (t->shape.ndim != 2 || t->shape.dim[0] < 1 || t->shape.dim[1] < 1 ||
	    t->shape.dim[0] > MAX_SIDE || t->shape.dim[1] > MAX_SIDE)
		luaL_error(L, "%s: values must be a 2-d tensor [h, w] with sides in 1..%d, not %s", fn, MAX_SIDE,
			   rf_shape_str(&t->shape, shape, sizeof shape));
	return (struct map){ tensor_floats(L, t, fn), (int)t->shape.dim[0], (int)t->shape.dim[1] };
}

/* }===== */

/* {===== options */

struct picture {
	int width, height;       /* of the result */
	enum rf_colormap cmap;
	float vmin, vmax;        /* NaN: from the data */
	float alpha;
};

static double opt_number(lua_State *L, int idx, const char *fn, const char *key)
{
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "%s: %s must be a number, not %s", fn, key, luaL_typename(L, idx));
	double v = lua_tonumber(L, idx);
	if (isnan(v))
		luaL_error(L, "%s: %s must be a number, not NaN", fn, key);
	return v;
}

/* size = {W, H}: the result's width and height. */
static void opt_size(lua_State *L, int idx, const char *fn, struct picture *p)
{
	lua_Integer wh[2] = { 0, 0 };
	bool ok = lua_istable(L, idx) && lua_rawlen(L, idx) == 2;
	for (int i = 0; ok && i < 2; i++) {
		lua_rawgeti(L, idx, i + 1);
		int isint;
		wh[i] = lua_tointegerx(L, -1, &isint);
		ok = isint && lua_type(L, -1) == LUA_TNUMBER && wh[i] >= 1 && wh[i] <= MAX_SIDE;
		lua_pop(L, 1);
	}
	if (!ok || wh[0] * wh[1] > MAX_PIXELS)
		luaL_error(L, "%s: size must be {W, H}, two integers in 1..%d (2^28 pixels at most)", fn, MAX_SIDE);
	p->width = (int)wh[0];
	p->height = (int)wh[1];
}

/* Whether `key` is one of the words of `list` ("size, colormap, vmin, vmax"). */
static bool listed(const char *list, const char *key)
{
	size_t n = strlen(key);
	for (const char *at = list; *at; at += strspn(at, ", ")) {
		size_t len = strcspn(at, ",");
		if (len == n && !strncmp(at, key, n))
			return true;
		at += len;
	}
	return false;
}

/* Reads the options table at `idx` (nil: defaults). `keys` lists the options `fn` takes;
** any other key is an error, so a misspelt option is never silently ignored. */
static void check_options(lua_State *L, int idx, const char *fn, const char *keys, struct picture *p)
{
	if (lua_isnoneornil(L, idx))
		return;
	if (!lua_istable(L, idx))
		luaL_error(L, "%s: options must be a table {%s}, not %s", fn, keys, luaL_typename(L, idx));
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		if (!key || !listed(keys, key))
			luaL_error(L, "%s: unknown option '%s' (%s)", fn, key ? key : luaL_typename(L, -2), keys);
		if (!strcmp(key, "size"))
			opt_size(L, lua_gettop(L), fn, p);
		else if (!strcmp(key, "colormap")) {
			const char *name = lua_tostring(L, -1);
			if (lua_type(L, -1) != LUA_TSTRING || !rf_colormap_parse(name, &p->cmap))
				luaL_error(L, "%s: unknown colormap '%s' (%s)", fn, name ? name : luaL_typename(L, -1),
					   rf_colormap_names());
		} else if (!strcmp(key, "vmin"))
			p->vmin = (float)opt_number(L, lua_gettop(L), fn, "vmin");
		else if (!strcmp(key, "vmax"))
			p->vmax = (float)opt_number(L, lua_gettop(L), fn, "vmax");
		else if (!strcmp(key, "alpha")) {
			p->alpha = (float)opt_number(L, lua_gettop(L), fn, "alpha");
			if (p->alpha < 0 || p->alpha > 1)
				luaL_error(L, "%s: alpha must be in [0, 1], not %f", fn, (double)p->alpha);
		}
	}
}

/* }===== */

/* {===== pictures */

/* A new u8 host tensor [H, W, 3] on the stack top; returns its pixels. */
static uint8_t *push_rgb(lua_State *L, int width, int height, const char *fn)
{
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	struct rf_shape s = rf_shape_of(3, (int64_t)height, (int64_t)width, (int64_t)3);
	enum rf_status st = rf_tensor_create_host(RF_U8, &s, &h->t);
	if (st != RF_OK)
		rf_lua_fail(L, st, fn);
	return h->t->host;
}

/* The heatmap of `map` at the picture's size into rgb: resampled first (in a userdata
** that is popped again), bounds from the map's own values unless given. */
static void render(lua_State *L, const struct map *map, const struct picture *p, uint8_t *rgb, const char *fn)
{
	const float *v = map->v;
	float lo, hi;
	rf_value_range(v, (size_t)map->h * map->w, &lo, &hi);
	if (!isnan(p->vmin))
		lo = p->vmin;
	if (!isnan(p->vmax))
		hi = p->vmax;
	if (lo > hi)
		luaL_error(L, "%s: vmin (%f) is above vmax (%f)", fn, (double)lo, (double)hi);
	size_t n = (size_t)p->width * p->height;
	bool resize = p->width != map->w || p->height != map->h;
	if (resize) {
		float *big = lua_newuserdatauv(L, n * sizeof *big, 0);
		rf_resize_bilinear(v, map->h, map->w, big, p->height, p->width);
		v = big;
	}
	rf_colorize(v, n, lo, hi, p->cmap, rgb);
	lua_pop(L, resize ? 1 : 0);
}

/* refract.heatmap(values [h, w] [, {size = {W, H}, colormap = "viridis"|"magma"|"gray",
** vmin =, vmax =}]) -> u8 host tensor [H, W, 3]: values mapped linearly from [vmin, vmax]
** (default: their own min and max) onto the colormap, after a bilinear resize to size. */
static int l_heatmap(lua_State *L)
{
	lua_settop(L, 2);
	struct map map = check_map(L, 1, "heatmap");
	struct picture p = { map.w, map.h, RF_COLORMAP_VIRIDIS, NAN, NAN, 0 };
	check_options(L, 2, "heatmap", "size, colormap, vmin, vmax", &p);
	uint8_t *rgb = push_rgb(L, p.width, p.height, "heatmap");
	render(L, &map, &p, rgb, "heatmap");
	return 1;
}

/* refract.overlay(image, values [h, w] [, {alpha = 0.5, colormap =, vmin =, vmax =}]) ->
** u8 host tensor [H, W, 3]: the heatmap of values at the image's size, blended over the
** image (gray replicated, alpha dropped) with weight alpha. */
static int l_overlay(lua_State *L)
{
	lua_settop(L, 3);
	struct rf_image img = check_image(L, 1, "overlay");   /* its pixels stay on the stack */
	struct map map = check_map(L, 2, "overlay");
	struct picture p = { img.width, img.height, RF_COLORMAP_VIRIDIS, NAN, NAN, 0.5f };
	check_options(L, 3, "overlay", "alpha, colormap, vmin, vmax", &p);
	uint8_t *rgb = push_rgb(L, img.width, img.height, "overlay");
	render(L, &map, &p, rgb, "overlay");
	size_t n = (size_t)img.width * img.height;
	uint8_t *base = lua_newuserdatauv(L, 3 * n, 0);
	rf_image_to_rgb(img.pixels, n, img.channels, base);
	rf_blend(base, rgb, 3 * n, p.alpha, rgb);
	lua_pop(L, 1);
	return 1;
}

/* refract.write_png(path, image): image as check_image takes it (u8 0..255, or float
** 0..1 clamped and rounded), from the host or the device. */
static int l_write_png(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	struct rf_image img = check_image(L, 2, "write_png");
	enum rf_status s = rf_image_write_png(path, &img);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "write_png");
	return 0;
}

/* }===== */

void rf_lua_open_png(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "write_png", l_write_png }, { "heatmap", l_heatmap }, { "overlay", l_overlay }, { NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
