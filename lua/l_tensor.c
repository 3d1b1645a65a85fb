/*
** l_tensor.c: refract.Tensor basics: the metatable, construction from Lua tables,
** shape/dtype/length/tostring, conversion to tables, freeing. Index convention: see
** the README (dimensions and indices are 1-based in Lua, as everywhere in Lua).
** Lua layer (L6).
*/
#include "ltensor.h"
#include "context.h"
#include "elementwise.h"
#include "status.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {===== handles */

rf_ltensor *rf_lua_push_tensor_handle(lua_State *L)
{
	rf_ltensor *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->t = NULL;
	luaL_setmetatable(L, RF_TENSOR_MT);
	return h;
}

void rf_lua_push_tensor(lua_State *L, rf_tensor *t)
{
	/* If the userdata allocation raises, `t` would leak: Lua reports a memory error,
	** which is already fatal for the script; keep the window as small as this. */
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	h->t = t;
}

rf_tensor *rf_lua_check_tensor(lua_State *L, int idx)
{
	rf_ltensor *h = luaL_checkudata(L, idx, RF_TENSOR_MT);
	luaL_argcheck(L, h->t != NULL, idx, "tensor has been freed");
	return h->t;
}

rf_tensor *rf_lua_opt_tensor(lua_State *L, int idx)
{
	rf_ltensor *h = luaL_testudata(L, idx, RF_TENSOR_MT);
	return h ? h->t : NULL;
}

rf_tensor *rf_lua_new_device_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s)
{
	rf_ctx *ctx = rf_lua_ctx(L);
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_tensor_create(ctx, dt, s, &h->t));
	if (st != RF_OK)
		rf_lua_fail(L, st, "allocating a tensor");
	return h->t;
}

static int t_free(lua_State *L)
{
	rf_ltensor *h = luaL_checkudata(L, 1, RF_TENSOR_MT);
	rf_tensor_destroy(h->t);
	h->t = NULL;
	return 0;
}

/* }===== */

/* {===== shapes and dtypes */

struct rf_shape rf_lua_check_shape(lua_State *L, int idx)
{
	struct rf_shape s = { 0 };
	if (lua_istable(L, idx)) {
		lua_Integer n = luaL_len(L, idx);
		luaL_argcheck(L, n <= RF_MAX_DIMS, idx, "too many dimensions (at most 8)");
		s.ndim = (int)n;
		for (int i = 0; i < s.ndim; i++) {
			lua_geti(L, idx, i + 1);
			int ok;
			lua_Integer d = lua_tointegerx(L, -1, &ok);
			luaL_argcheck(L, ok && d >= 0, idx, "shape entries must be non-negative integers");
			s.dim[i] = d;
			lua_pop(L, 1);
		}
		return s;
	}
	int top = lua_gettop(L);
	for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
		luaL_argcheck(L, s.ndim < RF_MAX_DIMS, i, "too many dimensions (at most 8)");
		lua_Integer d = luaL_checkinteger(L, i);
		luaL_argcheck(L, d >= 0, i, "dimensions must be non-negative");
		s.dim[s.ndim++] = d;
	}
	if (s.ndim == 0)
		luaL_argerror(L, idx, "shape expected (a table of integers)");
	return s;
}

enum rf_dtype rf_lua_opt_dtype(lua_State *L, int idx, enum rf_dtype def)
{
	if (lua_isnoneornil(L, idx))
		return def;
	const char *name = luaL_checkstring(L, idx);
	static const struct { const char *name; enum rf_dtype dt; } names[] = {
		{ "f32", RF_F32 }, { "float32", RF_F32 }, { "f16", RF_F16 }, { "float16", RF_F16 },
		{ "bf16", RF_BF16 }, { "bfloat16", RF_BF16 }, { "i64", RF_I64 }, { "int64", RF_I64 },
		{ "i32", RF_I32 }, { "int32", RF_I32 }, { "u8", RF_U8 }, { "uint8", RF_U8 },
	};
	char lower[16];
	size_t n = strlen(name);
	for (size_t i = 0; i < n && i < sizeof lower - 1; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[n < sizeof lower - 1 ? n : sizeof lower - 1] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(lower, names[i].name))
			return names[i].dt;
	luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s' (f32, f16, bf16, i64, i32, u8)", name));
	return def;
}

static const char *dtype_lua_name(enum rf_dtype dt)
{
	static const char *names[] = { "f32", "f16", "bf16", "i64", "i32", "u8" };
	return names[dt];
}

/* }===== */

/* {===== from and to Lua tables */

/* Walks nested tables to find the shape; every row must have the same length. */
static void table_shape(lua_State *L, int idx, struct rf_shape *s, int depth)
{
	if (lua_type(L, idx) != LUA_TTABLE) {
		luaL_argcheck(L, lua_type(L, idx) == LUA_TNUMBER || lua_type(L, idx) == LUA_TBOOLEAN, 1,
			      "tensor data must be numbers in nested tables");
		return;
	}
	luaL_argcheck(L, depth < RF_MAX_DIMS, 1, "too many dimensions (at most 8)");
	lua_Integer n = luaL_len(L, idx);
	s->ndim = depth + 1;
	s->dim[depth] = n;
	if (n > 0) {
		lua_geti(L, idx, 1);
		table_shape(L, lua_gettop(L), s, depth + 1);
		lua_pop(L, 1);
	}
}

static void table_fill(lua_State *L, int idx, const struct rf_shape *s, int depth, double *out,
		       int64_t *at)
{
	if (depth == s->ndim) {
		int ok = 1;
		double v = lua_isboolean(L, idx) ? lua_toboolean(L, idx) : lua_tonumberx(L, idx, &ok);
		luaL_argcheck(L, ok, 1, "tensor data must be numbers");
		out[(*at)++] = v;
		return;
	}
	luaL_argcheck(L, lua_type(L, idx) == LUA_TTABLE && luaL_len(L, idx) == s->dim[depth], 1,
		      "ragged nested tables: every row must have the same length");
	for (lua_Integer i = 1; i <= s->dim[depth]; i++) {
		lua_geti(L, idx, i);
		table_fill(L, lua_gettop(L), s, depth + 1, out, at);
		lua_pop(L, 1);
	}
}

/* Stores doubles into a host buffer of dtype `dt`. */
static void store_values(enum rf_dtype dt, const double *v, void *dst, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		switch (dt) {
		case RF_I64: ((int64_t *)dst)[i] = (int64_t)v[i]; break;
		case RF_I32: ((int32_t *)dst)[i] = (int32_t)v[i]; break;
		case RF_U8: ((uint8_t *)dst)[i] = (uint8_t)v[i]; break;
		default: {
			float f = (float)v[i];
			rf_convert_from_f32(dt, &f, (char *)dst + i * (int64_t)rf_dtype_size(dt), 1);
		}
		}
	}
}

bool rf_lua_dtype_on_device(enum rf_dtype dt)
{
	return dt == RF_F32 || dt == RF_F16;
}

/* refract.tensor(data [, dtype]): data is a number or nested tables of numbers. */
static int l_tensor(lua_State *L)
{
	luaL_argcheck(L, lua_istable(L, 1) || lua_isnumber(L, 1), 1, "table or number expected");
	enum rf_dtype dt = rf_lua_opt_dtype(L, 2, RF_F32);
	struct rf_shape s = { 0 };
	table_shape(L, 1, &s, 0);
	int64_t n = rf_shape_numel(&s);
	double *values = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(double), 0);
	int64_t at = 0;
	table_fill(L, 1, &s, 0, values, &at);
	void *raw = lua_newuserdatauv(L, (size_t)(n ? n : 1) * rf_dtype_size(dt), 0);
	store_values(dt, values, raw, n);
	enum rf_status st;
	if (rf_lua_dtype_on_device(dt)) {
		rf_tensor *t = rf_lua_new_device_tensor(L, dt, &s);
		st = rf_tensor_upload(t, raw, rf_tensor_nbytes(t));
	} else {
		rf_ltensor *h = rf_lua_push_tensor_handle(L);
		st = rf_tensor_from_host_data(dt, &s, raw, &h->t);
	}
	if (st != RF_OK)
		return rf_lua_fail(L, st, "tensor");
	return 1;
}

double *rf_lua_tensor_values(lua_State *L, const rf_tensor *t)
{
	int64_t n = rf_tensor_numel(t);
	size_t bytes = rf_tensor_nbytes(t);
	void *raw = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
	enum rf_status st = rf_tensor_download(t, raw, bytes);
	if (st != RF_OK)
		rf_lua_fail(L, st, "reading a tensor");
	double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(double), 0);
	for (int64_t i = 0; i < n; i++) {
		switch (t->dtype) {
		case RF_I64: v[i] = (double)((int64_t *)raw)[i]; break;
		case RF_I32: v[i] = ((int32_t *)raw)[i]; break;
		case RF_U8: v[i] = ((uint8_t *)raw)[i]; break;
		default: {
			float f;
			rf_convert_to_f32(t->dtype, (char *)raw + i * (int64_t)rf_dtype_size(t->dtype), &f, 1);
			v[i] = f;
		}
		}
	}
	lua_remove(L, -2);
	return v;   /* anchored on the stack top */
}

static bool is_integer_dtype(enum rf_dtype dt)
{
	return dt == RF_I64 || dt == RF_I32 || dt == RF_U8;
}

static void push_value(lua_State *L, enum rf_dtype dt, double v)
{
	if (is_integer_dtype(dt))
		lua_pushinteger(L, (lua_Integer)v);
	else
		lua_pushnumber(L, v);
}

static void build_table(lua_State *L, const struct rf_shape *s, int depth, const double *v,
			int64_t *at, enum rf_dtype dt)
{
	if (depth == s->ndim) {
		push_value(L, dt, v[(*at)++]);
		return;
	}
	lua_createtable(L, (int)s->dim[depth], 0);
	for (int64_t i = 0; i < s->dim[depth]; i++) {
		build_table(L, s, depth + 1, v, at, dt);
		lua_rawseti(L, -2, i + 1);
	}
}

/* t:totable() -> nested tables (a number for a 0-d tensor). */
static int t_totable(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, rf_tensor_numel(t) <= (1 << 26), 1, "tensor too large to convert to a table");
	const double *v = rf_lua_tensor_values(L, t);
	int64_t at = 0;
	build_table(L, &t->shape, 0, v, &at, t->dtype);
	return 1;
}

/* t:item() -> the single value of a one-element tensor. */
static int t_item(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, rf_tensor_numel(t) == 1, 1, "item() needs a tensor with exactly one element");
	const double *v = rf_lua_tensor_values(L, t);
	push_value(L, t->dtype, v[0]);
	return 1;
}

/* }===== */

/* {===== properties */

static int t_shape(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	if (!lua_isnoneornil(L, 2)) {
		lua_Integer d = luaL_checkinteger(L, 2);
		if (d < 0)
			d += t->shape.ndim + 1;
		luaL_argcheck(L, d >= 1 && d <= t->shape.ndim, 2, "dimension out of range");
		lua_pushinteger(L, t->shape.dim[d - 1]);
		return 1;
	}
	lua_createtable(L, t->shape.ndim, 0);
	for (int i = 0; i < t->shape.ndim; i++) {
		lua_pushinteger(L, t->shape.dim[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

static int t_dtype(lua_State *L)
{
	lua_pushstring(L, dtype_lua_name(rf_lua_check_tensor(L, 1)->dtype));
	return 1;
}

static int t_ndim(lua_State *L)
{
	lua_pushinteger(L, rf_lua_check_tensor(L, 1)->shape.ndim);
	return 1;
}

static int t_numel(lua_State *L)
{
	lua_pushinteger(L, rf_tensor_numel(rf_lua_check_tensor(L, 1)));
	return 1;
}

static int t_device(lua_State *L)
{
	lua_pushstring(L, rf_tensor_on_device(rf_lua_check_tensor(L, 1)) ? "device" : "host");
	return 1;
}

static int t_is_freed(lua_State *L)
{
	rf_ltensor *h = luaL_checkudata(L, 1, RF_TENSOR_MT);
	lua_pushboolean(L, h->t == NULL);
	return 1;
}

/* #t: length of the first dimension (1 for a 0-d tensor). */
static int t_len(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	lua_pushinteger(L, t->shape.ndim ? t->shape.dim[0] : 1);
	return 1;
}

static int t_tostring(lua_State *L)
{
	rf_ltensor *h = luaL_checkudata(L, 1, RF_TENSOR_MT);
	if (!h->t) {
		lua_pushliteral(L, "refract.Tensor(freed)");
		return 1;
	}
	rf_tensor *t = h->t;
	char text[512], shape[160];
	int at = snprintf(text, sizeof text, "refract.Tensor(%s %s, %s:", dtype_lua_name(t->dtype),
			  rf_shape_str(&t->shape, shape, sizeof shape),
			  rf_tensor_on_device(t) ? "device" : "host");
	int64_t n = rf_tensor_numel(t), show = n < 8 ? n : 8;
	/* Preview the first values (this downloads the tensor once). */
	const double *v = rf_lua_tensor_values(L, t);
	for (int64_t i = 0; i < show && at < (int)sizeof text; i++)
		at += is_integer_dtype(t->dtype)
			? snprintf(text + at, sizeof text - (size_t)at, " %lld", (long long)v[i])
			: snprintf(text + at, sizeof text - (size_t)at, " %.6g", v[i]);
	if (at < (int)sizeof text)
		snprintf(text + at, sizeof text - (size_t)at, "%s)", n > show ? " ..." : "");
	lua_pushstring(L, text);
	return 1;
}

/* }===== */

/* {===== arithmetic through operators */

static rf_tensor *operand(lua_State *L, int idx)
{
	if (lua_isnumber(L, idx)) {
		/* A number becomes a 0-d device tensor, broadcast by the kernel. */
		float v = (float)lua_tonumber(L, idx);
		struct rf_shape s = { 0 };
		rf_tensor *t = rf_lua_new_device_tensor(L, RF_F32, &s);
		enum rf_status st = rf_tensor_upload(t, &v, 4);
		if (st != RF_OK)
			rf_lua_fail(L, st, "arithmetic");
		lua_replace(L, idx);
		return t;
	}
	rf_tensor *t = rf_lua_check_tensor(L, idx);
	luaL_argcheck(L, rf_tensor_on_device(t) && t->dtype == RF_F32, idx,
		      "arithmetic needs f32 tensors (use t:float())");
	return t;
}

static int binary(lua_State *L, enum rf_binary_op op)
{
	rf_tensor *a = operand(L, 1), *b = operand(L, 2);
	struct rf_shape s;
	enum rf_status st = rf_broadcast_shape(&a->shape, &b->shape, &s);
	if (st != RF_OK)
		return rf_lua_fail(L, st, "arithmetic");
	rf_tensor *out = rf_lua_new_device_tensor(L, RF_F32, &s);
	st = rf_op_binary(rf_lua_ctx(L), op, a, b, out);
	if (st != RF_OK)
		return rf_lua_fail(L, st, "arithmetic");
	return 1;
}

static int t_add(lua_State *L) { return binary(L, RF_BIN_ADD); }
static int t_sub(lua_State *L) { return binary(L, RF_BIN_SUB); }
static int t_mul(lua_State *L) { return binary(L, RF_BIN_MUL); }
static int t_div(lua_State *L) { return binary(L, RF_BIN_DIV); }
static int t_pow(lua_State *L) { return binary(L, RF_BIN_POW); }

/* }===== */

void rf_lua_open_tensor(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "shape", t_shape }, { "dtype", t_dtype }, { "ndim", t_ndim }, { "numel", t_numel },
		{ "device", t_device }, { "totable", t_totable }, { "item", t_item },
		{ "free", t_free }, { "is_freed", t_is_freed },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = {
		{ "__gc", t_free }, { "__close", t_free }, { "__tostring", t_tostring }, { "__len", t_len },
		{ "__add", t_add }, { "__sub", t_sub }, { "__mul", t_mul }, { "__div", t_div },
		{ "__pow", t_pow },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, RF_TENSOR_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "__index");
	/* module.Tensor = the methods table, so scripts can extend or inspect it. */
	lua_setfield(L, -3, "Tensor");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_tensor);
	lua_setfield(L, -2, "tensor");
}
