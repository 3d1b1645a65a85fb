/*
** l_util.c: the shared device context and the status-to-Lua-error conversion every
** binding file uses (l_util.h). Lua layer (L6).
*/
#include "l_util.h"
#include "context.h"
#include "status.h"

#include <string.h>

#define CTX_MT "refract.Context"
#define CTX_KEY "refract.context"

struct lctx {
	rf_ctx *ctx;
};

int rf_lua_fail(lua_State *L, enum rf_status s, const char *what)
{
	const char *msg = rf_error_message();
	if (!msg || !*msg)
		msg = rf_status_str(s);
	return luaL_error(L, "%s: %s", what, msg);
}

static int ctx_gc(lua_State *L)
{
	struct lctx *c = luaL_checkudata(L, 1, CTX_MT);
	rf_ctx_release(c->ctx);
	c->ctx = NULL;
	return 0;
}

bool rf_lua_in_finalizer(lua_State *L)
{
	/* Lua 5.4.4 sets an internal stop (GCSTPGC) while it calls a finalizer, and lua_gc
	** answers -1 to every request then; a collector stopped by the script answers. */
	return lua_gc(L, LUA_GCCOUNT) < 0;
}

const char *rf_lua_check_cstring(lua_State *L, int arg)
{
	size_t n;
	const char *s = luaL_checklstring(L, arg, &n);
	if (strlen(s) != n)
		luaL_argerror(L, arg, "the string holds a NUL byte");
	return s;
}

const char *rf_lua_to_cstring(lua_State *L, int idx, const char *what)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "%s is a %s, not a string", what, luaL_typename(L, idx));
	size_t n;
	const char *s = lua_tolstring(L, idx, &n);
	if (strlen(s) != n)
		luaL_error(L, "%s holds a NUL byte (at byte %d)", what, (int)strlen(s) + 1);
	return s;
}

int rf_lua_rawfield(lua_State *L, int idx, const char *k)
{
	idx = lua_absindex(L, idx);
	lua_pushstring(L, k);
	return lua_rawget(L, idx);
}

#define CLOSING_KEY "refract.closing"

void rf_lua_mark_closing(lua_State *L)
{
	lua_pushboolean(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, CLOSING_KEY);
}

static void refuse_when_closing(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, CLOSING_KEY);
	bool closing = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (closing)
		luaL_error(L, "refract objects cannot be made while the interpreter closes (in a __gc "
			   "metamethod run at exit): they would never be freed");
}

void rf_lua_set_handle_mt(lua_State *L, const char *mt)
{
	refuse_when_closing(L);
	luaL_setmetatable(L, mt);
}

bool rf_lua_to_bool(lua_State *L, int idx, const char *what)
{
	if (lua_isnil(L, idx))
		return false;
	if (!lua_isboolean(L, idx))
		luaL_error(L, "%s must be true or false, not %s", what, luaL_typename(L, idx));
	return lua_toboolean(L, idx);
}

int rf_lua_list_len(lua_State *L, int idx, int max, const char *what)
{
	lua_Unsigned n = lua_rawlen(L, idx);
	if (n > (lua_Unsigned)max)
		luaL_error(L, "%s: %I entries, more than %d", what, (lua_Integer)n, max);
	return (int)n;
}

rf_ctx *rf_lua_ctx_if_created(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	struct lctx *c = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return c ? c->ctx : NULL;
}

rf_ctx *rf_lua_ctx(lua_State *L)
{
	rf_ctx *ctx = rf_lua_ctx_if_created(L);
	if (ctx)
		return ctx;
	refuse_when_closing(L);
	struct lctx *c = lua_newuserdatauv(L, sizeof *c, 0);
	c->ctx = NULL;                           /* released until creation succeeds */
	if (luaL_newmetatable(L, CTX_MT)) {      /* the first context of this state */
		lua_pushcfunction(L, ctx_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	enum rf_status s = rf_ctx_create(NULL, &c->ctx);
	if (s != RF_OK)
		rf_lua_fail(L, s, "opening the Vulkan device");
	lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
	return c->ctx;
}

static bool key_allowed(const char *key, const char *const allowed[])
{
	for (size_t i = 0; allowed[i]; i++)
		if (!strcmp(key, allowed[i]))
			return true;
	return false;
}

void rf_lua_check_keys(lua_State *L, int idx, const char *fn, const char *const allowed[])
{
	idx = lua_absindex(L, idx);
	if (lua_isnoneornil(L, idx))
		return;
	if (!lua_istable(L, idx))
		luaL_error(L, "%s: options must be a table, not %s", fn, luaL_typename(L, idx));
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
		/* Only real strings: lua_tostring on a number key would confuse lua_next. */
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		if (key && key_allowed(key, allowed))
			continue;
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		for (size_t i = 0; allowed[i]; i++) {
			if (i)
				luaL_addstring(&b, ", ");
			luaL_addstring(&b, allowed[i]);
		}
		luaL_pushresult(&b);
		if (key)
			luaL_error(L, "%s: unknown option '%s' (%s)", fn, key, lua_tostring(L, -1));
		luaL_error(L, "%s: options are named (%s), not a %s key", fn, lua_tostring(L, -1),
			   luaL_typename(L, -3));
	}
}
