/*
** l_decomposer.c: refract.Decomposer, the decomposition of a model's image embedding
** (decompose.h) from Lua: model:decomposer(options) prepares one (the fold is built once)
** and d:run(pixels) decomposes a batch, so a dataset loop reuses everything; and
** model:decompose(pixels, options), the one-shot form. Lua layer (L6).
**
** A decomposer keeps its model's handle alive (its uservalue) and checks at every run that
** the model was not freed; freeing the decomposer never touches the model.
*/
#include "lhost.h"
#include "l_util.h"
#include "ltensor.h"
#include "decompose.h"
#include "status.h"

#include <stdio.h>
#include <string.h>

#define DECOMPOSER_MT "refract.Decomposer"
/* A decomposition under construction: a finalizer frees its tensors if an error strikes
** before each is in a tensor handle. */
#define RESULT_MT "refract.Decomposition (being built)"

typedef struct {
	rf_decomposer *dec;
	rf_decomposer *pending;   /* set aside by free() inside a finalizer (RF_LUA_RELEASE) */
	rf_clip *model;          /* the model it was made for (its handle is the uservalue) */
	bool dec_spatial;        /* its options, for what one image needs when memory runs out */
	uint32_t dec_reduce;
} ldecomposer;

/* {===== options */

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

/* Reads {spatial=, reduce={...}, project=tensor [D, C], centering="reference"|"exact"} at
** idx (none or nil: defaults), raw (no metamethods), and leaves one value on the stack:
** the projection's handle (or nil), which keeps the tensor alive for the call (a table
** field can be changed by Lua code, a finalizer say, once the table has been read). */
static struct rf_decompose_options check_options(lua_State *L, int idx, const char *what)
{
	static const char *const keys[] = { "spatial", "reduce", "project", "centering", NULL };
	struct rf_decompose_options opt = { 0 };
	rf_lua_check_keys(L, idx, what, keys);   /* a non-table is an error there too */
	if (lua_isnoneornil(L, idx)) {
		lua_pushnil(L);
		return opt;
	}
	rf_lua_rawfield(L, idx, "spatial");
	opt.spatial = rf_lua_to_bool(L, -1, "spatial");
	rf_lua_rawfield(L, idx, "reduce");
	opt.reduce = check_reduce(L, lua_gettop(L));
	rf_lua_rawfield(L, idx, "centering");
	const char *c = lua_isnil(L, -1) ? "reference" : rf_lua_to_cstring(L, -1, "centering");
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

/* }===== */

/* {===== the decomposer */

static ldecomposer *check_decomposer(lua_State *L, int idx)
{
	ldecomposer *h = luaL_checkudata(L, idx, DECOMPOSER_MT);
	luaL_argcheck(L, h->dec != NULL, idx, "decomposer has been freed");
	return h;
}

/* The decomposer at `idx` with its model still loaded: everything but freeing it reads the
** model (its config, its device budget), which model:free() may have destroyed. */
static ldecomposer *check_live_decomposer(lua_State *L, int idx, const char *what)
{
	ldecomposer *h = check_decomposer(L, idx);
	lua_getiuservalue(L, idx, 1);
	bool model_live = rf_lua_model_is(L, -1, h->model);
	lua_pop(L, 1);
	if (!model_live)
		luaL_error(L, "%s: the decomposer's model has been freed", what);
	return h;
}

/* d:free() and <close> (RF_LUA_RELEASE). */
static int decomposer_free(lua_State *L)
{
	ldecomposer *h = luaL_checkudata(L, 1, DECOMPOSER_MT);
	RF_LUA_RELEASE(L, h->dec, h->pending, rf_decomposer_destroy);
	return 0;
}

static int decomposer_gc(lua_State *L)
{
	ldecomposer *h = luaL_checkudata(L, 1, DECOMPOSER_MT);
	RF_LUA_RELEASE_ALL(h->dec, h->pending, rf_decomposer_destroy);
	return 0;
}

/* Out of device memory with a batch of `batch` images (0: making the decomposer): says
** that not even one image fits, or how many do, naming `what`. */
static int decompose_oom(lua_State *L, rf_clip *m, const struct rf_decompose_options *opt,
			 const rf_decomposer *dec, int64_t batch, const char *what)
{
	char first[512];
	snprintf(first, sizeof first, "%s", rf_error_message());
	enum rf_status s = rf_clip_check_room(m, what, rf_decompose_image_bytes(m, opt));
	if (s != RF_OK && opt->spatial && !(opt->reduce & RF_REDUCE_TOKENS))
		return luaL_error(L, "%s; attn_spatial keeps every layer, token and head: reduce = "
				  "{\"layers\"} or {\"heads\"}, or project, makes it smaller", rf_error_message());
	if (s != RF_OK)
		return luaL_error(L, "%s", rf_error_message());   /* it names `what` */
	int fits = dec ? rf_decomposer_max_batch(dec) : 0;
	if (!dec || fits >= batch)
		return luaL_error(L, "%s: %s", what, first);
	return luaL_error(L, "%s: %s; a batch of %d images does not fit: at most %d fit per call "
			  "here (model:decomposer(options):max_batch())", what, first, (int)batch, fits);
}

/* Pushes a decomposer for the model at 1 with the options at `opts`. */
static ldecomposer *push_decomposer(lua_State *L, int opts, const char *what)
{
	rf_lua_check_model(L, 1);
	ldecomposer *h = lua_newuserdatauv(L, sizeof *h, 1);
	h->dec = NULL;
	h->pending = NULL;
	h->model = NULL;
	rf_lua_set_handle_mt(L, DECOMPOSER_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	/* The options' projection and the model are looked up after the handle's allocation:
	** a collection it runs cannot have freed them since. */
	struct rf_decompose_options opt = check_options(L, opts, what);
	h->model = rf_lua_check_model(L, 1);
	enum rf_status s;
	RF_LUA_RETRY_OOM(L, s, rf_decomposer_create(h->model, &opt, &h->dec));
	if (s == RF_ERR_OOM_DEVICE)
		decompose_oom(L, h->model, &opt, NULL, 0, what);
	if (s != RF_OK)
		rf_lua_fail(L, s, what);
	h->dec_spatial = opt.spatial;
	h->dec_reduce = opt.reduce;
	lua_pop(L, 1);   /* the projection: the decomposer holds its own copy now */
	return h;
}

/* model:decomposer([options]) -> refract.Decomposer */
static int model_decomposer(lua_State *L)
{
	lua_settop(L, 2);
	push_decomposer(L, 2, "decomposer");
	return 1;
}

static int result_gc(lua_State *L)
{
	rf_decomposition_fini(luaL_checkudata(L, 1, RESULT_MT));
	return 0;
}

/* Moves d->field into a tensor handle at key `name` of the table on the stack top. */
static void move_tensor(lua_State *L, const char *name, rf_tensor **field)
{
	if (!*field)
		return;
	rf_ltensor *t = rf_lua_push_tensor_handle(L);
	t->t = *field;       /* the handle owns it now, the result no longer */
	*field = NULL;
	lua_setfield(L, -2, name);
}

/* Runs the decomposer at `dec` on the pixels at `pix` and pushes the table of named
** tensors. Every Lua allocation comes before the C run or after each tensor has a
** handle, so an error at any point leaves each tensor owned by someone. */
static int push_run(lua_State *L, int dec, int pix, const char *what)
{
	struct rf_decomposition *d = lua_newuserdatauv(L, sizeof *d, 0);
	memset(d, 0, sizeof *d);
	rf_lua_set_handle_mt(L, RESULT_MT);
	lua_createtable(L, 0, 8);
	ldecomposer *h = check_live_decomposer(L, dec, what);
	rf_tensor *pixels = rf_lua_check_tensor(L, pix);
	enum rf_status s;
	RF_LUA_RETRY_OOM(L, s, rf_decomposer_run(h->dec, pixels, d));
	if (s == RF_ERR_OOM_DEVICE) {
		struct rf_decompose_options opt = { .spatial = h->dec_spatial, .reduce = h->dec_reduce };
		return decompose_oom(L, h->model, &opt, h->dec,
				     pixels->shape.ndim > 0 ? pixels->shape.dim[0] : 0, what);
	}
	if (s != RF_OK)
		return rf_lua_fail(L, s, what);
	move_tensor(L, "attn_spatial", &d->attn_spatial);
	move_tensor(L, "attn_heads", &d->attn_heads);
	move_tensor(L, "mlps", &d->mlps);
	move_tensor(L, "cls_attn", &d->cls_attn);
	move_tensor(L, "ln_post_mean", &d->ln_post_mean);
	move_tensor(L, "ln_post_std", &d->ln_post_std);
	move_tensor(L, "image_embeds", &d->image_embeds);
	return 1;
}

/* d:run(pixels) -> table of named tensors (as model:decompose) */
static int decomposer_run(lua_State *L)
{
	lua_settop(L, 2);
	check_decomposer(L, 1);
	return push_run(L, 1, 2, "run");
}

/* d:max_batch() -> the largest batch that fits the device (at most 32) */
static int decomposer_max_batch(lua_State *L)
{
	ldecomposer *h = check_live_decomposer(L, 1, "max_batch");
	lua_pushinteger(L, RF_MIN(rf_decomposer_max_batch(h->dec), 32));
	return 1;
}

static int decomposer_tostring(lua_State *L)
{
	ldecomposer *h = luaL_checkudata(L, 1, DECOMPOSER_MT);
	lua_pushstring(L, h->dec ? "refract.Decomposer" : "refract.Decomposer(freed)");
	return 1;
}

/* model:decompose(pixels [, options]) -> table of named tensors: a decomposer for one
** batch, freed before returning. */
static int model_decompose(lua_State *L)
{
	lua_settop(L, 3);
	rf_lua_check_tensor(L, 2);
	push_decomposer(L, 3, "decompose");
	int dec = lua_gettop(L);
	push_run(L, dec, 2, "decompose");
	lua_pushcfunction(L, decomposer_free);
	lua_pushvalue(L, dec);
	lua_call(L, 1, 0);
	return 1;
}

/* }===== */

void rf_lua_open_decomposer(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "run", decomposer_run }, { "max_batch", decomposer_max_batch }, { "free", decomposer_free },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", decomposer_gc }, { "__close", decomposer_free },
		{ "__tostring", decomposer_tostring }, { NULL, NULL },
	};
	luaL_newmetatable(L, DECOMPOSER_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, RESULT_MT);
	lua_pushcfunction(L, result_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	/* decompose and decomposer join the model methods (refract.Model's __index). */
	luaL_getmetatable(L, "refract.Model");
	lua_getfield(L, -1, "__index");
	lua_pushcfunction(L, model_decompose);
	lua_setfield(L, -2, "decompose");
	lua_pushcfunction(L, model_decomposer);
	lua_setfield(L, -2, "decomposer");
	lua_pop(L, 2);
}
