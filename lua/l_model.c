/*
** l_model.c: refract.Model: loading a CLIP checkpoint directory and running it from Lua:
** config, tokenize, encode_images, encode_texts, decompose. Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "clip.h"
#include "decompose.h"
#include "paths.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MT "refract.Model"
#define DECOMPOSITION_MT "refract.Decomposition"   /* results in the making (not in Lua) */

typedef struct {
	rf_clip *m;
} lmodel;

static rf_clip *check_model(lua_State *L, int idx)
{
	lmodel *h = luaL_checkudata(L, idx, MODEL_MT);
	luaL_argcheck(L, h->m != NULL, idx, "model has been freed");
	return h->m;
}

rf_clip *rf_lua_check_model(lua_State *L, int idx)
{
	return check_model(L, idx);
}

static int model_free(lua_State *L)
{
	lmodel *h = luaL_checkudata(L, 1, MODEL_MT);
	rf_clip_destroy(h->m);
	h->m = NULL;
	return 0;
}

/* refract.load(dir [, {dtype = "f32"|"f16", vocab = path, vision_only = bool}]) */
static int l_load(lua_State *L)
{
	const char *dir = rf_lua_check_cstring(L, 1);
	struct rf_clip_options opt = { .storage = RF_F32 };
	lua_settop(L, 2);
	/* The vocabulary path stays on the stack (slot 3) until the load is done. */
	lua_pushfstring(L, "%s/bpe_simple_vocab_16e6.txt.gz", rf_paths_data());
	if (!lua_isnil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		rf_lua_rawfield(L, 2, "dtype");
		opt.storage = rf_lua_opt_dtype(L, -1, RF_F32);
		luaL_argcheck(L, opt.storage == RF_F32 || opt.storage == RF_F16, 2,
			      "dtype must be \"f32\" or \"f16\"");
		rf_lua_rawfield(L, 2, "vision_only");
		opt.vision_only = lua_toboolean(L, -1);
		lua_pop(L, 2);
		if (rf_lua_rawfield(L, 2, "vocab") != LUA_TNIL) {
			rf_lua_to_cstring(L, -1, "load: option vocab");
			lua_replace(L, 3);
		} else {
			lua_pop(L, 1);
		}
	}
	opt.vocab_path = lua_tostring(L, 3);
	rf_ctx *ctx = rf_lua_ctx(L);
	lmodel *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->m = NULL;
	luaL_setmetatable(L, MODEL_MT);
	enum rf_status s;
	RF_LUA_RETRY_OOM(L, s, rf_clip_load(ctx, dir, &opt, &h->m));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "load");
	return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

/* model:config() -> table of the architecture and preprocessing. */
static int model_config(lua_State *L)
{
	rf_clip *m = check_model(L, 1);
	const struct rf_clip_config *c = rf_clip_get_config(m);
	lua_createtable(L, 0, 24);
	lua_pushstring(L, c->layout == RF_LAYOUT_OPEN_CLIP ? "open_clip" : "hf");
	lua_setfield(L, -2, "layout");
	lua_pushstring(L, c->dir);
	lua_setfield(L, -2, "dir");
	set_int(L, "embed_dim", c->embed_dim);
	set_int(L, "image_size", c->image_size);
	set_int(L, "patch_size", c->patch_size);
	set_int(L, "grid", c->grid);
	set_int(L, "tokens", c->tokens);
	set_int(L, "width", c->vision.width);
	set_int(L, "layers", c->vision.layers);
	set_int(L, "heads", c->vision.heads);
	set_int(L, "head_width", c->vision.head_width);
	set_int(L, "mlp_width", c->vision.mlp_width);
	lua_pushstring(L, c->act == RF_ACT_QUICKGELU ? "quick_gelu" : "gelu");
	lua_setfield(L, -2, "activation");
	lua_pushboolean(L, rf_clip_get_tokenizer(m) != NULL);
	lua_setfield(L, -2, "has_text");
	if (c->has_text) {
		set_int(L, "context_length", c->context_length);
		set_int(L, "text_width", c->text.width);
		set_int(L, "text_layers", c->text.layers);
		set_int(L, "text_heads", c->text.heads);
	}
	lua_pushstring(L, rf_clip_storage(m) == RF_F16 ? "f16" : "f32");
	lua_setfield(L, -2, "dtype");
	set_int(L, "weight_bytes", (lua_Integer)rf_clip_weight_bytes(m));
	set_int(L, "max_batch", rf_clip_max_batch(m));
	lua_createtable(L, 3, 0);
	lua_createtable(L, 3, 0);
	for (int i = 0; i < 3; i++) {
		lua_pushnumber(L, c->preprocess.mean[i]);
		lua_rawseti(L, -3, i + 1);
		lua_pushnumber(L, c->preprocess.std[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -3, "std");
	lua_setfield(L, -2, "mean");
	char line[512];
	rf_clip_config_describe(c, line, sizeof line);
	lua_pushstring(L, line);
	lua_setfield(L, -2, "description");
	return 1;
}

/* A list of strings from a Lua table, read raw (no metamethods run, so nothing changes
** the table while it is read) and anchored: a copy of the table holds the strings while
** C uses them. A string with a NUL byte is an error (the text would be cut short). */
static const char **check_strings(lua_State *L, int idx, int *count)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	int n = rf_lua_list_len(L, idx, INT32_MAX / 2, "tokenize");
	lua_createtable(L, n, 0);
	int keep = lua_gettop(L);
	const char **list = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *list, 0);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, idx, i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "bad argument #%d: entry %d is a %s, not a string", idx - 1, i + 1,
				   luaL_typename(L, -1));
		size_t len;
		list[i] = lua_tolstring(L, -1, &len);
		if (strlen(list[i]) != len)
			luaL_error(L, "bad argument #%d: text %d holds a NUL byte (at byte %d): a text "
				   "is never cut short", idx - 1, i + 1, (int)strlen(list[i]) + 1);
		lua_rawseti(L, keep, i + 1);
	}
	*count = n;
	return list;
}

/* model:tokenize({strings}) -> i64 host tensor [T, context] */
static int model_tokenize(lua_State *L)
{
	check_model(L, 1);
	int n;
	const char **list = check_strings(L, 2, &n);
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	rf_clip *m = check_model(L, 1);   /* after the allocations (see model_decompose) */
	enum rf_status s = rf_clip_tokenize(m, list, n, &h->t);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "tokenize");
	return 1;
}

/* model:encode_texts({strings} or tokens tensor) -> [T, D] (not normalised) */
static int model_encode_texts(lua_State *L)
{
	check_model(L, 1);
	lua_settop(L, 2);
	if (!rf_lua_opt_tensor(L, 2))
		model_tokenize(L);
	else
		lua_pushvalue(L, 2);
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	rf_clip *m = check_model(L, 1);   /* after the allocations (see model_decompose) */
	rf_tensor *tokens = rf_lua_check_tensor(L, -2);
	enum rf_status s;
	RF_LUA_RETRY_OOM(L, s, rf_clip_encode_tokens(m, tokens, &h->t));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "encode_texts");
	return 1;
}

/* model:encode_images(pixels [B, 3, S, S]) -> [B, D] (not normalised) */
static int model_encode_images(lua_State *L)
{
	check_model(L, 1);
	rf_lua_check_tensor(L, 2);
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	rf_clip *m = check_model(L, 1);   /* after the allocation (see model_decompose) */
	rf_tensor *pixels = rf_lua_check_tensor(L, 2);
	enum rf_status s;
	RF_LUA_RETRY_OOM(L, s, rf_clip_encode_images(m, pixels, &h->t));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "encode_images");
	return 1;
}

static uint32_t check_reduce(lua_State *L, int idx)
{
	uint32_t mask = 0;
	if (lua_isnil(L, idx))
		return 0;
	if (lua_type(L, idx) == LUA_TSTRING) {
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, idx);
		lua_rawseti(L, -2, 1);
		lua_replace(L, idx);
	}
	luaL_argcheck(L, lua_istable(L, idx), idx, "reduce must be a list of \"layers\", \"tokens\", \"heads\"");
	int n = rf_lua_list_len(L, idx, 64, "reduce");
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		const char *axis = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		if (axis && !strcmp(axis, "layers")) mask |= RF_REDUCE_LAYERS;
		else if (axis && !strcmp(axis, "tokens")) mask |= RF_REDUCE_TOKENS;
		else if (axis && !strcmp(axis, "heads")) mask |= RF_REDUCE_HEADS;
		else luaL_error(L, "unknown reduce axis '%s' (layers, tokens, heads)",
				axis ? axis : luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	return mask;
}

/* {===== decomposition results */

/* A decomposition's tensors wait in a holder userdata until each has its own handle; the
** holder is made before the decomposition runs and its __gc frees whatever it still
** holds, so an error at any step (a memory error in lua_setfield) leaks nothing
** (liolib's newprefile: the handle first, then the resource). */
static struct rf_decomposition *push_decomposition_holder(lua_State *L)
{
	struct rf_decomposition *d = lua_newuserdatauv(L, sizeof *d, 0);
	memset(d, 0, sizeof *d);
	luaL_setmetatable(L, DECOMPOSITION_MT);
	return d;
}

static int decomposition_gc(lua_State *L)
{
	rf_decomposition_free(luaL_checkudata(L, 1, DECOMPOSITION_MT));
	return 0;
}

/* Moves the holder's tensor *t (if any) into a new handle, field `name` of the table on
** the stack top. The handle exists before the tensor leaves the holder, and the field
** is set after: the tensor has an owner at every step. */
static void move_tensor(lua_State *L, const char *name, rf_tensor **t)
{
	if (!*t)
		return;
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	h->t = *t;
	*t = NULL;
	lua_setfield(L, -2, name);
}

/* Pushes the table of named tensors taken from the holder d (left empty). */
static void push_decomposition(lua_State *L, struct rf_decomposition *d)
{
	lua_createtable(L, 0, 8);
	move_tensor(L, "attn_spatial", &d->attn_spatial);
	move_tensor(L, "attn_heads", &d->attn_heads);
	move_tensor(L, "mlps", &d->mlps);
	move_tensor(L, "cls_attn", &d->cls_attn);
	move_tensor(L, "ln_post_mean", &d->ln_post_mean);
	move_tensor(L, "ln_post_std", &d->ln_post_std);
	move_tensor(L, "image_embeds", &d->image_embeds);
}

/* }===== */

/* Reads decomposition options {spatial=, reduce={...}, project=tensor [D, C],
** centering="reference"|"exact"} at idx (nil: defaults), raw (no metamethods). The
** projection's handle is left on the stack: it keeps the tensor alive for the call (a
** table field can be changed by Lua code once the table has been read). */
static struct rf_decompose_options check_decompose_options(lua_State *L, int idx)
{
	struct rf_decompose_options opt = { 0 };
	if (lua_isnoneornil(L, idx)) {
		lua_pushnil(L);
		return opt;
	}
	luaL_checktype(L, idx, LUA_TTABLE);
	rf_lua_rawfield(L, idx, "spatial");
	opt.spatial = lua_toboolean(L, -1);
	rf_lua_rawfield(L, idx, "reduce");
	opt.reduce = check_reduce(L, lua_gettop(L));
	rf_lua_rawfield(L, idx, "centering");
	const char *c = lua_isnil(L, -1) ? "reference" : luaL_checkstring(L, -1);
	if (!strcmp(c, "exact"))
		opt.centering = RF_CENTER_EXACT;
	else if (strcmp(c, "reference") != 0)
		luaL_error(L, "bad argument #%d: centering must be \"reference\" or \"exact\", not \"%s\"",
			   idx - 1, c);
	lua_pop(L, 3);
	if (rf_lua_rawfield(L, idx, "project") != LUA_TNIL)
		opt.project = rf_lua_check_tensor(L, lua_gettop(L));
	return opt;
}

/* model:max_decompose_batch([options]) -> the largest batch that fits the device. */
static int model_max_decompose_batch(lua_State *L)
{
	check_model(L, 1);
	lua_settop(L, 2);
	struct rf_decompose_options opt = check_decompose_options(L, 2);
	rf_clip *m = check_model(L, 1);   /* looked up after the options were read */
	lua_pushinteger(L, RF_MIN(rf_decompose_max_batch(m, &opt), 32));
	return 1;
}

/* model:decompose(pixels [, options]) -> table of named tensors */
static int model_decompose(lua_State *L)
{
	check_model(L, 1);
	rf_lua_check_tensor(L, 2);
	lua_settop(L, 3);
	struct rf_decompose_options opt = check_decompose_options(L, 3);
	struct rf_decomposition *d = push_decomposition_holder(L);
	/* Looked up after the last allocation before the call: a collection there can run
	** finalizers, Lua code that may free a handle. */
	rf_clip *m = check_model(L, 1);
	rf_tensor *pixels = rf_lua_check_tensor(L, 2);
	enum rf_status s;
	RF_LUA_RETRY_OOM(L, s, rf_clip_decompose(m, pixels, &opt, d));
	if (s != RF_OK)
		return rf_lua_fail(L, s, "decompose");
	push_decomposition(L, d);
	return 1;
}

static int model_tostring(lua_State *L)
{
	lmodel *h = luaL_checkudata(L, 1, MODEL_MT);
	if (!h->m) {
		lua_pushliteral(L, "refract.Model(freed)");
		return 1;
	}
	char line[512];
	rf_clip_config_describe(rf_clip_get_config(h->m), line, sizeof line);
	lua_pushfstring(L, "refract.Model(%s: %s)", rf_clip_get_config(h->m)->dir, line);
	return 1;
}

void rf_lua_open_model(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "config", model_config }, { "tokenize", model_tokenize },
		{ "encode_texts", model_encode_texts }, { "encode_images", model_encode_images },
		{ "decompose", model_decompose }, { "max_decompose_batch", model_max_decompose_batch },
		{ "free", model_free },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", model_free }, { "__close", model_free }, { "__tostring", model_tostring },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, DECOMPOSITION_MT);
	lua_pushcfunction(L, decomposition_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_newmetatable(L, MODEL_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "__index");
	lua_setfield(L, -3, "Model");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_load);
	lua_setfield(L, -2, "load");
}
