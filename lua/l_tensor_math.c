/*
** l_tensor_math.c: elementwise math on the device: the operators + - * / ^ and unary
** minus, their method forms, maximum/minimum, comparisons (f32 0/1 masks), the unary
** functions, clamp, softmax along any dimension, LayerNorm and refract.where. Operands
** are converted to f32 device tensors first (numbers broadcast as 0-d tensors; integer
** and host tensors are uploaded); results are f32 device tensors. Lua layer (L6).
*/
#include "ltensor.h"
#include "elementwise.h"
#include "nn.h"
#include "tensor_ops.h"

#include <math.h>

/* {===== binary */

static int binary(lua_State *L, enum rf_binary_op op, const char *what)
{
	lua_settop(L, 2);
	rf_tensor *a = rf_lua_f32_arg(L, 1), *b = rf_lua_f32_arg(L, 2);
	struct rf_shape s;
	rf_lua_broadcast(L, &a->shape, &b->shape, &s, what);
	rf_tensor *out = rf_lua_new_device_tensor(L, RF_F32, &s);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_binary(a->ctx, op, a, b, out));
	if (st != RF_OK)
		return rf_lua_fail(L, st, what);
	return 1;
}

#define BINARY(name, op) \
	static int t_##name(lua_State *L) { return binary(L, op, #name); }
BINARY(add, RF_BIN_ADD)
BINARY(sub, RF_BIN_SUB)
BINARY(mul, RF_BIN_MUL)
BINARY(div, RF_BIN_DIV)
BINARY(pow, RF_BIN_POW)
BINARY(maximum, RF_BIN_MAX)
BINARY(minimum, RF_BIN_MIN)
BINARY(eq, RF_BIN_EQ)
BINARY(ne, RF_BIN_NE)
BINARY(lt, RF_BIN_LT)
BINARY(le, RF_BIN_LE)
BINARY(gt, RF_BIN_GT)
BINARY(ge, RF_BIN_GE)

/* }===== */

/* {===== unary */

static int unary(lua_State *L, enum rf_unary_op op, const char *what)
{
	lua_settop(L, 1);
	rf_lua_check_tensor(L, 1);
	rf_tensor *x = rf_lua_f32_arg(L, 1);
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_unary(x->ctx, op, x, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, what);
	return 1;
}

#define UNARY(name, op) \
	static int t_##name(lua_State *L) { return unary(L, op, #name); }
UNARY(neg, RF_UN_NEG)
UNARY(abs, RF_UN_ABS)
UNARY(exp, RF_UN_EXP)
UNARY(log, RF_UN_LOG)
UNARY(sqrt, RF_UN_SQRT)
UNARY(rsqrt, RF_UN_RSQRT)
UNARY(tanh, RF_UN_TANH)
UNARY(sigmoid, RF_UN_SIGMOID)
UNARY(relu, RF_UN_RELU)
UNARY(square, RF_UN_SQUARE)
UNARY(sin, RF_UN_SIN)
UNARY(cos, RF_UN_COS)
UNARY(floor, RF_UN_FLOOR)
UNARY(ceil, RF_UN_CEIL)
UNARY(round, RF_UN_ROUND)
UNARY(sign, RF_UN_SIGN)
UNARY(reciprocal, RF_UN_RECIPROCAL)
UNARY(logical_not, RF_UN_NOT)

static int activation(lua_State *L, enum rf_activation act, const char *what)
{
	lua_settop(L, 1);
	rf_lua_check_tensor(L, 1);
	rf_tensor *x = rf_lua_f32_arg(L, 1);
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_activation(x->ctx, act, x, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, what);
	return 1;
}

static int t_gelu(lua_State *L) { return activation(L, RF_ACT_GELU, "gelu"); }
static int t_quick_gelu(lua_State *L) { return activation(L, RF_ACT_QUICKGELU, "quick_gelu"); }

/* __unm: Lua passes the operand twice. */
static int t_unm(lua_State *L)
{
	return unary(L, RF_UN_NEG, "neg");
}

/* t:clamp(lo, hi): either bound may be nil (no bound). */
static int t_clamp(lua_State *L)
{
	rf_lua_check_tensor(L, 1);
	double lo = luaL_optnumber(L, 2, -INFINITY), hi = luaL_optnumber(L, 3, INFINITY);
	luaL_argcheck(L, !isnan(lo), 2, "bound must not be NaN");
	luaL_argcheck(L, !isnan(hi), 3, "bound must not be NaN");
	if (lo > hi)
		return luaL_error(L, "clamp: lower bound %f is above upper bound %f", lo, hi);
	lua_settop(L, 1);
	rf_tensor *x = rf_lua_f32_arg(L, 1);
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_affine(x->ctx, x, 1.0f, 0.0f, (float)lo, (float)hi, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "clamp");
	return 1;
}

/* }===== */

/* {===== rows: softmax and LayerNorm */

/* t:softmax([dim=-1 [, scale=1]]) -> softmax(scale * t) along dim. The last dimension
** runs in one pass; any other is moved last, and back, by two permuting copies. */
static int t_softmax(lua_State *L)
{
	enum rf_status st;
	rf_tensor *x = rf_lua_check_tensor(L, 1);
	int axis = rf_lua_opt_dim(L, 2, x->shape.ndim, -1);
	double scale = luaL_optnumber(L, 3, 1.0);
	luaL_argcheck(L, isfinite(scale), 3, "scale must be finite");
	lua_settop(L, 1);
	x = rf_lua_f32_arg(L, 1);
	int nd = x->shape.ndim;
	if (axis == nd - 1) {
		rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
		RF_LUA_RETRY_OOM(L, st, rf_op_softmax(x->ctx, x, (float)scale, false, y));
		if (st != RF_OK)
			return rf_lua_fail(L, st, "softmax");
		return 1;
	}
	int perm[RF_MAX_DIMS], back[RF_MAX_DIMS];
	for (int d = 0, k = 0; d < nd; d++)
		if (d != axis)
			perm[k++] = d;
	perm[nd - 1] = axis;
	for (int d = 0; d < nd; d++)
		back[perm[d]] = d;
	rf_tensor *xp = rf_lua_permuted(L, x, perm);                       /* 2 */
	rf_tensor *yp = rf_lua_new_device_tensor(L, RF_F32, &xp->shape);   /* 3 */
	RF_LUA_RETRY_OOM(L, st, rf_op_softmax(x->ctx, xp, (float)scale, false, yp));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "softmax");
	rf_lua_permuted(L, yp, back);
	return 1;
}

/* An optional per-column parameter: nil, or a tensor of `cols` elements. */
static rf_tensor *opt_param(lua_State *L, int arg, int64_t cols, const rf_tensor *x)
{
	if (lua_isnoneornil(L, arg))
		return NULL;
	rf_lua_check_tensor(L, arg);
	rf_tensor *p = rf_lua_f32_arg(L, arg);
	if (rf_tensor_numel(p) != cols) {
		char a[160], b[160];
		luaL_error(L, "layernorm: %s has shape %s but the tensor has shape %s (it needs %I "
			   "elements, one per entry of the last dimension)", arg == 2 ? "gamma" : "beta",
			   rf_shape_str(&p->shape, a, sizeof a), rf_shape_str(&x->shape, b, sizeof b),
			   (lua_Integer)cols);
	}
	return p;
}

/* t:layernorm([gamma [, beta [, eps=1e-5]]]) over the last dimension. */
static int t_layernorm(lua_State *L)
{
	rf_lua_check_tensor(L, 1);
	double eps = luaL_optnumber(L, 4, 1e-5);
	luaL_argcheck(L, isfinite(eps) && eps >= 0, 4, "eps must be finite and non-negative");
	lua_settop(L, 3);
	rf_tensor *x = rf_lua_f32_arg(L, 1);
	if (x->shape.ndim == 0 || x->shape.dim[x->shape.ndim - 1] == 0)
		return luaL_error(L, "layernorm: the tensor needs a non-empty last dimension");
	int64_t cols = x->shape.dim[x->shape.ndim - 1];
	rf_tensor *gamma = opt_param(L, 2, cols, x), *beta = opt_param(L, 3, cols, x);
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &x->shape);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_layernorm(x->ctx, x, gamma, beta, (float)eps, y, NULL, NULL));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "layernorm");
	return 1;
}

/* }===== */

/* refract.where(cond, a, b) -> a where cond is nonzero, else b (broadcast; a and b may
** be numbers). */
static int l_where(lua_State *L)
{
	lua_settop(L, 3);
	rf_lua_check_tensor(L, 1);
	rf_tensor *c = rf_lua_f32_arg(L, 1), *a = rf_lua_f32_arg(L, 2), *b = rf_lua_f32_arg(L, 3);
	struct rf_shape ab, s;
	rf_lua_broadcast(L, &a->shape, &b->shape, &ab, "where");
	rf_lua_broadcast(L, &c->shape, &ab, &s, "where");
	rf_tensor *y = rf_lua_new_device_tensor(L, RF_F32, &s);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_op_where(c->ctx, c, a, b, y));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "where");
	return 1;
}

const luaL_Reg rf_lua_tensor_math_meta[] = {
	{ "__add", t_add }, { "__sub", t_sub }, { "__mul", t_mul }, { "__div", t_div },
	{ "__pow", t_pow }, { "__unm", t_unm },
	{ NULL, NULL },
};

const luaL_Reg rf_lua_tensor_math_methods[] = {
	{ "add", t_add }, { "sub", t_sub }, { "mul", t_mul }, { "div", t_div }, { "pow", t_pow },
	{ "maximum", t_maximum }, { "minimum", t_minimum },
	{ "eq", t_eq }, { "ne", t_ne }, { "lt", t_lt }, { "le", t_le }, { "gt", t_gt }, { "ge", t_ge },
	{ "neg", t_neg }, { "abs", t_abs }, { "exp", t_exp }, { "log", t_log }, { "sqrt", t_sqrt },
	{ "rsqrt", t_rsqrt }, { "tanh", t_tanh }, { "sigmoid", t_sigmoid }, { "relu", t_relu },
	{ "gelu", t_gelu }, { "quick_gelu", t_quick_gelu }, { "square", t_square },
	{ "sin", t_sin }, { "cos", t_cos }, { "floor", t_floor }, { "ceil", t_ceil },
	{ "round", t_round }, { "sign", t_sign }, { "reciprocal", t_reciprocal },
	{ "logical_not", t_logical_not }, { "clamp", t_clamp },
	{ "softmax", t_softmax }, { "layernorm", t_layernorm },
	{ NULL, NULL },
};

const luaL_Reg rf_lua_tensor_math_functions[] = {
	{ "where", l_where },
	{ NULL, NULL },
};
