/*
** l_intervene.c: model:forward, the vision forward pass with edits and taps from Lua
** (intervene.h). Layers, heads and tokens are 1-based here, as everywhere in Lua (token 1
** is CLS), and converted to the C API's 0-based indices only in this file; every misuse
** is a Lua error that names the edit or tap, the field, and the valid choices or range.
**
** The arguments are read without metamethods (raw access), and the model, the pixels and
** the value tensors are looked up from their handles only after the call's last Lua
** allocation: an allocation can run a collection, and so finalizers (Lua code) that might
** free a tensor; looked up last, a freed one is a clear error, never a dangling pointer.
** Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"
#include "clip.h"
#include "intervene.h"
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a forward call asked for, in Lua-owned memory (userdata anchored on the stack), so
** an error raised while reading the arguments leaves nothing to free. */
struct request {
	int anchors;              /* stack index of a table holding the value handles and names */
	struct rf_edit *edits;    /* values filled in by resolve() */
	rf_ltensor **values;      /* each edit's value handle (NULL for zero) */
	int nedits;
	struct rf_tap *taps;
	const char **tap_names;   /* strings kept alive by the anchor table */
	int ntaps;
};

/* t[k] at `idx` without metamethods. */
static int rawfield(lua_State *L, int idx, const char *k)
{
	idx = lua_absindex(L, idx);
	lua_pushstring(L, k);
	return lua_rawget(L, idx);
}

/* Keeps the value on the stack top alive for the call (it stays on the stack). */
static void anchor(lua_State *L, const struct request *req)
{
	lua_pushvalue(L, -1);
	lua_rawseti(L, req->anchors, (lua_Integer)lua_rawlen(L, req->anchors) + 1);
}

/* The model's sizes that bound the indices. */
struct limits {
	int layers, heads, tokens;
};

/* {===== edits */

/* A field's allowed strings, in their enum's order, and as a message lists them. */
struct choices {
	const char *const *names;
	int count;
	const char *list;
};

static const char *const site_names[] = {
	[RF_SITE_HEAD] = "head", [RF_SITE_ATTN] = "attn", [RF_SITE_MLP] = "mlp", [RF_SITE_TOKEN] = "token",
};
static const char *const kind_names[] = {
	[RF_EDIT_ZERO] = "zero", [RF_EDIT_MEAN] = "mean", [RF_EDIT_REPLACE] = "replace",
};
static const struct choices sites = { site_names, 4, "head, attn, mlp, token" };
static const struct choices kinds = { kind_names, 3, "zero, mean, replace" };

/* The index of the string at `idx` among the choices, or an error listing them. */
static int check_choice(lua_State *L, int edit, int idx, const char *field, const struct choices *c)
{
	if (lua_isnil(L, idx))
		return luaL_error(L, "forward: edit %d: %s is missing (%s)", edit, field, c->list);
	const char *s = lua_tostring(L, idx);
	for (int i = 0; s && lua_type(L, idx) == LUA_TSTRING && i < c->count; i++)
		if (!strcmp(s, c->names[i]))
			return i;
	return luaL_error(L, "forward: edit %d: unknown %s '%s' (%s)", edit, field, s ? s : luaL_typename(L, idx),
			  c->list);
}

/* A required 1-based index field in 1..count, returned 0-based. */
static int check_index(lua_State *L, int edit, int idx, const char *field, int count)
{
	if (lua_isnil(L, idx))
		return luaL_error(L, "forward: edit %d: %s is missing (an integer in 1..%d)", edit, field, count);
	int ok;
	lua_Integer v = lua_tointegerx(L, idx, &ok);
	if (lua_type(L, idx) != LUA_TNUMBER)
		return luaL_error(L, "forward: edit %d: %s must be an integer, not %s", edit, field,
				  luaL_typename(L, idx));
	if (!ok)
		return luaL_error(L, "forward: edit %d: %s must be an integer, not %f", edit, field,
				  (LUAI_UACNUMBER)lua_tonumber(L, idx));
	if (v < 1 || v > count)
		return luaL_error(L, "forward: edit %d: %s %I is out of range (1..%d)", edit, field, (LUAI_UACINT)v,
				  count);
	return (int)v - 1;
}

/* Every key of the edit table at `idx` must be a known field: a typo ("heads = 2") would
** otherwise be ignored and the edit would silently do something else. */
static void check_fields(lua_State *L, int edit, int idx)
{
	static const char *const known[] = { "site", "layer", "head", "token", "kind", "value" };
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		bool ok = false;
		for (size_t i = 0; key && i < RF_ARRAY_LEN(known); i++)
			ok = ok || !strcmp(key, known[i]);
		if (!ok)
			luaL_error(L, "forward: edit %d: unknown field '%s' (site, layer, head, token, kind, value)",
				   edit, key ? key : luaL_typename(L, -2));
	}
}

/* The optional index field `field` (head or token): required for its own site,
** refused for the others. */
static int check_site_index(lua_State *L, int edit, int idx, enum rf_edit_site site, enum rf_edit_site own,
			    const char *field, int count)
{
	rawfield(L, idx, field);
	int v = 0;
	if (site == own)
		v = check_index(L, edit, lua_gettop(L), field, count);
	else if (!lua_isnil(L, -1))
		luaL_error(L, "forward: edit %d: %s is only for site \"%s\"", edit, field, site_names[own]);
	lua_pop(L, 1);
	return v;
}

/* The value handle of a mean or replace edit (checked live now, looked up again later). */
static rf_ltensor *check_value(lua_State *L, int edit, int idx, enum rf_edit_kind kind,
			       const struct request *req)
{
	rawfield(L, idx, "value");
	rf_ltensor *h = NULL;
	if (kind == RF_EDIT_ZERO) {
		if (!lua_isnil(L, -1))
			luaL_error(L, "forward: edit %d: a zero edit takes no value", edit);
	} else {
		if (lua_isnil(L, -1))
			luaL_error(L, "forward: edit %d: a %s edit needs a value (a tensor)", edit, kind_names[kind]);
		h = luaL_testudata(L, -1, RF_TENSOR_MT);
		if (!h)
			luaL_error(L, "forward: edit %d: value must be a refract.Tensor, not %s", edit,
				   luaL_typename(L, -1));
		if (!h->t)
			luaL_error(L, "forward: edit %d: the value tensor has been freed", edit);
		anchor(L, req);
	}
	lua_pop(L, 1);
	return h;
}

/* Edit `edit` (1-based) from the table at `idx`. */
static struct rf_edit check_edit(lua_State *L, int edit, int idx, const struct limits *lim,
				 struct request *req)
{
	if (!lua_istable(L, idx))
		luaL_error(L, "forward: edit %d must be a table {site=, layer=, kind=, ...}, not %s", edit,
			   luaL_typename(L, idx));
	check_fields(L, edit, idx);
	struct rf_edit e = { 0 };
	rawfield(L, idx, "site");
	e.site = (enum rf_edit_site)check_choice(L, edit, lua_gettop(L), "site", &sites);
	rawfield(L, idx, "kind");
	e.kind = (enum rf_edit_kind)check_choice(L, edit, lua_gettop(L), "kind", &kinds);
	rawfield(L, idx, "layer");
	e.layer = check_index(L, edit, lua_gettop(L), "layer", lim->layers);
	lua_pop(L, 3);
	int head = check_site_index(L, edit, idx, e.site, RF_SITE_HEAD, "head", lim->heads);
	int token = check_site_index(L, edit, idx, e.site, RF_SITE_TOKEN, "token", lim->tokens);
	e.index = e.site == RF_SITE_HEAD ? head : token;
	req->values[edit - 1] = check_value(L, edit, idx, e.kind, req);
	return e;
}

static void check_edits(lua_State *L, int idx, const struct limits *lim, struct request *req)
{
	if (lua_isnil(L, idx))
		return;
	if (!lua_istable(L, idx))
		luaL_error(L, "forward: edits must be a list of tables, not %s", luaL_typename(L, idx));
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	luaL_argcheck(L, n <= 65536, 3, "too many edits");
	req->edits = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *req->edits, 0);
	req->values = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *req->values, 0);
	for (int i = 0; i < (int)n; i++) {
		lua_rawgeti(L, idx, i + 1);
		req->edits[i] = check_edit(L, i + 1, lua_gettop(L), lim, req);
		lua_pop(L, 1);
	}
	req->nedits = (int)n;
}

/* }===== */

/* {===== taps */

/* Parses "site" or "site.L" (L 1-based) into a tap; errors name the tap and list the
** choices. */
static struct rf_tap parse_tap(lua_State *L, const char *name, const struct limits *lim)
{
	char site[32] = "";
	const char *dot = strchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	struct rf_tap tap = { 0 };
	if (len < sizeof site) {
		memcpy(site, name, len);
		site[len] = '\0';
	}
	if (len >= sizeof site || !rf_tap_site_parse(site, &tap.site))
		luaL_error(L, "forward: unknown tap '%s' (embed, resid_pre.L, resid_post.L, q.L, k.L, v.L, probs.L, "
			   "heads.L, attn_out.L, mlp_hidden.L, mlp_out.L with L in 1..%d)", name, lim->layers);
	if (tap.site == RF_TAP_EMBED) {
		if (dot)
			luaL_error(L, "forward: tap '%s': embed has no layer (it is the stream entering layer 1)", name);
		return tap;
	}
	if (!dot)
		luaL_error(L, "forward: tap '%s' needs a layer: '%s.1' .. '%s.%d'", name, name, name, lim->layers);
	char *end;
	errno = 0;
	long layer = strtol(dot + 1, &end, 10);
	if (end == dot + 1 || *end || errno)
		luaL_error(L, "forward: tap '%s': the layer must be an integer, as in '%s.1'", name, site);
	if (layer < 1 || layer > lim->layers)
		luaL_error(L, "forward: tap '%s': layer %I is out of range (1..%d)", name, (LUAI_UACINT)layer,
			   lim->layers);
	tap.layer = (int)layer - 1;
	return tap;
}

/* The tap names at `idx` (a list of strings; a name given twice is tapped once). */
static void check_taps(lua_State *L, int idx, const struct limits *lim, struct request *req)
{
	if (lua_isnil(L, idx))
		return;
	if (!lua_istable(L, idx))
		luaL_error(L, "forward: taps must be a list of names, not %s", luaL_typename(L, idx));
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	luaL_argcheck(L, n <= 65536, 3, "too many taps");
	req->taps = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *req->taps, 0);
	req->tap_names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *req->tap_names, 0);
	/* The names seen so far, as keys: also what keeps the name strings alive. */
	lua_newtable(L);
	int seen = lua_gettop(L);
	for (int i = 0; i < (int)n; i++) {
		lua_rawgeti(L, idx, i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "forward: taps[%d] must be a name such as \"resid_post.1\", not %s", i + 1,
				   luaL_typename(L, -1));
		char what[40];
		snprintf(what, sizeof what, "forward: taps[%d]", i + 1);
		const char *name = rf_lua_to_cstring(L, -1, what);   /* "q.1\0x" would be "q.1" */
		lua_pushvalue(L, -1);
		if (lua_rawget(L, seen) == LUA_TNIL) {
			req->taps[req->ntaps] = parse_tap(L, name, lim);
			req->tap_names[req->ntaps++] = name;
			lua_pushvalue(L, -2);
			lua_pushboolean(L, 1);
			lua_rawset(L, seen);
		}
		lua_pop(L, 2);
	}
}

/* }===== */

/* The options table at 3: only `edits` and `taps`, so a misspelt key is an error. */
static void check_options(lua_State *L, const struct limits *lim, struct request *req)
{
	if (lua_isnoneornil(L, 3))
		return;
	luaL_checktype(L, 3, LUA_TTABLE);
	for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		if (!key || (strcmp(key, "edits") && strcmp(key, "taps")))
			luaL_error(L, "forward: unknown option '%s' (edits, taps)", key ? key : luaL_typename(L, -2));
	}
	rawfield(L, 3, "edits");
	check_edits(L, lua_gettop(L), lim, req);
	rawfield(L, 3, "taps");
	check_taps(L, lua_gettop(L), lim, req);
}

/* The C objects behind the handles, looked up with no allocation until the pass runs. */
struct resolved {
	rf_clip *model;
	const rf_tensor *pixels;
};

static struct resolved resolve(lua_State *L, struct request *req)
{
	struct resolved r = { rf_lua_check_model(L, 1), rf_lua_check_tensor(L, 2) };
	for (int i = 0; i < req->nedits; i++) {
		rf_ltensor *h = req->values[i];
		if (h && !h->t)
			luaL_error(L, "forward: edit %d: the value tensor has been freed", i + 1);
		req->edits[i].value = h ? h->t : NULL;
	}
	return r;
}

/* model:forward(pixels [, {edits = {...}, taps = {...}}]) ->
**   {image_embeds = tensor [B, D], taps = {[name] = tensor, ...}}
** The result's handles are made before the pass runs, so once it has succeeded the
** tensors only change hands (nothing can raise and leak them). */
static int model_forward(lua_State *L)
{
	const struct rf_clip_config *c = rf_clip_get_config(rf_lua_check_model(L, 1));
	struct limits lim = { c->vision.layers, c->vision.heads, c->tokens };
	rf_lua_check_tensor(L, 2);
	lua_settop(L, 3);
	lua_newtable(L);
	struct request req = { .anchors = lua_gettop(L) };
	check_options(L, &lim, &req);

	/* The tap handles' addresses, kept on the stack (a collection may run below). */
	rf_ltensor **handles = lua_newuserdatauv(L, (size_t)(req.ntaps ? req.ntaps : 1) * sizeof *handles, 0);
	lua_createtable(L, 0, 2);
	rf_ltensor *embeds = rf_lua_push_tensor_handle(L);
	lua_setfield(L, -2, "image_embeds");
	lua_createtable(L, 0, req.ntaps);
	for (int i = 0; i < req.ntaps; i++) {
		handles[i] = rf_lua_push_tensor_handle(L);
		lua_setfield(L, -2, req.tap_names[i]);
	}
	lua_setfield(L, -2, "taps");

	/* No Lua allocation from here to the call (and again after a collection). */
	struct resolved r = resolve(L, &req);
	enum rf_status s = rf_clip_intervene(r.model, r.pixels, req.edits, req.nedits, req.taps, req.ntaps,
					     &embeds->t);
	if (s == RF_ERR_OOM_DEVICE) {
		lua_gc(L, LUA_GCCOLLECT);
		r = resolve(L, &req);
		s = rf_clip_intervene(r.model, r.pixels, req.edits, req.nedits, req.taps, req.ntaps, &embeds->t);
	}
	if (s != RF_OK)
		return rf_lua_fail(L, s, "forward");
	for (int i = 0; i < req.ntaps; i++)
		handles[i]->t = req.taps[i].out;
	return 1;
}

void rf_lua_open_intervene(lua_State *L)
{
	/* forward joins the model methods (refract.Model's __index, set by rf_lua_open_model). */
	luaL_getmetatable(L, "refract.Model");
	lua_getfield(L, -1, "__index");
	lua_pushcfunction(L, model_forward);
	lua_setfield(L, -2, "forward");
	lua_pop(L, 2);
}
