/*
** l_refract.c: luaopen_refract, the module table: version, then one opener per binding
** file. Lua layer (L6).
*/
#include "lhost.h"
#include "paths.h"
#include "status.h"

int rf_lua_fail(lua_State *L, enum rf_status s, const char *what)
{
	const char *msg = rf_error_message();
	if (!msg || !*msg)
		msg = rf_status_str(s);
	return luaL_error(L, "%s: %s", what, msg);
}

static int l_home(lua_State *L)
{
	lua_pushstring(L, rf_paths_root());
	return 1;
}

int luaopen_refract(lua_State *L)
{
	lua_newtable(L);
	lua_pushstring(L, RF_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushcfunction(L, l_home);
	lua_setfield(L, -2, "home");
	rf_lua_open_device(L);
	rf_lua_open_tensor(L);
	rf_lua_open_model(L);
	rf_lua_open_intervene(L);
	rf_lua_open_image(L);
	rf_lua_open_png(L);
	rf_lua_open_json(L);
	rf_lua_open_io(L);
	rf_lua_open_bench(L);
	return 1;
}
