/*
** lhost.h: what the bindings share: the module opener, the context every device tensor
** uses, and turning an rf_status into a Lua error. Lua layer (L6): the only place where
** C failures become longjmps.
*/
#ifndef RF_LUA_LHOST_H
#define RF_LUA_LHOST_H

#include <lua.h>
#include <lauxlib.h>
#include "rf_base.h"

typedef struct rf_ctx rf_ctx;
typedef struct rf_clip rf_clip;

int luaopen_refract(lua_State *L);

/* The shared device context, created on first use (a Lua error if no device). */
rf_ctx *rf_lua_ctx(lua_State *L);
/* Like rf_lua_ctx but returns NULL (no error) when none was created yet. */
rf_ctx *rf_lua_ctx_if_created(lua_State *L);

/* Raises a Lua error "<what>: <message of the last failure>". Never returns. */
int rf_lua_fail(lua_State *L, enum rf_status s, const char *what);

/* The live model at `idx` (argument error if wrong type or freed). */
rf_clip *rf_lua_check_model(lua_State *L, int idx);
/* Whether `idx` is a model handle still holding `m` (not freed). */
bool rf_lua_model_is(lua_State *L, int idx, const rf_clip *m);

/* Per-file openers; each adds its functions to the module table on the stack top. */
void rf_lua_open_device(lua_State *L);
void rf_lua_open_tensor(lua_State *L);
void rf_lua_open_model(lua_State *L);
/* Need rf_lua_open_model first: they add model:forward, model:decompose and
** model:decomposer to refract.Model. */
void rf_lua_open_intervene(lua_State *L);
void rf_lua_open_decomposer(lua_State *L);
void rf_lua_open_png(lua_State *L);
void rf_lua_open_image(lua_State *L);
void rf_lua_open_json(lua_State *L);
/* Needs rf_lua_open_tensor first: it adds t:save to module.Tensor. */
void rf_lua_open_io(lua_State *L);
void rf_lua_open_bench(lua_State *L);

#endif
