/*
** l_tensor_create.c: making tensors: from Lua tables (refract.tensor), constant fills
** (zeros, ones, full), ranges (arange), identity (eye), seeded random values (rand,
** randn) and joins of tensors (cat, stack). New tensors go where their dtype lives:
** f32 (the default) and f16 on the device, the others on the host. Lua layer (L6).
*/
#include "ltensor.h"
#include "layout.h"
#include "status.h"
#include "transfer.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* {===== from values
** Values built on the host are held as doubles for floating dtypes and as int64 for
** integer dtypes, so an i64 value is exact over its whole range (2^53 + 1 and
** math.maxinteger, which a double rounds or pushes past the type). */

union value {
	double f;
	int64_t i;
};

/* The value at `idx` for dtype dt (a number or a boolean). */
static union value check_value(lua_State *L, int idx, enum rf_dtype dt, const char *what)
{
	union value v;
	if (rf_lua_dtype_is_int(dt))
		v.i = rf_lua_int_value(L, idx, dt, what);
	else
		v.f = lua_isboolean(L, idx) ? lua_toboolean(L, idx) : lua_tonumber(L, idx);
	return v;
}

/* Writes value v (of dtype dt's kind) as element i of raw bytes of dtype dt. */
static void store_value(enum rf_dtype dt, union value v, char *raw, int64_t i)
{
	switch (dt) {
	case RF_I64: memcpy(raw + 8 * i, &v.i, 8); break;
	case RF_I32: { int32_t x = (int32_t)v.i; memcpy(raw + 4 * i, &x, 4); break; }
	case RF_U8: raw[i] = (char)(uint8_t)v.i; break;
	default: {
		float f = (float)v.f;
		rf_convert_from_f32(dt, &f, raw + (int64_t)rf_dtype_size(dt) * i, 1);
	}
	}
}

/* Pushes a tensor of dtype dt and shape s holding the n values of v (placed by dtype). */
static rf_tensor *push_from_values(lua_State *L, enum rf_dtype dt, const struct rf_shape *s,
				   const union value *v)
{
	int64_t n = rf_shape_numel(s);
	size_t es = rf_dtype_size(dt);
	char *raw = lua_newuserdatauv(L, (size_t)(n ? n : 1) * es, 0);
	for (int64_t i = 0; i < n; i++)
		store_value(dt, v[i], raw, i);
	enum rf_status st;
	rf_tensor *t;
	if (rf_lua_dtype_on_device(dt)) {
		t = rf_lua_new_device_tensor(L, dt, s);
		st = rf_tensor_upload(t, raw, rf_tensor_nbytes(t));
	} else {
		rf_ltensor *h = rf_lua_push_tensor_handle(L);
		st = rf_tensor_from_host_data(dt, s, raw, &h->t);
		t = h->t;
	}
	if (st != RF_OK)
		rf_lua_fail(L, st, "creating a tensor");
	lua_remove(L, -2);
	return t;
}

/* A scratch array of n values anchored on the stack (values built on the host are
** limited to 2^28 elements, 1 GiB as f32). */
static union value *push_values(lua_State *L, int64_t n)
{
	if (n > (INT64_C(1) << 28))
		luaL_error(L, "%I elements are too many to build on the host (at most 2^28)", (lua_Integer)n);
	return lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(union value), 0);
}

/* }===== */

/* {===== refract.tensor */

/* Walks nested tables to find the shape; every row must have the same length. Tables
** are read raw (no metamethods: l_util.h), here and in table_fill. */
static void table_shape(lua_State *L, int idx, struct rf_shape *s, int depth)
{
	if (lua_type(L, idx) != LUA_TTABLE) {
		luaL_argcheck(L, lua_type(L, idx) == LUA_TNUMBER || lua_type(L, idx) == LUA_TBOOLEAN, 1,
			      "tensor data must be numbers in nested tables");
		return;
	}
	luaL_argcheck(L, depth < RF_MAX_DIMS, 1, "too many dimensions (at most 8)");
	lua_Integer n = (lua_Integer)RF_MIN(lua_rawlen(L, idx), (lua_Unsigned)INT64_MAX);
	s->ndim = depth + 1;
	s->dim[depth] = n;
	if (n > 0) {
		lua_rawgeti(L, idx, 1);
		table_shape(L, lua_gettop(L), s, depth + 1);
		lua_pop(L, 1);
	}
}

static void table_fill(lua_State *L, int idx, const struct rf_shape *s, int depth,
		       enum rf_dtype dt, union value *out, int64_t *at)
{
	if (depth == s->ndim) {
		/* Numbers only: a string such as "1" would be converted in place (l_util.h). */
		luaL_argcheck(L, lua_type(L, idx) == LUA_TNUMBER || lua_isboolean(L, idx), 1,
			      "tensor data must be numbers");
		out[(*at)++] = check_value(L, idx, dt, "tensor");
		return;
	}
	luaL_argcheck(L, lua_type(L, idx) == LUA_TTABLE &&
		      lua_rawlen(L, idx) == (lua_Unsigned)s->dim[depth], 1,
		      "ragged nested tables: every row must have the same length");
	for (lua_Integer i = 1; i <= s->dim[depth]; i++) {
		lua_rawgeti(L, idx, i);
		table_fill(L, lua_gettop(L), s, depth + 1, dt, out, at);
		lua_pop(L, 1);
	}
}

/* refract.tensor(data [, dtype]): data is a number, nested tables of numbers (booleans
** count 1/0), or a tensor (copied, converted to dtype if given). */
static int l_tensor(lua_State *L)
{
	rf_tensor *src = rf_lua_opt_tensor(L, 1);
	if (src || luaL_testudata(L, 1, RF_TENSOR_MT)) {
		src = rf_lua_check_tensor(L, 1);
		enum rf_dtype dt = rf_lua_opt_dtype(L, 2, src->dtype);
		rf_lua_convert(L, src, dt, rf_lua_dtype_on_device(dt));
		return 1;
	}
	if (!lua_istable(L, 1) && lua_type(L, 1) != LUA_TNUMBER)
		luaL_typeerror(L, 1, "table, number or refract.Tensor");
	enum rf_dtype dt = rf_lua_opt_dtype(L, 2, RF_F32);
	struct rf_shape s = { 0 };
	table_shape(L, 1, &s, 0);
	/* Tables that hold themselves give any shape: its element count must not overflow. */
	if (rf_shape_check(&s, dt, "tensor") != RF_OK)
		return luaL_error(L, "tensor: %s", rf_error_message());
	int64_t n = rf_shape_numel(&s);
	union value *values = push_values(L, n);
	int64_t at = 0;
	table_fill(L, 1, &s, 0, dt, values, &at);
	push_from_values(L, dt, &s, values);
	return 1;
}

/* }===== */

/* {===== constant fills */

/* A shape given as a table or a single integer (functions whose later arguments are
** numbers cannot take the shape as varargs). */
static struct rf_shape check_shape_arg(lua_State *L, int idx)
{
	if (lua_istable(L, idx))
		return rf_lua_check_shape(L, idx);
	lua_Integer n = luaL_checkinteger(L, idx);
	luaL_argcheck(L, n >= 0, idx, "size must be non-negative");
	return rf_shape_of(1, (int64_t)n);
}

/* Fills t with v (already checked against t's dtype). */
static void fill(lua_State *L, rf_tensor *t, union value v)
{
	enum rf_status st;
	int64_t n = rf_tensor_numel(t);
	if (n == 0)
		return;
	if (t->dtype == RF_F32 && rf_tensor_on_device(t)) {
		RF_LUA_RETRY_OOM(L, st, rf_op_fill(t->ctx, t, (float)v.f));
		if (st != RF_OK)
			rf_lua_fail(L, st, "fill");
	} else if (t->dtype == RF_F16 && rf_tensor_on_device(t)) {
		float f = (float)v.f;
		uint32_t h = rf_float_to_half(f);
		/* Two halves per 32-bit word; the allocation is whole words. */
		RF_LUA_RETRY_OOM(L, st, rf_mem_fill(t->ctx, &t->mem, 0, t->mem.size, h | h << 16));
		if (st != RF_OK)
			rf_lua_fail(L, st, "fill");
	} else {
		RF_ASSERT(!rf_tensor_on_device(t));
		size_t es = rf_dtype_size(t->dtype);
		char one[8];
		store_value(t->dtype, v, one, 0);
		for (int64_t i = 0; i < n; i++)
			memcpy((char *)t->host + (size_t)i * es, one, es);
	}
}

/* Pushes a tensor filled with the value at `idx` (checked against dt). */
static int push_filled(lua_State *L, const struct rf_shape *s, enum rf_dtype dt, int idx,
		       const char *what)
{
	union value v = check_value(L, idx, dt, what);
	rf_tensor *t = rf_lua_new_tensor(L, dt, s, rf_lua_dtype_on_device(dt));
	fill(L, t, v);
	return 1;
}

/* The argument after a shape given as a table or as varargs. */
static int after_shape(lua_State *L, int idx, const struct rf_shape *s)
{
	return lua_istable(L, idx) ? idx + 1 : idx + s->ndim;
}

/* refract.zeros(shape [, dtype]) and refract.ones(shape [, dtype]); shape is a table or
** the sizes as varargs: zeros(2, 3, "i64"). */
static int l_zeros(lua_State *L)
{
	struct rf_shape s = rf_lua_check_shape(L, 1);
	enum rf_dtype dt = rf_lua_opt_dtype(L, after_shape(L, 1, &s), RF_F32);
	lua_pushinteger(L, 0);
	return push_filled(L, &s, dt, lua_gettop(L), "zeros");
}

static int l_ones(lua_State *L)
{
	struct rf_shape s = rf_lua_check_shape(L, 1);
	enum rf_dtype dt = rf_lua_opt_dtype(L, after_shape(L, 1, &s), RF_F32);
	lua_pushinteger(L, 1);
	return push_filled(L, &s, dt, lua_gettop(L), "ones");
}

/* refract.full(shape, value [, dtype]) */
static int l_full(lua_State *L)
{
	struct rf_shape s = check_shape_arg(L, 1);
	luaL_checknumber(L, 2);
	if (lua_type(L, 2) == LUA_TSTRING) {     /* "5": its number, an integer if it reads as one */
		lua_stringtonumber(L, lua_tostring(L, 2));
		lua_replace(L, 2);
	}
	return push_filled(L, &s, rf_lua_opt_dtype(L, 3, RF_F32), 2, "full");
}

/* }===== */

/* {===== ranges and identity */

/* The element count of start, start + step, ... up to and including stop, over Lua
** integers: exact at the integer limits (a double would round maxinteger - 2 and
** maxinteger to one value). An error past 2^31 elements. */
static int64_t integer_range_count(lua_State *L, lua_Integer start, lua_Integer stop,
				   lua_Integer step)
{
	if (step > 0 ? stop < start : stop > start)
		return 0;
	uint64_t span = step > 0 ? (uint64_t)stop - (uint64_t)start : (uint64_t)start - (uint64_t)stop;
	uint64_t stride = step > 0 ? (uint64_t)step : UINT64_C(0) - (uint64_t)step;
	uint64_t count = span / stride + 1;      /* span <= 2^64 - 1, so no overflow but 2^64 */
	if (span / stride >= (UINT64_C(1) << 31))
		luaL_error(L, "arange: %I elements or more is too many", (lua_Integer)(INT64_C(1) << 31));
	return (int64_t)count;
}

/* refract.arange(n) = 1, 2, ..., n; refract.arange(start, stop [, step]) = start,
** start + step, ... up to and including stop (Lua's numeric for). A dtype may follow.
** Integer arguments count and step in integers, as Lua's for does. */
static int l_arange(lua_State *L)
{
	int nums = 0;
	while (nums < 3 && lua_type(L, nums + 1) == LUA_TNUMBER)
		nums++;
	luaL_argcheck(L, nums >= 1, 1, "number expected");
	enum rf_dtype dt = rf_lua_opt_dtype(L, nums + 1, RF_F32);
	/* Integers count exactly; for an integer dtype, so do integral floats within int64
	** (arange(2.0^53, 2.0^53 + 2, "i64") would repeat 2^53 counted in doubles). */
	bool ints = true;
	for (int i = 1; i <= nums; i++) {
		int exact;
		lua_tointegerx(L, i, &exact);
		ints = ints && (lua_isinteger(L, i) || (rf_lua_dtype_is_int(dt) && exact));
	}
	if (nums >= 3 && luaL_checknumber(L, 3) == 0)
		return luaL_argerror(L, 3, "step must not be zero");
	if (ints) {
		lua_Integer start = nums == 1 ? 1 : lua_tointeger(L, 1);
		lua_Integer stop = lua_tointeger(L, nums == 1 ? 1 : 2);
		lua_Integer step = nums == 3 ? lua_tointeger(L, 3) : 1;
		struct rf_shape s = rf_shape_of(1, integer_range_count(L, start, stop, step));
		union value *v = push_values(L, s.dim[0]);
		for (int64_t i = 0; i < s.dim[0]; i++) {
			/* In range by the count; unsigned so that no step overflows. */
			int64_t x = (int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)step);
			if (rf_lua_dtype_is_int(dt))
				v[i].i = rf_lua_int_in_range(L, x, dt, "arange");
			else
				v[i].f = (double)x;
		}
		push_from_values(L, dt, &s, v);
		return 1;
	}
	double start = 1, stop, step = 1;
	if (nums == 1) {
		stop = luaL_checknumber(L, 1);
	} else {
		start = luaL_checknumber(L, 1);
		stop = luaL_checknumber(L, 2);
		step = nums == 3 ? luaL_checknumber(L, 3) : 1;   /* arg 3 may be the dtype */
	}
	if (!isfinite(start) || !isfinite(stop) || !isfinite(step))
		return luaL_error(L, "arange: start, stop and step must be finite");
	double q = (stop - start) / step;
	/* A little slack, so that arange(0, 1, 0.1) ends at 1 despite rounding. */
	double count = q < -1e-9 ? 0 : floor(q + 1e-9) + 1;
	if (count > (double)(INT64_C(1) << 31))
		return luaL_error(L, "arange: %f elements is too many", count);
	struct rf_shape s = rf_shape_of(1, (int64_t)count);
	union value *v = push_values(L, s.dim[0]);
	for (int64_t i = 0; i < s.dim[0]; i++) {
		double x = start + (double)i * step;
		if (rf_lua_dtype_is_int(dt))
			v[i].i = rf_lua_int_from_double(L, x, dt, "arange");
		else
			v[i].f = x;
	}
	push_from_values(L, dt, &s, v);
	return 1;
}

/* refract.eye(n [, m] [, dtype]): n x m with ones on the diagonal. */
static int l_eye(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	lua_Integer m = lua_type(L, 2) == LUA_TNUMBER ? luaL_checkinteger(L, 2) : n;
	enum rf_dtype dt = rf_lua_opt_dtype(L, lua_type(L, 2) == LUA_TNUMBER ? 3 : 2, RF_F32);
	luaL_argcheck(L, n >= 0 && m >= 0, 1, "sizes must be non-negative");
	luaL_argcheck(L, n * (double)m <= (double)(INT64_C(1) << 31), 1, "too large");
	struct rf_shape s = rf_shape_of(2, (int64_t)n, (int64_t)m);
	union value *v = push_values(L, n * m);
	bool ints = rf_lua_dtype_is_int(dt);
	for (lua_Integer i = 0; i < n * m; i++) {
		if (ints)
			v[i].i = i / m == i % m;
		else
			v[i].f = i / m == i % m;
	}
	push_from_values(L, dt, &s, v);
	return 1;
}

/* }===== */

/* {===== random values
** Generated on the host, so every device gives the same values for a seed. Element i
** (row-major) of rand(shape, seed) is (x_i >> 40) * 2^-24, uniform in [0, 1), where x_i
** is the i-th output (from 0) of SplitMix64 seeded with `seed`: x_i = mix(seed +
** (i + 1) * 0x9E3779B97F4A7C15), mix being SplitMix64's finalizer. randn turns outputs
** 2j and 2j+1 into elements 2j and 2j+1 by the Box-Muller transform in double:
** u1 = ((x_2j >> 11) + 1) * 2^-53, u2 = (x_2j+1 >> 11) * 2^-53, r = sqrt(-2 ln u1),
** z_2j = r cos(2 pi u2), z_2j+1 = r sin(2 pi u2). */

static uint64_t splitmix64(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static int random_tensor(lua_State *L, bool normal)
{
	struct rf_shape s = check_shape_arg(L, 1);
	lua_Integer seed = luaL_optinteger(L, 2, 0);
	enum rf_dtype dt = rf_lua_opt_dtype(L, 3, RF_F32);
	luaL_argcheck(L, !rf_lua_dtype_is_int(dt), 3, "random values need a floating dtype");
	int64_t n = rf_shape_numel(&s);
	union value *v = push_values(L, n);
	for (int64_t i = 0; i < n; i++) {
		if (!normal) {
			v[i].f = (double)(splitmix64((uint64_t)seed, (uint64_t)i) >> 40) * 0x1p-24;
			continue;
		}
		uint64_t j = (uint64_t)i & ~UINT64_C(1);
		double u1 = (double)((splitmix64((uint64_t)seed, j) >> 11) + 1) * 0x1p-53;
		double u2 = (double)(splitmix64((uint64_t)seed, j + 1) >> 11) * 0x1p-53;
		double r = sqrt(-2.0 * log(u1)), a = 2.0 * PI * u2;
		v[i].f = (i & 1) ? r * sin(a) : r * cos(a);
	}
	push_from_values(L, dt, &s, v);
	return 1;
}

/* refract.rand(shape [, seed=0 [, dtype]]) and refract.randn(shape [, seed=0 [, dtype]]) */
static int l_rand(lua_State *L)
{
	return random_tensor(L, false);
}

static int l_randn(lua_State *L)
{
	return random_tensor(L, true);
}

/* }===== */

/* {===== cat and stack */

/* The tensors of the list at `arg`, pushed in order (converted to where `dt` lives when
** they are elsewhere); checks dtypes against the first. Returns the count. */
static int push_list(lua_State *L, int arg, const char *what, enum rf_dtype *dt)
{
	luaL_checktype(L, arg, LUA_TTABLE);
	/* Raw (no metamethods: l_util.h); every tensor is pushed, so the stack must hold them
	** all: pushing past what luaL_checkstack granted writes past the stack. */
	lua_Integer n = (lua_Integer)RF_MIN(lua_rawlen(L, arg), (lua_Unsigned)INT32_MAX);
	if (n < 1)
		luaL_argerror(L, arg, "the list of tensors is empty");
	if (n > 100000)
		luaL_argerror(L, arg, lua_pushfstring(L, "%I tensors: at most 100000", n));
	luaL_checkstack(L, (int)n + 8, "too many tensors");
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, arg, i);
		rf_ltensor *h = luaL_testudata(L, -1, RF_TENSOR_MT);
		if (!h || !h->t)
			luaL_error(L, "%s: element %I of the list is %s", what, i,
				   h ? "a freed tensor" : lua_pushfstring(L, "not a refract.Tensor (a %s)",
									  luaL_typename(L, -1)));
		if (i == 1)
			*dt = h->t->dtype;
		if (h->t->dtype != *dt)
			luaL_error(L, "%s: tensor %I is %s but tensor 1 is %s", what, i,
				   rf_lua_dtype_str(h->t->dtype), rf_lua_dtype_str(*dt));
		bool device = rf_lua_dtype_on_device(*dt);
		if (rf_tensor_on_device(h->t) != device) {
			rf_lua_convert(L, h->t, *dt, device);
			lua_remove(L, -2);
		}
	}
	return (int)n;
}

/* Copies the tensor at `idx` into `out` at element offset `offset` with out's strides
** (over the input's shape, with `skip` an axis of out the input lacks, or -1). */
static void copy_into(lua_State *L, int idx, rf_tensor *out, int64_t offset, int skip,
		      const char *what)
{
	const rf_tensor *x = rf_lua_check_tensor(L, idx);
	struct rf_view sv = rf_view_contiguous(x), ov = rf_view_contiguous(out);
	struct rf_view dv = { .ndim = x->shape.ndim, .offset = offset };
	for (int d = 0, o = 0; d < x->shape.ndim; d++, o++) {
		if (o == skip)
			o++;
		dv.shape[d] = x->shape.dim[d];
		dv.stride[d] = ov.stride[o];
	}
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_view_copy(out->ctx, x, &sv, out, &dv));
	if (st != RF_OK)
		rf_lua_fail(L, st, what);
}

/* refract.cat(list [, dim=1]): joins tensors along an existing dimension. */
static int l_cat(lua_State *L)
{
	enum rf_dtype dt;
	lua_settop(L, 2);
	int base = 3;
	int n = push_list(L, 1, "cat", &dt);
	const rf_tensor *first = rf_lua_check_tensor(L, base);
	if (first->shape.ndim == 0)
		return luaL_error(L, "cat: tensors must have at least one dimension (use stack)");
	int axis = rf_lua_opt_dim(L, 2, first->shape.ndim, 1);
	struct rf_shape s = first->shape;
	s.dim[axis] = 0;
	for (int i = 0; i < n; i++) {
		const rf_tensor *x = rf_lua_check_tensor(L, base + i);
		bool same = x->shape.ndim == s.ndim;
		for (int d = 0; same && d < s.ndim; d++)
			same = d == axis || x->shape.dim[d] == s.dim[d];
		if (!same) {
			char a[160], b[160];
			return luaL_error(L, "cat: tensor %d has shape %s but tensor 1 has %s (they must "
					  "match except in dimension %d)", i + 1,
					  rf_shape_str(&x->shape, a, sizeof a),
					  rf_shape_str(&first->shape, b, sizeof b), axis + 1);
		}
		if (x->shape.dim[axis] > INT64_MAX - s.dim[axis])
			return luaL_error(L, "cat: the joined dimension %d overflows", axis + 1);
		s.dim[axis] += x->shape.dim[axis];
	}
	rf_tensor *out = rf_lua_new_tensor(L, dt, &s, rf_lua_dtype_on_device(dt));
	struct rf_view ov = rf_view_contiguous(out);
	int64_t at = 0;
	for (int i = 0; i < n; i++) {
		copy_into(L, base + i, out, at * ov.stride[axis], -1, "cat");
		at += rf_lua_check_tensor(L, base + i)->shape.dim[axis];
	}
	return 1;
}

/* refract.stack(list [, dim=1]): joins tensors of one shape along a new dimension. */
static int l_stack(lua_State *L)
{
	enum rf_dtype dt;
	lua_settop(L, 2);
	int base = 3;
	int n = push_list(L, 1, "stack", &dt);
	const rf_tensor *first = rf_lua_check_tensor(L, base);
	int axis = rf_lua_opt_dim(L, 2, first->shape.ndim + 1, 1);
	for (int i = 1; i < n; i++) {
		const rf_tensor *x = rf_lua_check_tensor(L, base + i);
		if (!rf_shape_equal(&x->shape, &first->shape)) {
			char a[160], b[160];
			return luaL_error(L, "stack: tensor %d has shape %s but tensor 1 has %s", i + 1,
					  rf_shape_str(&x->shape, a, sizeof a),
					  rf_shape_str(&first->shape, b, sizeof b));
		}
	}
	luaL_argcheck(L, first->shape.ndim < RF_MAX_DIMS, 1, "too many dimensions (at most 8)");
	struct rf_shape s = { .ndim = first->shape.ndim + 1 };
	for (int d = 0, i = 0; d < s.ndim; d++)
		s.dim[d] = d == axis ? n : first->shape.dim[i++];
	rf_tensor *out = rf_lua_new_tensor(L, dt, &s, rf_lua_dtype_on_device(dt));
	struct rf_view ov = rf_view_contiguous(out);
	for (int i = 0; i < n; i++)
		copy_into(L, base + i, out, i * ov.stride[axis], axis, "stack");
	return 1;
}

/* }===== */

const luaL_Reg rf_lua_tensor_create_functions[] = {
	{ "tensor", l_tensor }, { "zeros", l_zeros }, { "ones", l_ones }, { "full", l_full },
	{ "arange", l_arange }, { "eye", l_eye }, { "rand", l_rand }, { "randn", l_randn },
	{ "cat", l_cat }, { "stack", l_stack },
	{ NULL, NULL },
};
