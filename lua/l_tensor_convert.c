/*
** l_tensor_convert.c: moving tensors between dtypes, places and Lua values: the
** conversion helpers of ltensor.h (f32 operands, dtype conversion, copies, host bytes),
** the methods float, half, to, host, to_device, totable/tolist and item, and tostring.
** Every conversion returns a new tensor, even when nothing changes. Lua layer (L6).
*/
#include "ltensor.h"
#include "context.h"
#include "layout.h"
#include "status.h"
#include "transfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {===== operands and conversions */

rf_tensor *rf_lua_f32_arg(lua_State *L, int arg)
{
	if (lua_type(L, arg) == LUA_TNUMBER) {
		/* A number becomes a 0-d device tensor, broadcast by the kernels. */
		float v = (float)lua_tonumber(L, arg);
		struct rf_shape s = { 0 };
		rf_tensor *t = rf_lua_new_device_tensor(L, RF_F32, &s);
		enum rf_status st = rf_tensor_upload(t, &v, 4);
		if (st != RF_OK)
			rf_lua_fail(L, st, "uploading a number");
		lua_replace(L, arg);
		return t;
	}
	if (!luaL_testudata(L, arg, RF_TENSOR_MT))
		luaL_typeerror(L, arg, "refract.Tensor or number");
	rf_tensor *t = rf_lua_check_tensor(L, arg);
	if (t->dtype == RF_F32 && rf_tensor_on_device(t))
		return t;
	t = rf_lua_convert(L, t, RF_F32, true);
	lua_replace(L, arg);
	return t;
}

/* Element i of a host buffer of dtype dt as a double (exact for every dtype but i64
** beyond 2^53). */
static double read_element(enum rf_dtype dt, const void *p, int64_t i)
{
	switch (dt) {
	case RF_I64: { int64_t v; memcpy(&v, (const char *)p + 8 * i, 8); return (double)v; }
	case RF_I32: { int32_t v; memcpy(&v, (const char *)p + 4 * i, 4); return v; }
	case RF_U8: return ((const uint8_t *)p)[i];
	default: {
		float f;
		rf_convert_to_f32(dt, (const char *)p + i * (int64_t)rf_dtype_size(dt), &f, 1);
		return f;
	}
	}
}

/* Stores v as element i of dtype dt: floats round to nearest, integers truncate toward
** zero and saturate (NaN becomes 0, never undefined behaviour). */
static void write_element(enum rf_dtype dt, void *p, int64_t i, double v)
{
	char *at = (char *)p + i * (int64_t)rf_dtype_size(dt);
	double lo = 0, hi = 255;
	switch (dt) {
	case RF_I64: lo = -9223372036854775808.0; hi = 9223372036854775807.0; break;
	case RF_I32: lo = -2147483648.0; hi = 2147483647.0; break;
	case RF_U8: break;
	default: {
		float f = (float)v;
		rf_convert_from_f32(dt, &f, at, 1);
		return;
	}
	}
	v = isnan(v) ? 0 : v < lo ? lo : v;
	switch (dt) {
	case RF_I64: { int64_t x = v >= hi ? INT64_MAX : (int64_t)v; memcpy(at, &x, 8); break; }
	case RF_I32: { int32_t x = v >= hi ? INT32_MAX : (int32_t)v; memcpy(at, &x, 4); break; }
	default: *(uint8_t *)at = (uint8_t)(v >= hi ? 255 : v);
	}
}

/* Converts n elements between host buffers. */
static void convert_elements(enum rf_dtype from, const void *src, enum rf_dtype to, void *dst,
			     int64_t n)
{
	if (from == to) {
		memcpy(dst, src, (size_t)n * rf_dtype_size(to));
	} else if (to == RF_F32 && !rf_lua_dtype_is_int(from)) {
		rf_convert_to_f32(from, src, dst, (size_t)n);
	} else {
		for (int64_t i = 0; i < n; i++)
			write_element(to, dst, i, read_element(from, src, i));
	}
}

/* The C part of rf_lua_convert: no Lua calls between the mallocs and the frees. */
static enum rf_status convert_into(const rf_tensor *t, rf_tensor *out)
{
	int64_t n = rf_tensor_numel(t);
	if (n == 0)
		return RF_OK;
	bool same = t->dtype == out->dtype;
	if (same && rf_tensor_on_device(out) && rf_tensor_on_device(t))
		return rf_mem_copy(out->ctx, &t->mem, 0, &out->mem, 0, rf_tensor_nbytes(t));
	if (same && rf_tensor_on_device(out))
		return rf_tensor_upload(out, t->host, rf_tensor_nbytes(t));
	if (same)
		return rf_tensor_download(t, out->host, rf_tensor_nbytes(t));
	void *src = t->host, *dst = out->host, *down = NULL, *up = NULL;
	enum rf_status s = RF_OK;
	if (rf_tensor_on_device(t)) {
		down = src = malloc(rf_tensor_nbytes(t));
		if (!down)
			return rf_error(RF_ERR_OOM_HOST, "converting a tensor");
		s = rf_tensor_download(t, down, rf_tensor_nbytes(t));
	}
	if (s == RF_OK && rf_tensor_on_device(out)) {
		up = dst = malloc(rf_tensor_nbytes(out));
		if (!up)
			s = rf_error(RF_ERR_OOM_HOST, "converting a tensor");
	}
	if (s == RF_OK) {
		convert_elements(t->dtype, src, out->dtype, dst, n);
		if (up)
			s = rf_tensor_upload(out, up, rf_tensor_nbytes(out));
	}
	free(up);
	free(down);
	return s;
}

rf_tensor *rf_lua_convert(lua_State *L, const rf_tensor *t, enum rf_dtype dt, bool device)
{
	rf_tensor *out = rf_lua_new_tensor(L, dt, &t->shape, device);
	enum rf_status s = convert_into(t, out);
	if (s != RF_OK)
		rf_lua_fail(L, s, "converting a tensor");
	return out;
}

rf_tensor *rf_lua_copy_reshaped(lua_State *L, const rf_tensor *t, const struct rf_shape *s)
{
	enum rf_status st;
	RF_ASSERT(rf_shape_numel(s) == rf_tensor_numel(t));
	rf_tensor *out = rf_lua_new_tensor(L, t->dtype, s, rf_tensor_on_device(t));
	uint64_t bytes = rf_tensor_nbytes(t);
	if (bytes == 0)
		return out;
	if (!rf_tensor_on_device(t))
		memcpy(out->host, t->host, bytes);
	else {
		RF_LUA_RETRY_OOM(L, st, rf_mem_copy(t->ctx, &t->mem, 0, &out->mem, 0, bytes));
		if (st != RF_OK)
			rf_lua_fail(L, st, "copying a tensor");
	}
	return out;
}

rf_tensor *rf_lua_permuted(lua_State *L, const rf_tensor *x, const int *perm)
{
	struct rf_shape s = { .ndim = x->shape.ndim };
	for (int i = 0; i < s.ndim; i++)
		s.dim[i] = x->shape.dim[perm[i]];
	rf_tensor *y = rf_lua_new_tensor(L, x->dtype, &s, rf_tensor_on_device(x));
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_permute(x->ctx, x, perm, y));
	if (st != RF_OK)
		rf_lua_fail(L, st, "permute");
	return y;
}

const void *rf_lua_tensor_bytes(lua_State *L, const rf_tensor *t)
{
	if (!rf_tensor_on_device(t)) {
		lua_pushnil(L);   /* keeps the stack layout of the device case */
		return t->host;
	}
	size_t bytes = rf_tensor_nbytes(t);
	void *down = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
	enum rf_status st = rf_tensor_download(t, down, bytes);
	if (st != RF_OK)
		rf_lua_fail(L, st, "reading a tensor");
	return down;
}

void rf_lua_push_element(lua_State *L, enum rf_dtype dt, const void *raw, int64_t i)
{
	switch (dt) {
	case RF_I64: { int64_t v; memcpy(&v, (const char *)raw + 8 * i, 8); lua_pushinteger(L, v); break; }
	case RF_I32: { int32_t v; memcpy(&v, (const char *)raw + 4 * i, 4); lua_pushinteger(L, v); break; }
	case RF_U8: lua_pushinteger(L, ((const uint8_t *)raw)[i]); break;
	default: lua_pushnumber(L, read_element(dt, raw, i));
	}
}

double *rf_lua_tensor_values(lua_State *L, const rf_tensor *t)
{
	int64_t n = rf_tensor_numel(t);
	const void *raw = rf_lua_tensor_bytes(L, t);
	double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(double), 0);
	for (int64_t i = 0; i < n; i++)
		v[i] = read_element(t->dtype, raw, i);
	lua_remove(L, -2);
	return v;   /* anchored on the stack top */
}

/* {===== to Lua values */

/* "refract.Tensor(f32 [2, 3], device: 1 2 3 4 5 6)": the first 8 values (only those are
** read back). */
int rf_lua_tensor_tostring(lua_State *L)
{
	rf_ltensor *h = luaL_checkudata(L, 1, RF_TENSOR_MT);
	if (!h->t) {
		lua_pushliteral(L, "refract.Tensor(freed)");
		return 1;
	}
	rf_tensor *t = h->t;
	char text[512], shape[160];
	int at = snprintf(text, sizeof text, "refract.Tensor(%s %s, %s:", rf_lua_dtype_str(t->dtype),
			  rf_shape_str(&t->shape, shape, sizeof shape),
			  rf_tensor_on_device(t) ? "device" : "host");
	int64_t n = rf_tensor_numel(t), show = n < 8 ? n : 8;
	size_t es = rf_dtype_size(t->dtype);
	char first[64];
	const void *raw = t->host;
	if (rf_tensor_on_device(t) && show > 0) {
		enum rf_status st = rf_mem_download(t->ctx, &t->mem, 0, first, (uint64_t)show * es);
		if (st != RF_OK)
			return rf_lua_fail(L, st, "tostring");
		raw = first;
	}
	for (int64_t i = 0; i < show && at < (int)sizeof text; i++) {
		if (t->dtype == RF_I64) {
			int64_t v;
			memcpy(&v, (const char *)raw + 8 * i, 8);
			at += snprintf(text + at, sizeof text - (size_t)at, " %lld", (long long)v);
		} else {
			double v = read_element(t->dtype, raw, i);   /* exact for the other dtypes */
			at += snprintf(text + at, sizeof text - (size_t)at, rf_lua_dtype_is_int(t->dtype)
				       ? " %.0f" : " %.6g", v);
		}
	}
	if (at < (int)sizeof text)
		snprintf(text + at, sizeof text - (size_t)at, "%s)", n > show ? " ..." : "");
	lua_pushstring(L, text);
	return 1;
}

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

/* Whether totable's result stays within `limit` numbers and `limit` tables. The tables
** count too: a [1, 2^40, 0] tensor has no element but would be 2^40 empty tables. */
static bool table_fits(const struct rf_shape *s, int64_t limit)
{
	int64_t rows = 1, tables = 0;   /* tables made at each depth: the product of the dims above */
	for (int d = 0; d < s->ndim; d++) {
		tables += rows;
		if (tables > limit)
			return false;
		if (s->dim[d] == 0)
			return true;        /* nothing below an empty dimension */
		if (rows > limit / s->dim[d])
			return false;
		rows *= s->dim[d];
	}
	return rows <= limit;
}

/* t:totable() / t:tolist() -> nested tables (a number for a 0-d tensor); integer
** dtypes give Lua integers. */
static int t_totable(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, table_fits(&t->shape, 1 << 26), 1, "tensor too large to convert to a table "
		      "(more than 2^26 elements or nested tables)");
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
