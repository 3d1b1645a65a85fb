/*
** l_tensor_convert.c: tensors to Lua values (totable/tolist, item) and to other dtypes
** and places (float, half, to, host, to_device). Every conversion returns a new tensor,
** even when nothing changes. Lua layer (L6).
*/
#include "ltensor.h"

/* {===== to Lua values */

static void build_table(lua_State *L, const struct rf_shape *s, int depth, const void *raw,
			int64_t *at, enum rf_dtype dt)
{
	if (depth == s->ndim) {
		rf_lua_push_element(L, dt, raw, (*at)++);
		return;
	}
	luaL_checkstack(L, 2, "tensor too deep");
	lua_createtable(L, (int)s->dim[depth], 0);
	for (int64_t i = 0; i < s->dim[depth]; i++) {
		build_table(L, s, depth + 1, raw, at, dt);
		lua_rawseti(L, -2, i + 1);
	}
}

/* t:totable() / t:tolist() -> nested tables (a number for a 0-d tensor); integer
** dtypes give Lua integers. */
static int t_totable(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, rf_tensor_numel(t) <= (1 << 26), 1, "tensor too large to convert to a table "
		      "(more than 2^26 elements)");
	const void *raw = rf_lua_tensor_bytes(L, t);
	int64_t at = 0;
	build_table(L, &t->shape, 0, raw, &at, t->dtype);
	return 1;
}

/* t:item() -> the single value of a one-element tensor. */
static int t_item(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	if (rf_tensor_numel(t) != 1) {
		rf_lua_push_shape_str(L, &t->shape);
		return luaL_argerror(L, 1, lua_pushfstring(L, "item() needs a tensor with exactly one "
							   "element, got %s", lua_tostring(L, -1)));
	}
	rf_lua_push_element(L, t->dtype, rf_lua_tensor_bytes(L, t), 0);
	return 1;
}

/* }===== */

/* {===== dtypes and places */

/* t:to(dtype) -> a copy with that dtype, placed where the dtype lives. */
static int t_to(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_checkany(L, 2);
	enum rf_dtype dt = rf_lua_opt_dtype(L, 2, RF_F32);
	rf_lua_convert(L, t, dt, rf_lua_dtype_on_device(dt));
	return 1;
}

static int t_float(lua_State *L)
{
	rf_lua_convert(L, rf_lua_check_tensor(L, 1), RF_F32, true);
	return 1;
}

static int t_half(lua_State *L)
{
	rf_lua_convert(L, rf_lua_check_tensor(L, 1), RF_F16, true);
	return 1;
}

/* t:host() -> a host copy (same dtype). */
static int t_host(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	rf_lua_convert(L, t, t->dtype, false);
	return 1;
}

/* t:to_device() -> a device copy (same dtype). */
static int t_to_device(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	rf_lua_convert(L, t, t->dtype, true);
	return 1;
}

/* }===== */

const luaL_Reg rf_lua_tensor_convert_methods[] = {
	{ "totable", t_totable }, { "tolist", t_totable }, { "item", t_item },
	{ "to", t_to }, { "float", t_float }, { "half", t_half },
	{ "host", t_host }, { "to_device", t_to_device },
	{ NULL, NULL },
};
