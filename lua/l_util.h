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
