/*
** l_json.c: JSON for scripts (configs, text lists, result files) through Jansson:
** refract.json_decode(string), refract.json_read(path), refract.json_encode(value [, indent]).
** Arrays become sequences, objects tables, null becomes refract.null. Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "file_in.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* refract.null, JSON's null in Lua: a light userdata of this address. */
static const char null_sentinel;

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
	default: lua_pushlightuserdata(L, (void *)&null_sentinel); break;
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

/* Pushes an empty box: a JSON tree put in it is released by the collector, so an error
** raised while the tree is converted (too deep, out of memory) cannot leak it. */
static json_t **push_box(lua_State *L)
{
	json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = NULL;
	rf_lua_set_handle_mt(L, BOX_MT);
	return box;
}

/* Pushes the value decoded into *box (made before the tree), then releases the tree. */
static int push_decoded(lua_State *L, json_t **box, const char *what, const json_error_t *err)
{
	if (!*box)
		return luaL_error(L, "%s: invalid JSON at line %d, column %d: %s", what, err->line,
				  err->column, err->text);
	push_json(L, *box, 0);
	json_decref(*box);
	*box = NULL;
	return 1;
}

static int l_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	json_t **box = push_box(L);
	json_error_t err;
	*box = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	return push_decoded(L, box, "json_decode", &err);
}

/* refract.json_read(path): a regular file of at most RF_MAX_JSON_BYTES (a FIFO would hang
** the read, /dev/zero fill the memory). */
static int l_read(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);
	json_t **box = push_box(L);
	char *text;
	size_t len;
	enum rf_status s = rf_file_read_all(path, RF_MAX_JSON_BYTES, "a JSON file", &text, &len);
	if (s != RF_OK)
		return rf_lua_fail(L, s, "json_read");
	json_error_t err;
	*box = json_loadb(text, len, JSON_DECODE_ANY, &err);
	free(text);
	if (!*box)
		return luaL_error(L, "%s: %s (line %d)", path, err.text, err.line);
	return push_decoded(L, box, path, &err);
}

/* {===== encoding
** Nothing from here to the dump raises: raw reads (no metamethods), keys formatted in C,
** the stack grown with lua_checkstack. An error would leave the half-built tree, which
** no box holds yet, unfreed. */

/* The key at `idx` (a string or a number) as JSON's object key, in `buf` if a number. */
static const char *key_string(lua_State *L, int idx, char *buf, size_t size)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		return strlen(s) == n ? s : NULL;   /* Jansson's keys end at a NUL: refused */
	}
	if (lua_isinteger(L, idx)) {
		snprintf(buf, size, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
		return buf;
	}
	/* As tostring writes floats: "%.14g", and "2.0" rather than "2". */
	snprintf(buf, size, LUA_NUMBER_FMT, (LUAI_UACNUMBER)lua_tonumber(L, idx));
	if (buf[strspn(buf, "-0123456789")] == '\0')
		strncat(buf, ".0", size - strlen(buf) - 1);
	return buf;
}

static bool is_sequence(lua_State *L, int idx)
{
	lua_Unsigned n = lua_rawlen(L, idx);
	lua_Unsigned count = 0;
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
	if (!lua_checkstack(L, 4))
		return NULL;
	if (is_sequence(L, idx)) {
		json_t *arr = json_array();
		lua_Unsigned n = lua_rawlen(L, idx);
		for (lua_Unsigned i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, (lua_Integer)i);
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
		char buf[64];
		const char *key = key_string(L, lua_gettop(L) - 1, buf, sizeof buf);
		json_t *item = key ? to_json(L, lua_gettop(L), depth + 1) : NULL;
		if (!item || json_object_set_new(obj, key, item) != 0) {
			lua_pop(L, 2);
			json_decref(obj);
			return NULL;
		}
		lua_pop(L, 1);
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
	case LUA_TLIGHTUSERDATA: return lua_touserdata(L, idx) == &null_sentinel ? json_null() : NULL;
	default: return NULL;
	}
}

/* refract.json_encode(value [, indent]). The tree waits in a box while it is dumped into
** a Lua buffer, whose allocation may raise. Keys are sorted: Lua's table order varies from
** run to run, and a rerun must write the same bytes (outputs record their provenance). */
static int l_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_Integer indent = luaL_optinteger(L, 2, 0);
	luaL_argcheck(L, indent >= 0 && indent <= 31, 2, "indent must be in 0..31");
	lua_settop(L, 1);
	json_t **box = push_box(L);
	*box = to_json(L, 1, 0);
	if (!*box)
		return luaL_error(L, "json_encode: the value holds something JSON cannot represent "
				  "(a function, userdata, NaN/inf, non-string keys, a key with a NUL byte "
				  "or nesting over 200)");
	size_t flags = JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT * (indent == 0) | JSON_INDENT((int)indent) |
		       JSON_REAL_PRECISION(17);
	size_t n = json_dumpb(*box, NULL, 0, flags);
	if (n == 0)
		return luaL_error(L, "json_encode: out of memory");
	char *text = lua_newuserdatauv(L, n, 0);
	json_dumpb(*box, text, n, flags);
	lua_pushlstring(L, text, n);
	json_decref(*box);
	*box = NULL;
	return 1;
}

/* }===== */

void rf_lua_open_json(lua_State *L)
{
	luaL_newmetatable(L, BOX_MT);
	lua_pushcfunction(L, box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lua_pushlightuserdata(L, (void *)&null_sentinel);
	lua_setfield(L, -2, "null");
	static const luaL_Reg fns[] = {
		{ "json_decode", l_decode }, { "json_read", l_read }, { "json_encode", l_encode },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
