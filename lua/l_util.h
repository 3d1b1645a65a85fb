/*
** l_util.h: what every binding file needs and nothing else: the shared device context,
** turning an rf_status into a Lua error, and the one retry after a collection when the
** device runs out of memory. Depends on no other binding file, so that none of them
** depends on another for these (the openers in lhost.h sit above them all). Lua layer (L6).
*/
#ifndef RF_LUA_L_UTIL_H
#define RF_LUA_L_UTIL_H

#include <lua.h>
#include <lauxlib.h>
#include "rf_base.h"

typedef struct rf_ctx rf_ctx;

/* The shared device context, created on first use (a Lua error if no device). It lives
** in the registry and is released by the collector after every tensor holding it. */
rf_ctx *rf_lua_ctx(lua_State *L);
/* Like rf_lua_ctx but returns NULL (no error) when none was created yet. */
rf_ctx *rf_lua_ctx_if_created(lua_State *L);

/* Raises a Lua error "<what>: <message of the last failure>" (a longjmp: it never
** returns). Call it as `return rf_lua_fail(...)` where the caller returns an int, so the
** jump shows, and only once every C resource is released or owned by a handle. */
int rf_lua_fail(lua_State *L, enum rf_status s, const char *what);

/* Checks the options table at `idx`: a key that is not a string in `allowed` (a list
** ended by NULL) raises "<fn>: unknown option '<key>' (<allowed, comma-separated>)", so a
** misspelt option is never silently ignored. Nil or none at `idx` is no options; any
** other non-table raises "<fn>: options must be a table". */
void rf_lua_check_keys(lua_State *L, int idx, const char *fn, const char *const allowed[]);

/* Whether Lua code is running as a finalizer (__gc) right now. A finalizer runs at a
** collection step, which any allocation can take, so it may interrupt a binding in the
** middle of its work: what a finalizer frees (t:free(), model:free()) must not be
** released while that binding may still use it. */
bool rf_lua_in_finalizer(lua_State *L);

/* free() of a handle whose object is `live`, for every kind of handle (tensor, model,
** decomposer, imagenet_seg file): outside a finalizer the object goes now, with any
** `pending` one; inside a finalizer it is set aside in `pending` (the binding the
** collector interrupted may be using it) and the handle reads as freed at once. The
** handle's __gc ends both with RF_LUA_RELEASE_ALL. `destroy` takes NULL. (Macros: the
** fields and destroy functions are typed per kind.) */
#define RF_LUA_RELEASE(L, live, pending, destroy) \
	do { \
		if (!rf_lua_in_finalizer(L)) { \
			destroy(pending); \
			(pending) = NULL; \
			destroy(live); \
		} else if (live) { \
			destroy(pending); \
			(pending) = (live); \
		} \
		(live) = NULL; \
	} while (0)
/* __gc: the handle is unreachable, so no binding holds either object. */
#define RF_LUA_RELEASE_ALL(live, pending, destroy) \
	do { \
		destroy(pending); \
		destroy(live); \
		(pending) = (live) = NULL; \
	} while (0)

/* {===== reading arguments safely
** A C pointer into a Lua string is valid while the string is reachable: a string taken
** from a table and popped, or made by converting a number on the stack (lua_tolstring
** converts in place) and popped, can be collected by the next allocation. And a table
** read through lua_geti/lua_getfield/luaL_len runs its __index/__len metamethods, Lua
** code that may free or change what was read before. So bindings read tables raw (these
** helpers, lua_rawgeti, lua_rawlen) and keep every string on the stack while C uses it. */

/* The string argument `arg` (a number is converted in place, on the stack, where it
** stays), refused if it holds a NUL byte: C would see only the part before it, a path
** naming another file or a text cut short. */
const char *rf_lua_check_cstring(lua_State *L, int arg);
/* The value at `idx` if it is a string without a NUL byte, else an error "<what> is a
** <type>, not a string" / "<what> holds a NUL byte"; numbers are not converted. */
const char *rf_lua_to_cstring(lua_State *L, int idx, const char *what);
/* Pushes t[k] of the table at `idx` without metamethods and returns its type. */
int rf_lua_rawfield(lua_State *L, int idx, const char *k);
/* Marks the state as closing (main.c before lua_close, and os.exit(code, true)). The
** finalizers lua_close runs may call refract, but objects made then are never finalized
** (Lua marks no new object for finalization while closing): a tensor, model or context
** made in a __gc at exit leaked. While closing, rf_lua_set_handle_mt refuses them. */
void rf_lua_mark_closing(lua_State *L);
/* luaL_setmetatable for a new refract handle or box (a userdata with a __gc), with an
** error while the state closes (see rf_lua_mark_closing). */
void rf_lua_set_handle_mt(lua_State *L, const char *mt);

/* The boolean at `idx`: nil is false, true and false are themselves, anything else is an
** error "<what> must be true or false, not <type>" (spatial = 0 or "false" read as true). */
bool rf_lua_to_bool(lua_State *L, int idx, const char *what);
/* The length of the list at `idx` without __len, as an int (an error past `max`). */
int rf_lua_list_len(lua_State *L, int idx, int max, const char *what);

/* }===== */

/* Sets `s = call` and, if that failed for device memory, runs a full collection (which
** frees the device memory of unreachable tensors) and sets `s = call` once more. Raises
** nothing (finalizers' errors become warnings in Lua 5.4): the caller checks `s`. */
#define RF_LUA_RETRY_OOM(L, s, call) \
	do { \
		(s) = (call); \
		if ((s) == RF_ERR_OOM_DEVICE) { \
			lua_gc((L), LUA_GCCOLLECT); \
			(s) = (call); \
		} \
	} while (0)

#endif
