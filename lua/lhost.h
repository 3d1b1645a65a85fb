/*
** lhost.h: the module's parts: luaopen_refract, the per-file openers it calls, and the
** refract.Model handle that the files extending Model read. The context and errors every
** binding file shares are in l_util.h, below all of them. Lua layer (L6).
*/
#ifndef RF_LUA_LHOST_H
#define RF_LUA_LHOST_H

#include <stdbool.h>

#include <lua.h>
#include <lauxlib.h>

typedef struct rf_clip rf_clip;

int luaopen_refract(lua_State *L);

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
void rf_lua_open_checksum(lua_State *L);
void rf_lua_open_resize(lua_State *L);
void rf_lua_open_segment(lua_State *L);
void rf_lua_open_imagenet_seg(lua_State *L);
void rf_lua_open_lock(lua_State *L);
void rf_lua_open_spawn(lua_State *L);
void rf_lua_open_file(lua_State *L);

#endif
