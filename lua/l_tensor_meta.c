/*
** l_tensor_meta.c: refract.Tensor's metatable and method table, gathered from the tables
** of l_tensor.c (the core), l_tensor_*.c and l_linalg.c, so that those files depend only
** on ltensor.h and none of them on this one. Lua layer (L6).
*/
#include "lhost.h"
#include "ltensor.h"

/* __index: names look up the methods table (upvalue 1); integers select along
** dimension 1 (t[i]). */
static int t_index(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TSTRING) {
		lua_pushvalue(L, 2);
		lua_rawget(L, lua_upvalueindex(1));
		return 1;
	}
	return rf_lua_tensor_getitem(L);
}

static int t_newindex(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TSTRING)
		return luaL_error(L, "cannot set field '%s' of a refract.Tensor", lua_tostring(L, 2));
	return rf_lua_tensor_setitem(L);
}

void rf_lua_open_tensor(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__tostring", rf_lua_tensor_tostring }, { "__newindex", t_newindex },
		{ NULL, NULL },
	};
	const luaL_Reg *method_sets[] = {
		rf_lua_tensor_core_methods, rf_lua_tensor_convert_methods, rf_lua_tensor_index_methods,
		rf_lua_tensor_math_methods, rf_lua_tensor_reduce_methods, rf_lua_tensor_shape_methods,
		rf_lua_linalg_methods,
	};
	const luaL_Reg *function_sets[] = {
		rf_lua_tensor_create_functions, rf_lua_tensor_math_functions, rf_lua_linalg_functions,
	};
	/* module on the stack top */
	luaL_newmetatable(L, RF_TENSOR_MT);
	luaL_setfuncs(L, rf_lua_tensor_core_meta, 0);
	luaL_setfuncs(L, meta, 0);
	luaL_setfuncs(L, rf_lua_tensor_math_meta, 0);
	lua_newtable(L);                                   /* the methods */
	for (size_t i = 0; i < RF_ARRAY_LEN(method_sets); i++)
		luaL_setfuncs(L, method_sets[i], 0);
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, t_index, 1);
	lua_setfield(L, -3, "__index");
	/* module.Tensor = the methods table, so scripts can extend or inspect it. */
	lua_setfield(L, -3, "Tensor");
	lua_pop(L, 1);                                     /* the metatable */
	for (size_t i = 0; i < RF_ARRAY_LEN(function_sets); i++)
		luaL_setfuncs(L, function_sets[i], 0);
}
