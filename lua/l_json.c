/*
** l_json.c: JSON for scripts (configs, text lists, result files) through Jansson:
** refract.json_decode(string), refract.json_read(path), refract.json_encode(value [, indent]).
** Arrays become sequences, objects tables, null becomes refract.null. Lua layer (L6).
*/
#include "lhost.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#define NULL_KEY "refract.null"

static void push_json(lua_State *L, json_t *v, int depth)
{
	luaL_checkstack(L, 4, "JSON nested too deeply");
	if (depth > 200)
		luaL_error(L, "JSON nested too deeply");
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *item;
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach(v, key, item) {
			push_json(L, item, depth + 1);
			lua_setfield(L, -2, key);
		}
		break;
	}
	case JSON_ARRAY:
		lua_createtable(L, (int)json_array_size(v), 0);
		for (size_t i = 0; i < json_array_size(v); i++) {
			push_json(L, json_array_get(v, i), depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); break;
	case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
	case JSON_TRUE: lua_pushboolean(L, 1); break;
	case JSON_FALSE: lua_pushboolean(L, 0); break;
	default: lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY); break;
	}
}

#define BOX_MT "refract.JsonTree"

static int box_gc(lua_State *L)
{
	json_t **box = luaL_checkudata(L, 1, BOX_MT);
	json_decref(*box);
	*box = NULL;
	return 0;
}

/* Pushes the decoded value. The tree is anchored in a collected box while it is
** converted, so an error raised midway (too deep, out of memory) cannot leak it. */
static int push_decoded(lua_State *L, json_t *root, const char *what, const json_error_t *err)
{
	if (!root)
		return luaL_error(L, "%s: invalid JSON at line %d, column %d: %s", what, err->line,
				  err->column, err->text);
	json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = root;
	luaL_setmetatable(L, BOX_MT);
	push_json(L, root, 0);
	json_decref(root);
	*box = NULL;
	return 1;
}

static int l_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	json_error_t err;
	json_t *root = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	return push_decoded(L, root, "json_decode", &err);
}

static int l_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	json_error_t err;
	json_t *root = json_load_file(path, JSON_DECODE_ANY, &err);
	if (!root)
		return luaL_error(L, "%s: %s (line %d)", path, err.text, err.line);
	return push_decoded(L, root, path, &err);
}

/* {===== encoding */

static bool is_sequence(lua_State *L, int idx)
{
	lua_Integer n = luaL_len(L, idx);
	lua_Integer count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		count++;
		if (!lua_isinteger(L, -1)) {
			lua_pop(L, 1);
			return false;
		}
	}
	return count == n && n > 0;
}

static json_t *to_json(lua_State *L, int idx, int depth);

static json_t *table_to_json(lua_State *L, int idx, int depth)
{
	if (is_sequence(L, idx)) {
		json_t *arr = json_array();
		for (lua_Integer i = 1; i <= luaL_len(L, idx); i++) {
			lua_geti(L, idx, i);
			json_t *item = to_json(L, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
			if (!item || json_array_append_new(arr, item) != 0) {
				json_decref(arr);
				return NULL;
			}
		}
		return arr;
	}
	json_t *obj = json_object();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER) {
			lua_pop(L, 2);
			json_decref(obj);
			return NULL;
		}
		lua_pushvalue(L, -2);
		const char *key = lua_tostring(L, -1);
		json_t *item = to_json(L, lua_gettop(L) - 1, depth + 1);
		if (!item || json_object_set_new(obj, key, item) != 0) {
			lua_pop(L, 3);
			json_decref(obj);
			return NULL;
		}
		lua_pop(L, 2);
	}
	return obj;
}

/* NULL for values JSON cannot hold (functions, cycles past the depth limit, NaN). */
static json_t *to_json(lua_State *L, int idx, int depth)
{
	if (depth > 200)
		return NULL;
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return json_null();
	case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		return isfinite(lua_tonumber(L, idx)) ? json_real(lua_tonumber(L, idx)) : NULL;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		return json_stringn(s, n);
	}
	case LUA_TTABLE: return table_to_json(L, idx, depth);
	case LUA_TLIGHTUSERDATA: {
		lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
		bool is_null = lua_rawequal(L, -1, idx);
		lua_pop(L, 1);
		return is_null ? json_null() : NULL;
	}
	default: return NULL;
	}
}

static int l_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	int indent = (int)luaL_optinteger(L, 2, 0);
	lua_settop(L, 1);
	json_t *v = to_json(L, 1, 0);
	if (!v)
		return luaL_error(L, "json_encode: the value holds something JSON cannot represent "
				  "(a function, userdata, NaN/inf, non-string keys or nesting over 200)");
	char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT * (indent == 0) |
					   JSON_INDENT(indent > 0 ? indent : 0) | JSON_REAL_PRECISION(17));
	json_decref(v);
	if (!text)
		return luaL_error(L, "json_encode: out of memory");
	lua_pushstring(L, text);
	free(text);
	return 1;
}

/* }===== */

static const char null_sentinel;

void rf_lua_open_json(lua_State *L)
{
	luaL_newmetatable(L, BOX_MT);
	lua_pushcfunction(L, box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lua_pushlightuserdata(L, (void *)&null_sentinel);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
	lua_setfield(L, -2, "null");
	static const luaL_Reg fns[] = {
		{ "json_decode", l_decode }, { "json_read", l_read }, { "json_encode", l_encode },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
