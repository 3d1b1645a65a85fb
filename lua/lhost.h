/*
** lhost.h: the module's parts: luaopen_refract, the per-file openers it calls, and the
** refract.Model handle that the files extending Model read. The context and errors every
** binding file shares are in l_util.h, below all of them. Lua layer (L6).
*/
#ifndef RF_LUA_LHOST_H
#define RF_LUA_LHOST_H

#include <lua.h>
#include <lauxlib.h>

typedef struct rf_clip rf_clip;

int luaopen_refract(lua_State *L);

/* The live model at `idx` (argument error if wrong type or freed). */
rf_clip *rf_lua_check_model(lua_State *L, int idx);

/* Per-file openers; each adds its functions to the module table on the stack top. */
void rf_lua_open_device(lua_State *L);
void rf_lua_open_tensor(lua_State *L);
void rf_lua_open_model(lua_State *L);
/* Needs rf_lua_open_model first: it adds model:forward to refract.Model. */
void rf_lua_open_intervene(lua_State *L);
void rf_lua_open_png(lua_State *L);
void rf_lua_open_image(lua_State *L);
void rf_lua_open_json(lua_State *L);
/* Needs rf_lua_open_tensor first: it adds t:save to module.Tensor. */
void rf_lua_open_io(lua_State *L);
void rf_lua_open_bench(lua_State *L);
void rf_lua_open_checksum(lua_State *L);
void rf_lua_open_file(lua_State *L);

#endif
