/*
** l_tensor_reduce.c: reductions over any set of dimensions (sum, mean, prod, var, std,
** max, min, norm, all, any), argmax/argmin, topk and normalize. They run on the device
** (rf_op_reduce); topk selects on the host from the downloaded values. A dims argument
** is a number, a table of numbers, or nil for every dimension (a 0-d result). Indices
** come back 1-based as i64 host tensors. Lua layer (L6).
*/
#include "ltensor.h"
#include "elementwise.h"
#include "tensor_ops.h"

#include <math.h>
#include <string.h>

/* {===== reductions */

/* x's shape with the axes in `mask` set to 1 (keepdim) or removed. */
static struct rf_shape reduced_shape(const struct rf_shape *x, uint32_t mask, bool keepdim)
{
	struct rf_shape s = { 0 };
	for (int d = 0; d < x->ndim; d++) {
		if (!(mask >> d & 1))
			s.dim[s.ndim++] = x->dim[d];
		else if (keepdim)
			s.dim[s.ndim++] = 1;
	}
	return s;
}

/* Pushes op(x) over `mask`; x is an f32 device tensor. */
static rf_tensor *push_reduce(lua_State *L, enum rf_reduce_op op, const rf_tensor *x,
			      uint32_t mask, int correction, bool keepdim, const char *what)
{
	struct rf_shape s = reduced_shape(&x->shape, mask, keepdim);
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &s);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_reduce(x->ctx, op, x, mask, correction, y));
	if (st != RF_OK)
		rf_lua_fail(L, st, what);
	return y;
}

/* t:op([dims [, keepdim]]) */
static int reduce(lua_State *L, enum rf_reduce_op op, const char *what)
{
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	uint32_t mask = rf_lua_opt_dims(L, 2, x->shape.ndim);
	bool keepdim = lua_toboolean(L, 3);
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	push_reduce(L, op, x, mask, 0, keepdim, what);
	return 1;
}

#define REDUCE(name, op) \
	static int t_##name(lua_State *L) { return reduce(L, op, #name); }
REDUCE(sum, RF_RED_SUM)
REDUCE(mean, RF_RED_MEAN)
REDUCE(prod, RF_RED_PROD)
REDUCE(max, RF_RED_MAX)
REDUCE(min, RF_RED_MIN)
REDUCE(norm, RF_RED_NORM2)

/* t:var([dims [, correction=1 [, keepdim]]]) and t:std(...). */
static int spread(lua_State *L, enum rf_reduce_op op, const char *what)
{
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	uint32_t mask = rf_lua_opt_dims(L, 2, x->shape.ndim);
	lua_Integer correction = luaL_optinteger(L, 3, 1);
	luaL_argcheck(L, correction >= 0 && correction <= INT32_MAX, 3, "correction must be >= 0");
	bool keepdim = lua_toboolean(L, 4);
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	push_reduce(L, op, x, mask, (int)correction, keepdim, what);
	return 1;
}

static int t_var(lua_State *L) { return spread(L, RF_RED_VAR, "var"); }
static int t_std(lua_State *L) { return spread(L, RF_RED_STD, "std"); }

/* t:argmax([dim [, keepdim]]) -> 1-based i64 host indices (ties: the first; NaN wins).
** Without dim: the flat index over all elements, as a 0-d tensor. */
static int arg_reduce(lua_State *L, enum rf_reduce_op op, const char *what)
{
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	bool flat = lua_isnoneornil(L, 2);
	int axis = flat ? 0 : rf_lua_check_dim(L, 2, x->shape.ndim);
	bool keepdim = lua_toboolean(L, 3);
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	if (rf_tensor_numel(x) == 0)
		return luaL_error(L, "%s: the tensor is empty", what);
	rf_tensor flat_x = *x;            /* a shape alias sharing x's memory */
	if (flat)
		flat_x.shape = rf_shape_of(1, rf_tensor_numel(x));
	rf_tensor *pos = push_reduce(L, op, &flat_x, 1u << axis, 0, flat ? false : keepdim, what);
	const double *v = rf_lua_tensor_values(L, pos);
	rf_tensor *out = rf_lua_new_host_tensor(L, RF_I64, &pos->shape);
	for (int64_t i = 0; i < rf_tensor_numel(out); i++)
		((int64_t *)out->host)[i] = (int64_t)v[i] + 1;
	return 1;
}

static int t_argmax(lua_State *L) { return arg_reduce(L, RF_RED_ARGMAX, "argmax"); }
static int t_argmin(lua_State *L) { return arg_reduce(L, RF_RED_ARGMIN, "argmin"); }

/* t:all([dims [, keepdim]]) / t:any(...): without dims a Lua boolean (true for an empty
** tensor in all, false in any); with dims an f32 0/1 tensor. NaN counts as nonzero. The
** count of zeros (all) or nonzeros (any) is summed, so empty reductions need no care. */
static int truth(lua_State *L, bool all)
{
	const char *what = all ? "all" : "any";
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	bool whole = lua_isnoneornil(L, 2);
	uint32_t mask = rf_lua_opt_dims(L, 2, x->shape.ndim);
	bool keepdim = lua_toboolean(L, 3);
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	lua_pushnumber(L, 0);
	rf_tensor *zero = rf_lua_f32_arg(L, 2);
	rf_tensor *hit = rf_lua_new_device_tensor(L, RF_F32, &x->shape);                /* 3 */
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_binary(x->ctx, all ? RF_BIN_EQ : RF_BIN_NE, x, zero, hit));
	if (st != RF_OK)
		return rf_lua_fail(L, st, what);
	rf_tensor *count = push_reduce(L, RF_RED_SUM, hit, mask, 0, keepdim, what);      /* 4 */
	if (whole) {
		float c;
		RF_LUA_RETRY_OOM(L, st, rf_tensor_download(count, &c, 4));
		if (st != RF_OK)
			return rf_lua_fail(L, st, what);
		lua_pushboolean(L, all ? c == 0 : c > 0);
		return 1;
	}
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &count->shape);
	RF_LUA_RETRY_OOM(L, st, rf_op_binary(x->ctx, all ? RF_BIN_EQ : RF_BIN_GT, count, zero, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, what);
	return 1;
}

static int t_all(lua_State *L) { return truth(L, true); }
static int t_any(lua_State *L) { return truth(L, false); }

/* t:normalize([dim=-1 [, eps=1e-12]]) -> t / max(||t||_2 along dim, eps). */
static int t_normalize(lua_State *L)
{
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_opt_dim(L, 2, x->shape.ndim, -1);
	double eps = luaL_optnumber(L, 3, 1e-12);
	luaL_argcheck(L, isfinite(eps) && eps >= 0, 3, "eps must be finite and non-negative");
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	rf_tensor *n = push_reduce(L, RF_RED_NORM2, x, 1u << axis, 0, true, "normalize");
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_affine(x->ctx, n, 1.0f, 0.0f, (float)eps, INFINITY, n));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "normalize");
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
	RF_LUA_RETRY_OOM(L, st, rf_op_binary(x->ctx, RF_BIN_DIV, x, n, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "normalize");
	return 1;
}

/* }===== */

/* {===== topk */

/* Whether element (va, ia) ranks before (vb, ib): larger (or smaller) first, NaN above
** every number (as in PyTorch), ties by lower index. */
static bool ranks_before(float va, int64_t ia, float vb, int64_t ib, bool largest)
{
	bool na = isnan(va), nb = isnan(vb);
	if (na != nb)
		return largest ? na : nb;
	if (!na && va != vb)
		return largest ? va > vb : va < vb;
	return ia < ib;
}

/* Restores the heap (the element ranking last at the root) below position i. */
static void sift_down(const float *v, int64_t *heap, int64_t n, int64_t i, bool largest)
{
	for (;;) {
		int64_t l = 2 * i + 1, r = l + 1, worst = i;
		if (l < n && ranks_before(v[heap[worst]], heap[worst], v[heap[l]], heap[l], largest))
			worst = l;
		if (r < n && ranks_before(v[heap[worst]], heap[worst], v[heap[r]], heap[r], largest))
			worst = r;
		if (worst == i)
			return;
		int64_t t = heap[i];
		heap[i] = heap[worst];
		heap[worst] = t;
		i = worst;
	}
}

/* The k best of row v[0..n) in rank order into idx[0..k) (heap is k scratch slots). */
static void select_row(const float *v, int64_t n, int64_t k, bool largest, int64_t *heap)
{
	if (k == 0)
		return;
	for (int64_t i = 0; i < k; i++)
		heap[i] = i;
	for (int64_t i = k / 2 - 1; i >= 0; i--)
		sift_down(v, heap, k, i, largest);
	for (int64_t i = k; i < n; i++)
		if (ranks_before(v[i], i, v[heap[0]], heap[0], largest)) {
			heap[0] = i;
			sift_down(v, heap, k, 0, largest);
		}
	/* Pop the worst to the back: the array ends in rank order. */
	for (int64_t end = k - 1; end > 0; end--) {
		int64_t t = heap[0];
		heap[0] = heap[end];
		heap[end] = t;
		sift_down(v, heap, end, 0, largest);
	}
}

/* t:topk(k [, dim=-1 [, largest=true]]) -> values (f32, device), indices (i64, host,
** 1-based), both t's shape with dim of size k, in rank order. */
static int t_topk(lua_State *L)
{
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	lua_Integer k = luaL_checkinteger(L, 2);
	int axis = rf_lua_opt_dim(L, 3, x->shape.ndim, -1);
	bool largest = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
	int64_t size = x->shape.dim[axis];
	if (k < 0 || k > size)
		return luaL_argerror(L, 2, lua_pushfstring(L, "k = %I out of range for dimension %d of "
							   "size %I (expected 0..%I)", k, axis + 1,
							   (lua_Integer)size, (lua_Integer)size));
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	int nd = x->shape.ndim, perm[RF_MAX_DIMS], back[RF_MAX_DIMS];
	for (int d = 0, j = 0; d < nd; d++)
		if (d != axis)
			perm[j++] = d;
	perm[nd - 1] = axis;
	for (int d = 0; d < nd; d++)
		back[perm[d]] = d;
	bool moved = axis != nd - 1;
	const rf_tensor *xp = moved ? rf_lua_permuted(L, x, perm) : x;       /* 2 if moved */
	int64_t rows = size ? rf_tensor_numel(xp) / size : 0;
	float *v = lua_newuserdatauv(L, rf_tensor_nbytes(xp) ? rf_tensor_nbytes(xp) : 1, 0);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_tensor_download(xp, v, rf_tensor_nbytes(xp)));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "topk");
	struct rf_shape s = xp->shape;
	s.dim[nd - 1] = k;
	int64_t *heap = lua_newuserdatauv(L, (size_t)(k ? k : 1) * sizeof *heap, 0);
	float *vals = lua_newuserdatauv(L, (size_t)RF_MAX(rows * k, 1) * sizeof *vals, 0);
	rf_tensor *idx = rf_lua_new_host_tensor(L, RF_I64, &s);
	int idx_idx = lua_gettop(L);
	for (int64_t r = 0; r < rows; r++) {
		const float *row = v + r * size;
		select_row(row, size, k, largest, heap);
		for (int64_t j = 0; j < k; j++) {
			vals[r * k + j] = row[heap[j]];
			((int64_t *)idx->host)[r * k + j] = heap[j] + 1;
		}
	}
	rf_tensor *values = rf_lua_new_device_tensor(L, RF_F32, &s);
	RF_LUA_RETRY_OOM(L, st, rf_tensor_upload(values, vals, rf_tensor_nbytes(values)));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "topk");
	if (!moved) {
		lua_pushvalue(L, idx_idx);
		return 2;
	}
	rf_lua_permuted(L, values, back);
	rf_lua_permuted(L, idx, back);
	return 2;
}

/* }===== */

const luaL_Reg rf_lua_tensor_reduce_methods[] = {
	{ "sum", t_sum }, { "mean", t_mean }, { "prod", t_prod }, { "var", t_var }, { "std", t_std },
	{ "max", t_max }, { "min", t_min }, { "argmax", t_argmax }, { "argmin", t_argmin },
	{ "norm", t_norm }, { "normalize", t_normalize }, { "all", t_all }, { "any", t_any },
	{ "topk", t_topk },
	{ NULL, NULL },
};
