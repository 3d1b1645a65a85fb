/*
** l_tensor_index.c: indexing: t[i], select, narrow, slice and index (gather) read parts
** of a tensor into new contiguous tensors (views are copies); set and t[i] = v write
** into a tensor in place; masked_fill makes a filled copy. Indices and dimensions are
** 1-based, negative ones count from the end, ranges include both ends. Lua layer (L6).
*/
#include "ltensor.h"
#include "layout.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {===== reading parts */

/* The part of t along `axis` starting at `start` (0-based) with `len` elements `step`
** apart, copied into a new tensor (pushed) of the same dtype and place; with `drop`,
** the axis (len 1) is removed from the result. */
static rf_tensor *push_part(lua_State *L, const rf_tensor *t, int axis, int64_t start,
			    int64_t len, int64_t step, bool drop)
{
	struct rf_view v = rf_view_contiguous(t);
	v.offset = start * v.stride[axis];
	v.shape[axis] = len;
	v.stride[axis] *= step;
	struct rf_shape s = { 0 };
	for (int d = 0; d < t->shape.ndim; d++)
		if (!(drop && d == axis))
			s.dim[s.ndim++] = d == axis ? len : t->shape.dim[d];
	rf_tensor *out = rf_lua_new_tensor(L, t->dtype, &s, rf_tensor_on_device(t));
	struct rf_view ov = rf_view_contiguous(out);
	if (drop) {            /* the same elements, with the axis of size 1 kept for the copy */
		ov = v;
		int64_t stride = 1;
		for (int d = t->shape.ndim - 1; d >= 0; d--) {
			ov.stride[d] = stride;
			stride *= ov.shape[d];
		}
		ov.offset = 0;
	}
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_view_copy(t->ctx, t, &v, out, &ov));
	if (st != RF_OK)
		rf_lua_fail(L, st, "indexing");
	return out;
}

/* t:select(dim, i) -> the slice at index i along dim, with that dimension removed. */
static int t_select(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_check_dim(L, 2, t->shape.ndim);
	int64_t i = rf_lua_index(L, 3, luaL_checkinteger(L, 3), t->shape.dim[axis], axis);
	push_part(L, t, axis, i, 1, 1, true);
	return 1;
}

int rf_lua_tensor_getitem(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int ok;
	lua_Integer i = lua_tointegerx(L, 2, &ok);
	if (!ok)
		return luaL_error(L, "a refract.Tensor is indexed by an integer or a method name, not %s",
				  lua_type(L, 2) == LUA_TNUMBER ? "a fractional number" : luaL_typename(L, 2));
	if (t->shape.ndim == 0)
		return luaL_error(L, "cannot index a 0-d tensor (use t:item())");
	push_part(L, t, 0, rf_lua_index(L, 2, i, t->shape.dim[0], 0), 1, 1, true);
	return 1;
}

/* t:narrow(dim, start, length) -> elements start .. start + length - 1 along dim. */
static int t_narrow(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_check_dim(L, 2, t->shape.ndim);
	int64_t size = t->shape.dim[axis];
	lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
	luaL_argcheck(L, len >= 0, 4, "length must be non-negative");
	int64_t first = start == size + 1 && len == 0 ? size : rf_lua_index(L, 3, start, size, axis);
	if (len > size - first)   /* not first + len: that overflows for a huge length */
		return luaL_argerror(L, 4, lua_pushfstring(L, "length %I from index %I passes the end of "
							   "dimension %d (size %I)", len, start,
							   axis + 1, (lua_Integer)size));
	push_part(L, t, axis, first, len, 1, false);
	return 1;
}

/* t:slice(dim, start, stop [, step=1]) -> elements start, start + step, ... up to and
** including stop along dim (step may be negative). A slice whose stop comes before its
** start is empty. */
static int t_slice(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_check_dim(L, 2, t->shape.ndim);
	int64_t size = t->shape.dim[axis];
	lua_Integer start = luaL_checkinteger(L, 3), stop = luaL_checkinteger(L, 4);
	lua_Integer step = luaL_optinteger(L, 5, 1);
	luaL_argcheck(L, step != 0, 5, "step must not be zero");
	/* Negative positions count from the end; an empty slice may name the position just
	** past either end. */
	lua_Integer a = start < 0 ? start + size + 1 : start, b = stop < 0 ? stop + size + 1 : stop;
	bool empty = step > 0 ? b < a : b > a;
	if (empty) {
		luaL_argcheck(L, a >= 0 && a <= size + 1, 3, "start out of range");
		push_part(L, t, axis, 0, 0, 1, false);
		return 1;
	}
	int64_t first = rf_lua_index(L, 3, start, size, axis);
	int64_t last = rf_lua_index(L, 4, stop, size, axis);
	int64_t len = (last - first) / step + 1;
	/* One element: the step does not matter, and multiplied into the stride it could
	** overflow (math.mininteger, math.maxinteger). Longer, |step| < size keeps it small. */
	push_part(L, t, axis, first, len, len == 1 ? 1 : step, false);
	return 1;
}

/* }===== */

/* {===== gather */

/* The indices argument (a table of integers or a tensor) as 0-based positions along an
** axis of `size`; pushes a scratch array and returns it, with its shape in *s. */
static int64_t *check_indices(lua_State *L, int arg, int64_t size, int axis, struct rf_shape *s)
{
	const double *v;
	int64_t n;
	if (lua_istable(L, arg)) {
		lua_Unsigned len = lua_rawlen(L, arg);   /* raw: no metamethods (l_util.h) */
		luaL_argcheck(L, len <= (UINT64_C(1) << 31), arg, "too many indices");
		n = (int64_t)len;
		*s = rf_shape_of(1, n);
		double *w = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *w, 0);
		for (int64_t i = 0; i < n; i++) {
			lua_rawgeti(L, arg, i + 1);
			int ok;
			w[i] = (double)lua_tointegerx(L, -1, &ok);
			lua_pop(L, 1);
			if (!ok)
				luaL_argerror(L, arg, lua_pushfstring(L, "index %I of the list is not an "
								      "integer", (lua_Integer)i + 1));
		}
		v = w;
	} else {
		if (!luaL_testudata(L, arg, RF_TENSOR_MT))
			luaL_typeerror(L, arg, "table of integers or refract.Tensor");
		const rf_tensor *it = rf_lua_check_tensor(L, arg);
		*s = it->shape;
		n = rf_tensor_numel(it);
		v = rf_lua_tensor_values(L, it);
	}
	int64_t *idx = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *idx, 0);
	for (int64_t i = 0; i < n; i++) {
		if (v[i] != floor(v[i]))
			luaL_argerror(L, arg, "indices must be integers");
		if (fabs(v[i]) > 9e15)   /* beyond any size, and past exact doubles */
			luaL_argerror(L, arg, lua_pushfstring(L, "index %f out of range for dimension %d "
							      "of size %I", v[i], axis + 1, (lua_Integer)size));
		idx[i] = rf_lua_index(L, arg, (lua_Integer)v[i], size, axis);
	}
	lua_remove(L, -2);
	return idx;
}

/* The gather of an f32 device tensor: x seen as [outer * size, inner] rows, one
** gathered row per (outer, index) pair, which is the result's row-major order. */
static void gather_device(lua_State *L, const rf_tensor *x, const int64_t *idx, int64_t n,
			  int64_t outer, int64_t size, int64_t inner, rf_tensor *out)
{
	struct rf_shape is = rf_shape_of(1, outer * n);
	int32_t *rows = lua_newuserdatauv(L, (size_t)RF_MAX(outer * n, 1) * 4, 0);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < n; j++)
			rows[o * n + j] = (int32_t)(o * size + idx[j]);
	rf_tensor *it = rf_lua_new_device_tensor(L, RF_I32, &is);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_tensor_upload(it, rows, (uint64_t)outer * n * 4));
	if (st != RF_OK)
		rf_lua_fail(L, st, "index");
	/* Shape aliases for the kernel's [rows, cols] contract; they share the memory and
	** are never destroyed. */
	rf_tensor xa = *x, ya = *out;
	xa.shape = rf_shape_of(2, outer * size, inner);
	ya.shape = rf_shape_of(2, outer * n, inner);
	RF_LUA_RETRY_OOM(L, st, rf_op_gather_rows(x->ctx, &xa, it, &ya));
	if (st != RF_OK)
		rf_lua_fail(L, st, "index");
	lua_pop(L, 2);
}

/* The same on the host (any dtype), through host copies for device tensors. */
static enum rf_status gather_host(const rf_tensor *x, const int64_t *idx, int64_t n,
				  int64_t outer, int64_t size, int64_t inner, rf_tensor *out)
{
	size_t es = rf_dtype_size(x->dtype), row = (size_t)inner * es;
	const char *src = x->host;
	char *dst = out->host, *down = NULL, *up = NULL;
	enum rf_status s = RF_OK;
	if (rf_tensor_on_device(x)) {
		src = down = malloc(rf_tensor_nbytes(x) ? rf_tensor_nbytes(x) : 1);
		dst = up = malloc(rf_tensor_nbytes(out) ? rf_tensor_nbytes(out) : 1);
		if (!down || !up)
			s = rf_error(RF_ERR_OOM_HOST, "index: host scratch");
		else
			s = rf_tensor_download(x, down, rf_tensor_nbytes(x));
	}
	if (s == RF_OK) {
		for (int64_t o = 0; o < outer; o++)
			for (int64_t j = 0; j < n; j++)
				memcpy(dst + (size_t)(o * n + j) * row, src + (size_t)(o * size + idx[j]) * row, row);
		if (up)
			s = rf_tensor_upload(out, up, rf_tensor_nbytes(out));
	}
	free(up);
	free(down);
	return s;
}

/* t:index(dim, indices) -> the elements at `indices` along dim (a table of integers or
** an integer tensor of any shape, whose shape replaces dimension dim). */
static int t_index(lua_State *L)
{
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_check_dim(L, 2, x->shape.ndim);
	luaL_checkany(L, 3);
	int64_t size = x->shape.dim[axis];
	struct rf_shape is;
	int64_t *idx = check_indices(L, 3, size, axis, &is);
	int64_t n = rf_shape_numel(&is), outer = 1, inner = 1;
	struct rf_shape s = { 0 };
	if (x->shape.ndim - 1 + is.ndim > RF_MAX_DIMS)
		return luaL_error(L, "index: the result would have more than %d dimensions", RF_MAX_DIMS);
	for (int d = 0; d < x->shape.ndim; d++) {
		if (d == axis) {
			for (int k = 0; k < is.ndim; k++)
				s.dim[s.ndim++] = is.dim[k];
			continue;
		}
		s.dim[s.ndim++] = x->shape.dim[d];
		*(d < axis ? &outer : &inner) *= x->shape.dim[d];
	}
	rf_tensor *out = rf_lua_new_tensor(L, x->dtype, &s, rf_tensor_on_device(x));
	if (rf_tensor_numel(out) == 0)
		return 1;
	/* The kernel takes 32-bit row numbers; anything else gathers on the host. */
	if (x->dtype == RF_F32 && rf_tensor_on_device(x) && outer * size <= INT32_MAX &&
	    outer * n <= INT32_MAX) {
		gather_device(L, x, idx, n, outer, size, inner, out);
		return 1;
	}
	enum rf_status st = gather_host(x, idx, n, outer, size, inner, out);
	if (st != RF_OK)
		return rf_lua_fail(L, st, "index");
	return 1;
}

/* }===== */

/* {===== writing */

/* Pushes a 0-d tensor of dtype dt (device or host) holding the number at `varg`; a Lua
** integer goes into an integer dtype exactly (through a double 2^53 + 1 became 2^53). */
static rf_tensor *push_scalar(lua_State *L, enum rf_dtype dt, bool device, int varg,
			      const char *what)
{
	double v = lua_tonumber(L, varg);
	if (rf_lua_dtype_is_int(dt) && lua_isinteger(L, varg)) {
		lua_Integer x = lua_tointeger(L, varg);
		if ((dt == RF_I32 && (x < INT32_MIN || x > INT32_MAX)) || (dt == RF_U8 && (x < 0 || x > 255)))
			luaL_error(L, "%s: %I is not a valid %s value", what, x, rf_lua_dtype_str(dt));
		struct rf_shape s0 = { 0 };
		rf_tensor *h = rf_lua_new_host_tensor(L, dt, &s0);
		switch (dt) {
		case RF_I64: { int64_t y = (int64_t)x; memcpy(h->host, &y, 8); break; }
		case RF_I32: { int32_t y = (int32_t)x; memcpy(h->host, &y, 4); break; }
		default: *(uint8_t *)h->host = (uint8_t)x; break;
		}
		if (!device)
			return h;
		rf_tensor *d = rf_lua_convert(L, h, dt, true);
		lua_remove(L, -2);
		return d;
	}
	if (rf_lua_dtype_is_int(dt)) {
		double lo = dt == RF_I64 ? -9223372036854775808.0 : dt == RF_I32 ? -2147483648.0 : 0;
		double hi = dt == RF_I64 ? 9223372036854775808.0 : dt == RF_I32 ? 2147483648.0 : 256;
		if (!(v == floor(v) && v >= lo && v < hi))
			luaL_error(L, "%s: %f is not a valid %s value", what, v, rf_lua_dtype_str(dt));
	}
	struct rf_shape s = { 0 };
	rf_tensor *h = rf_lua_new_host_tensor(L, dt, &s);
	switch (dt) {
	case RF_I64: { int64_t x = (int64_t)v; memcpy(h->host, &x, 8); break; }
	case RF_I32: { int32_t x = (int32_t)v; memcpy(h->host, &x, 4); break; }
	case RF_U8: *(uint8_t *)h->host = (uint8_t)v; break;
	default: { float f = (float)v; rf_convert_from_f32(dt, &f, h->host, 1); }
	}
	if (!device)
		return h;
	rf_tensor *d = rf_lua_convert(L, h, dt, true);
	lua_remove(L, -2);
	return d;
}

/* Writes the value at `varg` (a number, or a tensor that broadcasts to the part) into
** the part of t at index i along axis. */
static void assign(lua_State *L, rf_tensor *t, int axis, int64_t i, int varg, const char *what)
{
	bool device = rf_tensor_on_device(t);
	rf_tensor *v;
	if (lua_type(L, varg) == LUA_TNUMBER) {
		v = push_scalar(L, t->dtype, device, varg, what);
	} else {
		if (!luaL_testudata(L, varg, RF_TENSOR_MT))
			luaL_typeerror(L, varg, "refract.Tensor or number");
		v = rf_lua_check_tensor(L, varg);
		if (v->dtype != t->dtype || rf_tensor_on_device(v) != device)
			v = rf_lua_convert(L, v, t->dtype, device);
		else
			lua_pushvalue(L, varg);
	}
	/* The part: t's axes without `axis`; the value aligns to its trailing axes. */
	struct rf_view tv = rf_view_contiguous(t), dv = { 0 }, sv = { 0 };
	struct rf_shape part = { 0 };
	dv.offset = i * tv.stride[axis];
	for (int d = 0; d < t->shape.ndim; d++) {
		if (d == axis)
			continue;
		dv.shape[dv.ndim] = t->shape.dim[d];
		dv.stride[dv.ndim++] = tv.stride[d];
		part.dim[part.ndim++] = t->shape.dim[d];
	}
	struct rf_shape b;
	rf_lua_broadcast(L, &v->shape, &part, &b, what);
	if (!rf_shape_equal(&b, &part)) {
		char a[160], c[160];
		luaL_error(L, "%s: a value of shape %s does not fit a part of shape %s", what,
			   rf_shape_str(&v->shape, a, sizeof a), rf_shape_str(&part, c, sizeof c));
	}
	struct rf_view vv = rf_view_contiguous(v);
	sv = dv;
	sv.offset = 0;
	for (int d = 0; d < part.ndim; d++) {
		int k = d - (part.ndim - v->shape.ndim);
		sv.stride[d] = k < 0 || v->shape.dim[k] == 1 ? 0 : vv.stride[k];
	}
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_view_copy(t->ctx, v, &sv, t, &dv));
	if (st != RF_OK)
		rf_lua_fail(L, st, what);
	lua_pop(L, 1);
}

/* t:set(dim, i, value) -> t, with the slice at index i along dim replaced by value (a
** number or a tensor broadcast to the slice). Writes in place. */
static int t_set(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_check_dim(L, 2, t->shape.ndim);
	int64_t i = rf_lua_index(L, 3, luaL_checkinteger(L, 3), t->shape.dim[axis], axis);
	luaL_checkany(L, 4);
	assign(L, t, axis, i, 4, "set");
	lua_settop(L, 1);
	return 1;
}

int rf_lua_tensor_setitem(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int ok;
	lua_Integer i = lua_tointegerx(L, 2, &ok);
	if (!ok)
		return luaL_error(L, "a refract.Tensor is indexed by an integer, not %s",
				  luaL_typename(L, 2));
	if (t->shape.ndim == 0)
		return luaL_error(L, "cannot index a 0-d tensor");
	assign(L, t, 0, rf_lua_index(L, 2, i, t->shape.dim[0], 0), 3, "set");
	return 0;
}

/* t:masked_fill(mask, value) -> a copy of t (as f32) with `value` where mask is nonzero;
** mask broadcasts to t's shape. */
static int t_masked_fill(lua_State *L)
{
	rf_lua_check_tensor(L, 1);
	rf_tensor *mask = rf_lua_check_tensor(L, 2);
	luaL_checknumber(L, 3);
	rf_tensor *x = rf_lua_f32_arg(L, 1);
	mask = rf_lua_f32_arg(L, 2);
	struct rf_shape b;
	rf_lua_broadcast(L, &mask->shape, &x->shape, &b, "masked_fill");
	if (!rf_shape_equal(&b, &x->shape)) {
		char a[160], c[160];
		return luaL_error(L, "masked_fill: mask %s does not broadcast to the tensor's shape %s",
				  rf_shape_str(&mask->shape, a, sizeof a), rf_shape_str(&x->shape, c, sizeof c));
	}
	lua_settop(L, 3);
	rf_tensor *v = rf_lua_f32_arg(L, 3);
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_where(x->ctx, mask, v, x, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "masked_fill");
	return 1;
}

/* }===== */

const luaL_Reg rf_lua_tensor_index_methods[] = {
	{ "select", t_select }, { "narrow", t_narrow }, { "slice", t_slice }, { "index", t_index },
	{ "set", t_set }, { "masked_fill", t_masked_fill },
	{ NULL, NULL },
};
