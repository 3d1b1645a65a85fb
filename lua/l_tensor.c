/*
** l_tensor.c: refract.Tensor core: the handles (new tensors placed by
** dtype, freeing), the argument checks every tensor file shares (ltensor.h: shapes,
** dtypes, dimensions and indices in the 1-based convention, broadcasting) and the
** properties (shape, dtype, ndim, numel, device, #). The operations live in
** l_tensor_*.c and l_linalg.c; l_tensor_meta.c registers them all. Lua layer (L6).
*/
#include "ltensor.h"
#include "elementwise.h"
#include "status.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* {===== handles */

rf_ltensor *rf_lua_push_tensor_handle(lua_State *L)
{
	rf_ltensor *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->t = NULL;
	h->pending = NULL;
	rf_lua_set_handle_mt(L, RF_TENSOR_MT);
	return h;
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
	return rf_lua_new_device_tensor_for(L, dt, s, "allocating a tensor");
}

rf_tensor *rf_lua_new_device_tensor_for(lua_State *L, enum rf_dtype dt, const struct rf_shape *s,
					const char *what)
{
	rf_ctx *ctx = rf_lua_ctx(L);
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_tensor_create(ctx, dt, s, &h->t));
	if (st != RF_OK)
		rf_lua_fail(L, st, what);
	/* The collector cannot see device memory: account for it as if the bytes had been
	** allocated by Lua, so that loops dropping tensors get them collected at the pace
	** their device memory is used (torch/torch7#280). */
	uint64_t kb = rf_tensor_nbytes(h->t) >> 10;
	if (kb > 0 && lua_gc(L, LUA_GCISRUNNING))      /* not if the script stopped it */
		lua_gc(L, LUA_GCSTEP, (int)RF_MIN(kb, (uint64_t)INT_MAX / 2));
	return h->t;
}

rf_tensor *rf_lua_new_host_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s)
{
	rf_ltensor *h = rf_lua_push_tensor_handle(L);
	enum rf_status st = rf_tensor_create_host(dt, s, &h->t);
	if (st != RF_OK)
		rf_lua_fail(L, st, "allocating a host tensor");
	return h->t;
}

rf_tensor *rf_lua_new_tensor(lua_State *L, enum rf_dtype dt, const struct rf_shape *s,
			     bool device)
{
	return device ? rf_lua_new_device_tensor(L, dt, s) : rf_lua_new_host_tensor(L, dt, s);
}

/* t:free() and <close>: now, or from inside a finalizer when the handle is collected or
** freed again (RF_LUA_RELEASE). */
static int t_free(lua_State *L)
{
	rf_ltensor *h = luaL_checkudata(L, 1, RF_TENSOR_MT);
	RF_LUA_RELEASE(L, h->t, h->pending, rf_tensor_destroy);
	return 0;
}

static int t_gc(lua_State *L)
{
	rf_ltensor *h = luaL_checkudata(L, 1, RF_TENSOR_MT);
	RF_LUA_RELEASE_ALL(h->t, h->pending, rf_tensor_destroy);
	return 0;
}

/* }===== */

/* {===== shapes and dtypes */

int rf_lua_check_int_list(lua_State *L, int idx, int64_t *out)
{
	int n = 0;
	if (lua_istable(L, idx)) {
		lua_Unsigned len = lua_rawlen(L, idx);   /* raw: no metamethod runs (l_util.h) */
		luaL_argcheck(L, len <= RF_MAX_DIMS, idx, "too many dimensions (at most 8)");
		for (int i = 0; i < (int)len; i++) {
			lua_rawgeti(L, idx, i + 1);
			int ok;
			lua_Integer d = lua_tointegerx(L, -1, &ok);
			luaL_argcheck(L, ok, idx, "expected a table of integers");
			out[n++] = d;
			lua_pop(L, 1);
		}
		return n;
	}
	int top = lua_gettop(L);
	for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
		luaL_argcheck(L, n < RF_MAX_DIMS, i, "too many dimensions (at most 8)");
		out[n++] = luaL_checkinteger(L, i);
	}
	return n;
}

struct rf_shape rf_lua_check_shape(lua_State *L, int idx)
{
	struct rf_shape s = { 0 };
	bool table = lua_istable(L, idx);
	if (!table && lua_type(L, idx) != LUA_TNUMBER)
		luaL_argerror(L, idx, "shape expected (a table of integers)");
	s.ndim = rf_lua_check_int_list(L, idx, s.dim);
	for (int i = 0; i < s.ndim; i++)
		if (s.dim[i] < 0)
			luaL_argerror(L, table ? idx : idx + i,
				      lua_pushfstring(L, "shape entries must be non-negative integers, "
						      "got %I", (lua_Integer)s.dim[i]));
	/* The element count here (one byte each); the byte size once the dtype is known. */
	if (rf_shape_check(&s, RF_U8, "shape") != RF_OK)
		luaL_argerror(L, idx, "shape too large");
	return s;
}

enum rf_dtype rf_lua_opt_dtype(lua_State *L, int idx, enum rf_dtype def)
{
	if (lua_isnoneornil(L, idx))
		return def;
	const char *name = rf_lua_check_cstring(L, idx);   /* "f32\0x" is no dtype name */
	static const struct { const char *name; enum rf_dtype dt; } names[] = {
		{ "f32", RF_F32 }, { "float32", RF_F32 }, { "float", RF_F32 }, { "f16", RF_F16 },
		{ "float16", RF_F16 }, { "half", RF_F16 }, { "bf16", RF_BF16 }, { "bfloat16", RF_BF16 },
		{ "i64", RF_I64 }, { "int64", RF_I64 }, { "long", RF_I64 }, { "i32", RF_I32 },
		{ "int32", RF_I32 }, { "int", RF_I32 }, { "u8", RF_U8 }, { "uint8", RF_U8 },
	};
	char lower[16];
	size_t n = strlen(name);
	for (size_t i = 0; i < n && i < sizeof lower - 1; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[n < sizeof lower - 1 ? n : sizeof lower - 1] = '\0';
	for (size_t i = 0; n < sizeof lower && i < RF_ARRAY_LEN(names); i++)
		if (!strcmp(lower, names[i].name))
			return names[i].dt;
	luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s' (f32, f16, bf16, i64, i32, u8)", name));
	return def;
}

const char *rf_lua_dtype_str(enum rf_dtype dt)
{
	static const char *names[] = { "f32", "f16", "bf16", "i64", "i32", "u8" };
	return names[dt];
}

bool rf_lua_dtype_is_int(enum rf_dtype dt)
{
	return dt == RF_I64 || dt == RF_I32 || dt == RF_U8;
}

bool rf_lua_dtype_on_device(enum rf_dtype dt)
{
	return dt == RF_F32 || dt == RF_F16;
}

const char *rf_lua_push_shape_str(lua_State *L, const struct rf_shape *s)
{
	char buf[160];
	return lua_pushstring(L, rf_shape_str(s, buf, sizeof buf));
}

/* }===== */

/* {===== values for integer dtypes: Lua integers exactly, floats when integral and in
** range (checked before the cast, which is undefined behaviour out of range) */

/* The Lua integer range of each integer dtype. */
static void int_range(enum rf_dtype dt, int64_t *lo, int64_t *hi)
{
	*lo = dt == RF_I64 ? INT64_MIN : dt == RF_I32 ? INT32_MIN : 0;
	*hi = dt == RF_I64 ? INT64_MAX : dt == RF_I32 ? INT32_MAX : UINT8_MAX;
}

/* v if it fits integer dtype dt, else an error (`what` names the calling function). */
int64_t rf_lua_int_in_range(lua_State *L, int64_t v, enum rf_dtype dt, const char *what)
{
	int64_t lo, hi;
	int_range(dt, &lo, &hi);
	if (v < lo || v > hi)
		luaL_error(L, "%s: %I is not a valid %s value (%I..%I)", what, (lua_Integer)v,
			   rf_lua_dtype_str(dt), (lua_Integer)lo, (lua_Integer)hi);
	return v;
}

/* The float d as a value of integer dtype dt: it must be integral and fit. */
int64_t rf_lua_int_from_double(lua_State *L, double d, enum rf_dtype dt, const char *what)
{
	/* -2^63 <= d < 2^63, both bounds exact in double, checked before the cast. */
	if (!(d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0))
		luaL_error(L, "%s: %f is not a valid %s value", what, d, rf_lua_dtype_str(dt));
	return rf_lua_int_in_range(L, (int64_t)d, dt, what);
}

/* The value at `idx` (a number or a boolean) for integer dtype dt: a Lua integer is
** taken as it is, a float only if it is integral; either must fit dt. */
int64_t rf_lua_int_value(lua_State *L, int idx, enum rf_dtype dt, const char *what)
{
	if (lua_isboolean(L, idx))
		return lua_toboolean(L, idx);
	if (lua_isinteger(L, idx))
		return rf_lua_int_in_range(L, lua_tointeger(L, idx), dt, what);
	return rf_lua_int_from_double(L, lua_tonumber(L, idx), dt, what);
}

/* }===== */

/* {===== dimensions and indices */

int rf_lua_dim_index(lua_State *L, int arg, lua_Integer d, int ndim)
{
	if (d >= 1 && d <= ndim)
		return (int)d - 1;
	if (d <= -1 && d >= -ndim)
		return ndim + (int)d;
	if (ndim == 0)
		luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range (the tensor is 0-d)", d));
	luaL_argerror(L, arg, lua_pushfstring(L, "dimension %I out of range (expected 1..%d or -%d..-1%s)",
					      d, ndim, ndim, d == 0 ? "; dimensions count from 1" : ""));
	return 0;
}

int rf_lua_check_dim(lua_State *L, int arg, int ndim)
{
	return rf_lua_dim_index(L, arg, luaL_checkinteger(L, arg), ndim);
}

int rf_lua_opt_dim(lua_State *L, int arg, int ndim, int def)
{
	return rf_lua_dim_index(L, arg, luaL_optinteger(L, arg, def), ndim);
}

uint32_t rf_lua_opt_dims(lua_State *L, int arg, int ndim)
{
	if (lua_isnoneornil(L, arg))
		return ndim ? (1u << ndim) - 1 : 0;
	if (!lua_istable(L, arg)) {
		if (lua_type(L, arg) != LUA_TNUMBER)
			luaL_typeerror(L, arg, "dimension (a number or a table of numbers)");
		return 1u << rf_lua_check_dim(L, arg, ndim);
	}
	uint32_t mask = 0;
	lua_Integer n = (lua_Integer)RF_MIN(lua_rawlen(L, arg), (lua_Unsigned)RF_MAX_DIMS + 1);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, arg, i);
		int ok;
		lua_Integer d = lua_tointegerx(L, -1, &ok);
		lua_pop(L, 1);
		luaL_argcheck(L, ok, arg, "dimensions must be integers");
		int axis = rf_lua_dim_index(L, arg, d, ndim);
		if (mask >> axis & 1)
			luaL_argerror(L, arg, lua_pushfstring(L, "dimension %d given twice", axis + 1));
		mask |= 1u << axis;
	}
	return mask;
}

int64_t rf_lua_index(lua_State *L, int arg, lua_Integer i, int64_t size, int axis)
{
	if (i >= 1 && i <= size)
		return i - 1;
	if (i <= -1 && i >= -size)
		return size + i;
	if (size == 0)
		luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range (dimension %d is empty)",
						      i, axis + 1));
	luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range for dimension %d of size %I "
					      "(expected 1..%I or -%I..-1%s)", i, axis + 1,
					      (lua_Integer)size, (lua_Integer)size, (lua_Integer)size,
					      i == 0 ? "; indices count from 1" : ""));
	return 0;
}

/* }===== */

/* {===== broadcasting */

void rf_lua_broadcast(lua_State *L, const struct rf_shape *a, const struct rf_shape *b,
		      struct rf_shape *out, const char *what)
{
	if (rf_broadcast_shape(a, b, out) != RF_OK)
		luaL_error(L, "%s: %s", what, rf_error_message());
}

/* }===== */

/* {===== properties */

static int t_shape(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	if (!lua_isnoneornil(L, 2)) {
		lua_pushinteger(L, t->shape.dim[rf_lua_check_dim(L, 2, t->shape.ndim)]);
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
	lua_pushstring(L, rf_lua_dtype_str(rf_lua_check_tensor(L, 1)->dtype));
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

/* }===== */

/* {===== the core's method and metamethod tables (registered by l_tensor_meta.c) */

const luaL_Reg rf_lua_tensor_core_methods[] = {
	{ "shape", t_shape }, { "dtype", t_dtype }, { "ndim", t_ndim }, { "numel", t_numel },
	{ "device", t_device }, { "free", t_free }, { "is_freed", t_is_freed },
	{ NULL, NULL },
};

const luaL_Reg rf_lua_tensor_core_meta[] = {
	{ "__gc", t_gc }, { "__close", t_free }, { "__len", t_len },
	{ NULL, NULL },
};

/* }===== */
