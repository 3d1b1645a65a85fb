/*
** l_model.c: refract.Model: loading a CLIP checkpoint directory and running it from Lua:
** config, tokenize, encode_images, encode_texts (decompose: l_decomposer.c). Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "clip.h"
#include "paths.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MT "refract.Model"

typedef struct {
	rf_clip *m;
	rf_clip *pending;   /* set aside by free() inside a finalizer (RF_LUA_RELEASE) */
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

bool rf_lua_model_is(lua_State *L, int idx, const rf_clip *m)
{
	lmodel *h = luaL_testudata(L, idx, MODEL_MT);
	return h && h->m && h->m == m;
}

/* model:free() and <close>: now, or from inside a finalizer (the call the collector
** interrupted may be running the model) later (RF_LUA_RELEASE). */
static int model_free(lua_State *L)
{
	lmodel *h = luaL_checkudata(L, 1, MODEL_MT);
	RF_LUA_RELEASE(L, h->m, h->pending, rf_clip_destroy);
	return 0;
}

static int model_gc(lua_State *L)
{
	lmodel *h = luaL_checkudata(L, 1, MODEL_MT);
	RF_LUA_RELEASE_ALL(h->m, h->pending, rf_clip_destroy);
	return 0;
}

/* refract.load(dir [, {dtype = "f32"|"f16", vocab = path, vision_only = bool}]) */
static int l_load(lua_State *L)
{
	const char *dir = rf_lua_check_cstring(L, 1);
	struct rf_clip_options opt = { .storage = RF_F32 };
	static const char *const keys[] = { "dtype", "vocab", "vision_only", NULL };
	rf_lua_check_keys(L, 2, "load", keys);
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
		opt.vision_only = rf_lua_to_bool(L, -1, "load: vision_only");
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
	h->pending = NULL;
	rf_lua_set_handle_mt(L, MODEL_MT);
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
	if (c->has_logit_scale) {
		lua_pushnumber(L, c->logit_scale);
		lua_setfield(L, -2, "logit_scale");
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
		{ "free", model_free },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", model_gc }, { "__close", model_free }, { "__tostring", model_tostring },
		{ NULL, NULL },
	};
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
