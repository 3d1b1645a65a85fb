/*
** l_tensor_shape.c: shape changes: reshape/view, permute, transpose, t, squeeze,
** unsqueeze, flatten, expand, clone and contiguous. Every result is a new contiguous
** tensor of the same dtype in the same place (views are copies); only contiguous()
** returns its tensor itself, since every tensor already is contiguous. Lua layer (L6).
*/
#include "ltensor.h"
#include "layout.h"

/* {===== reshape */

static void reshape_error(lua_State *L, const rf_tensor *t, const int64_t *dims, int n,
			  const char *why)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '[');
	for (int i = 0; i < n; i++) {
		lua_pushfstring(L, "%s%I", i ? ", " : "", (lua_Integer)dims[i]);
		luaL_addvalue(&b);
	}
	luaL_addchar(&b, ']');
	luaL_pushresult(&b);
	rf_lua_push_shape_str(L, &t->shape);
	luaL_error(L, "reshape: cannot reshape %s (%I elements) into %s: %s", lua_tostring(L, -1),
		   (lua_Integer)rf_tensor_numel(t), lua_tostring(L, -2), why);
}

/* t:reshape(shape) / t:view(shape): shape a table or varargs; one entry may be -1 (the
** size that makes the element counts agree). */
static int t_reshape(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, lua_istable(L, 2) || lua_type(L, 2) == LUA_TNUMBER, 2,
		      "shape expected (a table of integers)");
	int64_t dims[RF_MAX_DIMS];
	int n = rf_lua_check_int_list(L, 2, dims), infer = -1;
	int64_t known = 1;
	for (int i = 0; i < n; i++) {
		if (dims[i] == -1 && infer < 0) {
			infer = i;
		} else if (dims[i] < 0) {
			reshape_error(L, t, dims, n, dims[i] == -1 ? "only one size may be -1"
								   : "sizes must be non-negative or -1");
		} else {
			if (dims[i] && known > INT64_MAX / dims[i])
				reshape_error(L, t, dims, n, "too many elements");
			known *= dims[i];
		}
	}
	int64_t numel = rf_tensor_numel(t);
	if (infer >= 0) {
		if (known == 0 || numel % known)
			reshape_error(L, t, dims, n, "no size for -1 makes the element counts agree");
		dims[infer] = numel / known;
	} else if (known != numel) {
		reshape_error(L, t, dims, n, "the element counts differ");
	}
	struct rf_shape s = rf_shape_make(n, dims);
	rf_lua_copy_reshaped(L, t, &s);
	return 1;
}

/* t:flatten([start=1 [, stop=-1]]): dimensions start..stop merged into one. */
static int t_flatten(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	if (t->shape.ndim == 0) {
		struct rf_shape one = rf_shape_of(1, (int64_t)1);
		rf_lua_copy_reshaped(L, t, &one);
		return 1;
	}
	int a = rf_lua_opt_dim(L, 2, t->shape.ndim, 1), b = rf_lua_opt_dim(L, 3, t->shape.ndim, -1);
	if (a > b)
		return luaL_error(L, "flatten: start dimension %d comes after stop dimension %d", a + 1,
				  b + 1);
	struct rf_shape s = { 0 };
	for (int d = 0; d < t->shape.ndim; d++) {
		if (d > a && d <= b)
			s.dim[s.ndim - 1] *= t->shape.dim[d];
		else
			s.dim[s.ndim++] = t->shape.dim[d];
	}
	rf_lua_copy_reshaped(L, t, &s);
	return 1;
}

/* t:squeeze([dim]): without dim, every dimension of size 1 removed; with dim, that one
** if its size is 1 (else an unchanged copy). */
static int t_squeeze(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int only = lua_isnoneornil(L, 2) ? -1 : rf_lua_check_dim(L, 2, t->shape.ndim);
	struct rf_shape s = { 0 };
	for (int d = 0; d < t->shape.ndim; d++)
		if (t->shape.dim[d] != 1 || (only >= 0 && d != only))
			s.dim[s.ndim++] = t->shape.dim[d];
	rf_lua_copy_reshaped(L, t, &s);
	return 1;
}

/* t:unsqueeze(dim): a new dimension of size 1 at position dim (1..ndim+1; -1 = last). */
static int t_unsqueeze(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, t->shape.ndim < RF_MAX_DIMS, 1, "too many dimensions (at most 8)");
	int at = rf_lua_check_dim(L, 2, t->shape.ndim + 1);
	struct rf_shape s = { .ndim = t->shape.ndim + 1 };
	for (int d = 0, i = 0; d < s.ndim; d++)
		s.dim[d] = d == at ? 1 : t->shape.dim[i++];
	rf_lua_copy_reshaped(L, t, &s);
	return 1;
}

/* }===== */

/* {===== permutations */

/* t:permute(dims...): the new order of t's dimensions, as varargs or a table. */
static int t_permute(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, lua_istable(L, 2) || lua_type(L, 2) == LUA_TNUMBER || t->shape.ndim == 0, 2,
		      "dimensions expected (numbers or a table)");
	int64_t dims[RF_MAX_DIMS];
	int n = lua_isnoneornil(L, 2) ? 0 : rf_lua_check_int_list(L, 2, dims);
	if (n != t->shape.ndim) {
		rf_lua_push_shape_str(L, &t->shape);
		return luaL_error(L, "permute: %d dimensions given for a %d-d tensor %s", n,
				  t->shape.ndim, lua_tostring(L, -1));
	}
	int perm[RF_MAX_DIMS];
	uint32_t seen = 0;
	for (int i = 0; i < n; i++) {
		perm[i] = rf_lua_dim_index(L, 2, dims[i], n);
		if (seen >> perm[i] & 1)
			return luaL_error(L, "permute: dimension %d appears twice", perm[i] + 1);
		seen |= 1u << perm[i];
	}
	rf_lua_permuted(L, t, perm);
	return 1;
}

/* t:transpose(d1, d2): dimensions d1 and d2 swapped. */
static int t_transpose(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	int a = rf_lua_check_dim(L, 2, t->shape.ndim), b = rf_lua_check_dim(L, 3, t->shape.ndim);
	int perm[RF_MAX_DIMS];
	for (int d = 0; d < t->shape.ndim; d++)
		perm[d] = d == a ? b : d == b ? a : d;
	rf_lua_permuted(L, t, perm);
	return 1;
}

/* t:t(): the transpose of a 2-d tensor (a copy of a 0-d or 1-d one). */
static int t_t(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	if (t->shape.ndim > 2) {
		rf_lua_push_shape_str(L, &t->shape);
		return luaL_error(L, "t: needs a tensor of at most 2 dimensions, got %s (use transpose)",
				  lua_tostring(L, -1));
	}
	if (t->shape.ndim < 2) {
		rf_lua_copy_reshaped(L, t, &t->shape);
		return 1;
	}
	static const int swap[2] = { 1, 0 };
	rf_lua_permuted(L, t, swap);
	return 1;
}

/* }===== */

/* {===== expand, clone, contiguous */

/* t:expand(shape): t broadcast to `shape` (a table or varargs; -1 keeps a size), copied. */
static int t_expand(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	luaL_argcheck(L, lua_istable(L, 2) || lua_type(L, 2) == LUA_TNUMBER, 2,
		      "shape expected (a table of integers)");
	int64_t dims[RF_MAX_DIMS];
	int n = rf_lua_check_int_list(L, 2, dims), lead = n - t->shape.ndim;
	if (lead < 0) {
		rf_lua_push_shape_str(L, &t->shape);
		return luaL_error(L, "expand: %d sizes given for a %d-d tensor %s", n, t->shape.ndim,
				  lua_tostring(L, -1));
	}
	struct rf_view tv = rf_view_contiguous(t), sv = { .ndim = n };
	for (int d = 0; d < n; d++) {
		int k = d - lead;
		int64_t have = k >= 0 ? t->shape.dim[k] : 1;
		if (dims[d] == -1 && k >= 0)
			dims[d] = have;
		if (dims[d] < 0 || (have != 1 && dims[d] != have)) {
			char a[160];
			rf_shape_str(&t->shape, a, sizeof a);
			return luaL_error(L, "expand: cannot expand %s: size %I at dimension %d of the "
					  "target %s", a, (lua_Integer)dims[d], d + 1,
					  dims[d] < 0 ? "is negative" : "differs from a size that is not 1");
		}
		sv.shape[d] = dims[d];
		sv.stride[d] = k >= 0 && have != 1 ? tv.stride[k] : 0;
	}
	struct rf_shape s = rf_shape_make(n, dims);
	rf_tensor *out = rf_lua_new_tensor(L, t->dtype, &s, rf_tensor_on_device(t));
	struct rf_view ov = rf_view_contiguous(out);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_view_copy(t->ctx, t, &sv, out, &ov));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "expand");
	return 1;
}

static int t_clone(lua_State *L)
{
	rf_tensor *t = rf_lua_check_tensor(L, 1);
	rf_lua_copy_reshaped(L, t, &t->shape);
	return 1;
}

static int t_contiguous(lua_State *L)
{
	rf_lua_check_tensor(L, 1);
	lua_settop(L, 1);
	return 1;
}

/* }===== */

const luaL_Reg rf_lua_tensor_shape_methods[] = {
	{ "reshape", t_reshape }, { "view", t_reshape }, { "flatten", t_flatten },
	{ "squeeze", t_squeeze }, { "unsqueeze", t_unsqueeze }, { "permute", t_permute },
	{ "transpose", t_transpose }, { "t", t_t }, { "expand", t_expand }, { "clone", t_clone },
	{ "contiguous", t_contiguous },
	{ NULL, NULL },
};
