/*
** l_imagenet_seg.c: the ImageNet-segmentation benchmark file from Lua (imagenet_seg.h):
** refract.imagenet_seg(path) -> a handle with #seg, seg:image(i), seg:mask(i),
** seg:pixels(first, count, model) and seg:close(). Indices are 1-based, as in every Lua
** API of refract (image i is the file's entry i - 1). Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "clip.h"
#include "imagenet_seg.h"
#include "status.h"

#include <string.h>

#define SEG_MT "refract.ImagenetSeg"
#define IMAGE_MT "refract.ImagenetSegImage"

typedef struct {
	rf_imagenet_seg *f;   /* NULL once closed */
	rf_imagenet_seg *pending;   /* set aside by free() inside a finalizer (RF_LUA_RELEASE) */
} lseg;

static rf_imagenet_seg *check_seg(lua_State *L, int idx)
{
	lseg *h = luaL_checkudata(L, idx, SEG_MT);
	luaL_argcheck(L, h->f != NULL, idx, "the file has been closed");
	return h->f;
}

/* seg:close() and <close>: the file closes now, or from inside a finalizer (the call
** the collector interrupted may be reading it) later (RF_LUA_RELEASE). */
static int seg_close(lua_State *L)
{
	lseg *h = luaL_checkudata(L, 1, SEG_MT);
	RF_LUA_RELEASE(L, h->f, h->pending, rf_imagenet_seg_close);
	return 0;
}

static int seg_gc(lua_State *L)
{
	lseg *h = luaL_checkudata(L, 1, SEG_MT);
	RF_LUA_RELEASE_ALL(h->f, h->pending, rf_imagenet_seg_close);
	return 0;
}

static int seg_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)rf_imagenet_seg_count(check_seg(L, 1)));
	return 1;
}

/* A 1-based image index at `arg` as 0-based. */
static size_t check_index(lua_State *L, rf_imagenet_seg *f, int arg)
{
	lua_Integer i = luaL_checkinteger(L, arg);
	size_t n = rf_imagenet_seg_count(f);
	if (i < 1 || (size_t)i > n)
		luaL_argerror(L, arg, lua_pushfstring(L, "image %I is out of range (1..%I)", i, (lua_Integer)n));
	return (size_t)i - 1;
}

/* An image in a collected box, so an error before it is handed over frees it. */
static int image_gc(lua_State *L)
{
	rf_image_fini(luaL_checkudata(L, 1, IMAGE_MT));
	return 0;
}

static struct rf_image *push_image_box(lua_State *L)
{
	struct rf_image *box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = (struct rf_image){ 0 };
	rf_lua_set_handle_mt(L, IMAGE_MT);
	return box;
}

/* Pushes a u8 host tensor [H, W, C] (C > 1) or [H, W] holding the boxed image's pixels. */
static void push_pixels(lua_State *L, const struct rf_image *img, bool keep_channels, const char *fn)
{
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	struct rf_shape s = keep_channels
		? rf_shape_of(3, (int64_t)img->height, (int64_t)img->width, (int64_t)img->channels)
		: rf_shape_of(2, (int64_t)img->height, (int64_t)img->width);
	enum rf_status st = rf_tensor_from_host_data(RF_U8, &s, img->pixels, &h->t);
	if (st != RF_OK)
		rf_lua_fail(L, st, fn);
}

/* seg:image(i) -> u8 host tensor [H, W, 3]: the RGB image as stored. */
static int seg_image(lua_State *L)
{
	rf_imagenet_seg *f = check_seg(L, 1);
	size_t i = check_index(L, f, 2);
	struct rf_image *img = push_image_box(L);
	enum rf_status s = rf_imagenet_seg_image(f, i, img);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "imagenet_seg");
	push_pixels(L, img, true, "imagenet_seg");
	return 1;
}

/* seg:mask(i) -> u8 host tensor [H, W]: the mask as stored (1 on the object). */
static int seg_mask(lua_State *L)
{
	rf_imagenet_seg *f = check_seg(L, 1);
	size_t i = check_index(L, f, 2);
	struct rf_image *img = push_image_box(L);
	enum rf_status s = rf_imagenet_seg_mask(f, i, img);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "imagenet_seg");
	push_pixels(L, img, false, "imagenet_seg");
	return 1;
}

/* seg:pixels(first, count, model) -> f32 device [count, 3, S, S]: images first ..
** first + count - 1 preprocessed as the model's own preprocessing says (as refract.
** preprocess does for files). */
static int seg_pixels(lua_State *L)
{
	rf_imagenet_seg *f = check_seg(L, 1);
	size_t first = check_index(L, f, 2);
	lua_Integer count = luaL_checkinteger(L, 3);
	luaL_argcheck(L, count >= 1 && first + (size_t)count <= rf_imagenet_seg_count(f), 3,
		      "count must be at least 1 and stay within the file");
	struct rf_preprocess p = rf_clip_get_config(rf_lua_check_model(L, 4))->preprocess;
	size_t per = 3 * (size_t)p.size * (size_t)p.size;
	float *host = lua_newuserdatauv(L, (size_t)count * per * sizeof *host, 0);
	for (lua_Integer k = 0; k < count; k++) {
		struct rf_image *img = push_image_box(L);
		enum rf_status s = rf_imagenet_seg_image(f, first + (size_t)k, img);
		if (s == RF_OK)
			s = rf_image_preprocess(img, &p, host + (size_t)k * per);
		if (s != RF_OK)
			return rf_lua_fail(L, s, "imagenet_seg");
		rf_image_fini(img);
		lua_pop(L, 1);
	}
	struct rf_shape shape = rf_shape_of(4, (int64_t)count, (int64_t)3, (int64_t)p.size, (int64_t)p.size);
	rf_tensor *t = rf_lua_new_device_tensor(L, RF_F32, &shape);
	enum rf_status s = rf_tensor_upload(t, host, rf_tensor_nbytes(t));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "imagenet_seg");
	return 1;
}

/* refract.imagenet_seg(path) -> handle (closed by seg:close(), <close> or the collector). */
static int l_imagenet_seg(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	lseg *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->f = NULL;
	h->pending = NULL;
	rf_lua_set_handle_mt(L, SEG_MT);
	enum rf_status s = rf_imagenet_seg_open(path, &h->f);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "imagenet_seg");
	return 1;
}

void rf_lua_open_imagenet_seg(lua_State *L)
{
	luaL_newmetatable(L, IMAGE_MT);
	lua_pushcfunction(L, image_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	static const luaL_Reg methods[] = {
		{ "image", seg_image }, { "mask", seg_mask }, { "pixels", seg_pixels }, { "close", seg_close },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", seg_gc }, { "__close", seg_close }, { "__len", seg_len }, { NULL, NULL },
	};
	luaL_newmetatable(L, SEG_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_imagenet_seg);
	lua_setfield(L, -2, "imagenet_seg");
}
