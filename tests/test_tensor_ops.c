/*
** test_tensor_ops.c: the kernels of tensor_ops.h (unary maps, affine, fill, where,
** reductions, strided copies, row gathers, patch extraction) against double-precision
** CPU references on fixed-seed inputs, with odd sizes, plus misuse cases.
*/
#include "harness.h"
#include "context.h"
#include "tensor.h"
#include "tensor_ops.h"
#include "nn.h"
#include "ref/ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct rf_shape shape1(int64_t n)
{
	return rf_shape_of(1, n);
}

/* {===== unary maps */

struct unary_case {
	enum rf_unary_op op;
	const char *name;
	double lo, hi;           /* input range */
	double atol, rtol;
};

static void test_unary(rf_ctx *ctx)
{
	static const struct unary_case cases[] = {
		{ RF_UN_NEG, "neg", -10, 10, 0, 0 },
		{ RF_UN_ABS, "abs", -10, 10, 0, 0 },
		{ RF_UN_EXP, "exp", -87, 88, 0, 3e-7 },
		{ RF_UN_LOG, "log", 1e-3, 1e3, 0, 3e-7 },
		{ RF_UN_SQRT, "sqrt", 0, 100, 0, 1.2e-7 },
		{ RF_UN_RSQRT, "rsqrt", 1e-3, 100, 0, 3e-7 },
		{ RF_UN_TANH, "tanh", -12, 12, 0, 4e-7 },
		{ RF_UN_SIGMOID, "sigmoid", -80, 80, 0, 4e-7 },
		{ RF_UN_RELU, "relu", -10, 10, 0, 0 },
		{ RF_UN_SQUARE, "square", -100, 100, 0, 1.2e-7 },
		{ RF_UN_SIN, "sin", -10, 10, 2e-7, 0 },
		{ RF_UN_COS, "cos", -10, 10, 2e-7, 0 },
		{ RF_UN_FLOOR, "floor", -10, 10, 0, 0 },
		{ RF_UN_CEIL, "ceil", -10, 10, 0, 0 },
		{ RF_UN_ROUND, "round", -10, 10, 0, 0 },
		{ RF_UN_SIGN, "sign", -2, 2, 0, 0 },
		{ RF_UN_RECIPROCAL, "reciprocal", 0.01, 100, 0, 1.2e-7 },
		{ RF_UN_NOT, "not", -2, 2, 0, 0 },
	};
	enum { N = 100003 };
	float *x = malloc(N * sizeof *x);
	double *ref = malloc(N * sizeof *ref);
	struct rf_shape s = shape1(N);
	rf_tensor *tx = rf_test_tensor(ctx, &s, NULL), *ty = rf_test_tensor(ctx, &s, NULL);
	for (size_t c = 0; c < RF_ARRAY_LEN(cases); c++) {
		rf_rand_seed(100 + c);
		rf_rand_fill(x, N, cases[c].lo, cases[c].hi);
		/* Exact halves, zeros and integers exercise round/sign/not/floor. */
		for (int i = 0; i < 64; i++)
			x[i * 97] = (float)(i / 2) * (i % 2 ? 0.5f : -1.0f);
		if (cases[c].lo >= 0)
			for (int i = 0; i < 64; i++)
				x[i * 97] = (float)cases[c].lo + (float)i;
		for (int i = 0; i < N; i++)
			ref[i] = ref_unary(cases[c].op, x[i]);
		CHECK_OK(rf_tensor_upload(tx, x, N * sizeof *x));
		CHECK_OK(rf_op_unary(ctx, cases[c].op, tx, ty));
		float *y = rf_test_download(ty);
		char label[64];
		snprintf(label, sizeof label, "unary %s", cases[c].name);
		rf_compare(label, y, ref, N, cases[c].atol, cases[c].rtol);
		free(y);
	}
	/* In place, and a single element. */
	rf_rand_seed(7);
	rf_rand_fill(x, N, -3, 3);
	for (int i = 0; i < N; i++)
		ref[i] = ref_unary(RF_UN_EXP, x[i]);
	CHECK_OK(rf_tensor_upload(tx, x, N * sizeof *x));
	CHECK_OK(rf_op_unary(ctx, RF_UN_EXP, tx, tx));
	float *y = rf_test_download(tx);
	rf_compare("unary exp in place", y, ref, N, 0, 3e-7);
	free(y);
	struct rf_shape one = shape1(1);
	rf_tensor *t1 = rf_test_tensor(ctx, &one, (const float[]){ -2.5f });
	CHECK_OK(rf_op_unary(ctx, RF_UN_ABS, t1, t1));
	y = rf_test_download(t1);
	CHECK(y[0] == 2.5f);
	free(y);
	rf_tensor_destroy(t1);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	free(x);
	free(ref);
}

static void test_activation(rf_ctx *ctx)
{
	enum { N = 200003 };
	float *x = malloc(N * sizeof *x);
	double *ref = malloc(N * sizeof *ref);
	rf_rand_seed(11);
	rf_rand_fill(x, N, -16, 16);
	for (int i = 0; i < 4096; i++)    /* dense near zero, where erf is steepest */
		x[i] = (float)((i - 2048) / 512.0);
	struct rf_shape s = shape1(N);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &s, NULL);
	static const struct { enum rf_activation act; const char *name; } acts[] = {
		{ RF_ACT_GELU, "activation gelu (erf)" }, { RF_ACT_QUICKGELU, "activation quickgelu" },
		{ RF_ACT_NONE, "activation none" },
	};
	for (size_t a = 0; a < RF_ARRAY_LEN(acts); a++) {
		for (int i = 0; i < N; i++)
			ref[i] = ref_activation(acts[a].act, x[i]);
		CHECK_OK(rf_op_activation(ctx, acts[a].act, tx, ty));
		float *y = rf_test_download(ty);
		/* Relative everywhere, including GELU's tiny negative tail. */
		rf_compare(acts[a].name, y, ref, N, 1e-37, 5e-7);
		free(y);
	}
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	free(x);
	free(ref);
}

static void test_affine_fill(rf_ctx *ctx)
{
	enum { N = 4099 };
	float x[N];
	double ref[N];
	rf_rand_seed(12);
	rf_rand_fill(x, N, -5, 5);
	struct rf_shape s = rf_shape_of(2, (int64_t)1, (int64_t)N);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &s, NULL);
	CHECK_OK(rf_op_affine(ctx, tx, 2.5f, -1.0f, -4.0f, 3.0f, ty));
	for (int i = 0; i < N; i++)
		ref[i] = fmin(fmax((double)(2.5f * x[i] + -1.0f), -4.0), 3.0);
	float *y = rf_test_download(ty);
	rf_compare("affine + clamp", y, ref, N, 0, 1e-7);
	free(y);
	CHECK_OK(rf_op_affine(ctx, tx, -1.0f, 0.5f, -INFINITY, INFINITY, tx));
	for (int i = 0; i < N; i++)
		ref[i] = 0.5 - x[i];
	y = rf_test_download(tx);
	rf_compare("affine in place, no clamp", y, ref, N, 0, 1e-7);
	free(y);
	CHECK_OK(rf_op_fill(ctx, ty, -3.25f));
	for (int i = 0; i < N; i++)
		ref[i] = -3.25;
	y = rf_test_download(ty);
	rf_compare("fill", y, ref, N, 0, 0);
	free(y);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
}

static void test_unary_misuse(rf_ctx *ctx)
{
	struct rf_shape a = shape1(10), b = shape1(11);
	rf_tensor *ta = rf_test_tensor(ctx, &a, NULL), *tb = rf_test_tensor(ctx, &b, NULL), *ti;
	CHECK_OK(rf_tensor_create(ctx, RF_I32, &a, &ti));
	CHECK_FAILS(rf_op_unary(ctx, RF_UN_EXP, ta, tb), RF_ERR_INVALID, "must have x's shape");
	CHECK_FAILS(rf_op_unary(ctx, RF_UN_EXP, ti, ta), RF_ERR_INVALID, "x must be F32, not I32");
	CHECK_FAILS(rf_op_unary(ctx, (enum rf_unary_op)99, ta, ta), RF_ERR_INVALID, "unknown op");
	CHECK_FAILS(rf_op_affine(ctx, ta, 1, 0, 2, 1, ta), RF_ERR_INVALID, "not an interval");
	CHECK_FAILS(rf_op_activation(ctx, RF_ACT_GELU, ta, NULL), RF_ERR_INVALID, "y is missing");
	CHECK_FAILS(rf_op_fill(ctx, ti, 0.5f), RF_ERR_INVALID, "not an i32 value");
	CHECK_OK(rf_op_fill(ctx, ti, -7.0f));
	int32_t got[10];
	CHECK_OK(rf_tensor_download(ti, got, sizeof got));
	CHECK(got[0] == -7 && got[9] == -7);
	rf_tensor_destroy(ta);
	rf_tensor_destroy(tb);
	rf_tensor_destroy(ti);
}

/* }===== */

/* {===== reductions */

static const char *const reduce_names[] = { "sum", "mean", "max", "min", "var", "std",
					     "argmax", "argmin", "prod", "norm2" };

/* Reduces x (shape, mask) on the device and compares with the reference. */
static void check_reduce(rf_ctx *ctx, enum rf_reduce_op op, const float *x,
			 const struct rf_shape *shape, uint32_t mask, int correction, double atol,
			 double rtol)
{
	struct rf_shape ys = *shape;
	for (int d = 0; d < ys.ndim; d++)
		if (mask >> d & 1)
			ys.dim[d] = 1;
	size_t ny = (size_t)rf_shape_numel(&ys);
	double *ref = malloc((ny ? ny : 1) * sizeof *ref);
	ref_reduce(op, x, shape, mask, correction, ref);
	rf_tensor *tx = rf_test_tensor(ctx, shape, x), *ty = rf_test_tensor(ctx, &ys, NULL);
	CHECK_OK(rf_op_reduce(ctx, op, tx, mask, correction, ty));
	float *y = rf_test_download(ty);
	char label[96], dims[64];
	snprintf(label, sizeof label, "reduce %s %s mask 0x%x%s", reduce_names[op],
		 rf_shape_str(shape, dims, sizeof dims), mask, correction ? " corr 1" : "");
	rf_compare(label, y, ref, ny, atol, rtol);
	free(y);
	free(ref);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
}

static void test_reduce_long_sum(rf_ctx *ctx)
{
	/* 10^6 (and 3 * 10^6 + 1) elements: compensated partial sums keep f32 rounding. */
	enum { N = 3000001 };
	float *x = malloc(N * sizeof *x);
	rf_rand_seed(21);
	rf_rand_fill(x, N, 0, 1);
	struct rf_shape s = shape1(1000000), s3 = shape1(N);
	check_reduce(ctx, RF_RED_SUM, x, &s, 1, 0, 0, 1e-7);
	check_reduce(ctx, RF_RED_MEAN, x, &s3, 1, 0, 0, 1e-7);
	check_reduce(ctx, RF_RED_NORM2, x, &s3, 1, 0, 0, 1e-7);
	check_reduce(ctx, RF_RED_VAR, x, &s, 1, 1, 0, 1e-6);
	/* Offset data: variance by the two-pass method, not E[x^2] - E[x]^2. */
	for (int i = 0; i < 1000000; i++)
		x[i] += 100.0f;
	check_reduce(ctx, RF_RED_STD, x, &s, 1, 0, 0, 1e-5);
	free(x);
}

static void test_reduce_axes(rf_ctx *ctx)
{
	struct rf_shape a = rf_shape_of(4, (int64_t)5, (int64_t)7, (int64_t)11, (int64_t)13);
	struct rf_shape b = rf_shape_of(2, (int64_t)197, (int64_t)768);
	struct rf_shape c = rf_shape_of(3, (int64_t)3, (int64_t)1, (int64_t)4);
	struct rf_shape d = rf_shape_of(6, (int64_t)2, (int64_t)3, (int64_t)2, (int64_t)5,
					(int64_t)1, (int64_t)3);
	size_t n = 197 * 768;
	float *x = malloc(n * sizeof *x);
	rf_rand_seed(22);
	rf_rand_fill(x, n, -1, 1);
	static const uint32_t masks_a[] = { 0x5, 0xa, 0x6, 0xf, 0x1, 0x8, 0x0 };
	for (size_t m = 0; m < RF_ARRAY_LEN(masks_a); m++) {
		check_reduce(ctx, RF_RED_SUM, x, &a, masks_a[m], 0, 1e-6, 1e-6);
		check_reduce(ctx, RF_RED_MAX, x, &a, masks_a[m], 0, 0, 0);
		check_reduce(ctx, RF_RED_STD, x, &a, masks_a[m], 1, 1e-6, 1e-6);
	}
	for (int op = RF_RED_SUM; op <= RF_RED_NORM2; op++) {
		if (op == RF_RED_PROD)
			continue;
		check_reduce(ctx, (enum rf_reduce_op)op, x, &b, 0x2, op == RF_RED_VAR, 1e-6, 1e-6);
		check_reduce(ctx, (enum rf_reduce_op)op, x, &b, 0x1, 0, 1e-6, 1e-6);
	}
	check_reduce(ctx, RF_RED_ARGMIN, x, &a, 0x4, 0, 0, 0);
	check_reduce(ctx, RF_RED_MEAN, x, &c, 0x2, 0, 1e-7, 1e-7);
	check_reduce(ctx, RF_RED_MEAN, x, &c, 0x5, 0, 1e-7, 1e-7);
	check_reduce(ctx, RF_RED_SUM, x, &d, 0x2b, 0, 1e-6, 1e-6);
	check_reduce(ctx, RF_RED_MIN, x, &d, 0x15, 0, 0, 0);
	/* Products of values near 1 stay finite over 768 terms. */
	for (size_t i = 0; i < n; i++)
		x[i] = 1.0f + x[i] * 0.01f;
	check_reduce(ctx, RF_RED_PROD, x, &b, 0x2, 0, 0, 2e-7);
	check_reduce(ctx, RF_RED_PROD, x, &a, 0x5, 0, 0, 2e-7);
	/* Ties: the first index wins; max/min over a constant row. */
	for (size_t i = 0; i < n; i++)
		x[i] = (float)((i * 7) % 5);
	check_reduce(ctx, RF_RED_ARGMAX, x, &b, 0x2, 0, 0, 0);
	check_reduce(ctx, RF_RED_ARGMAX, x, &b, 0x1, 0, 0, 0);
	check_reduce(ctx, RF_RED_ARGMIN, x, &b, 0x1, 0, 0, 0);
	free(x);
}

static void test_reduce_special(rf_ctx *ctx)
{
	/* NaN wins max and argmax (its first index), as in NumPy. */
	float x[10] = { 1, 5, 2, NAN, 7, NAN, 0, 9, 3, 4 };
	struct rf_shape s = shape1(10), one = shape1(1);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &one, NULL);
	float y;
	CHECK_OK(rf_op_reduce(ctx, RF_RED_MAX, tx, 1, 0, ty));
	CHECK_OK(rf_tensor_download(ty, &y, 4));
	CHECK(isnan(y));
	CHECK_OK(rf_op_reduce(ctx, RF_RED_ARGMAX, tx, 1, 0, ty));
	CHECK_OK(rf_tensor_download(ty, &y, 4));
	CHECK(y == 3.0f);
	CHECK_OK(rf_op_reduce(ctx, RF_RED_ARGMIN, tx, 1, 0, ty));
	CHECK_OK(rf_tensor_download(ty, &y, 4));
	CHECK(y == 3.0f);
	/* Variance of one element with correction 1 is NaN; empty sums are 0. */
	struct rf_shape s1 = rf_shape_of(2, (int64_t)1, (int64_t)1), s0 = rf_shape_of(2, (int64_t)1, (int64_t)0);
	rf_tensor *t1 = rf_test_tensor(ctx, &s1, x), *t0 = rf_test_tensor(ctx, &s0, NULL);
	CHECK_OK(rf_op_reduce(ctx, RF_RED_VAR, t1, 3, 1, ty));
	CHECK_OK(rf_tensor_download(ty, &y, 4));
	CHECK(isnan(y));
	CHECK_OK(rf_op_reduce(ctx, RF_RED_SUM, t0, 2, 0, ty));
	CHECK_OK(rf_tensor_download(ty, &y, 4));
	CHECK(y == 0.0f);
	CHECK_OK(rf_op_reduce(ctx, RF_RED_PROD, t0, 2, 0, ty));
	CHECK_OK(rf_tensor_download(ty, &y, 4));
	CHECK(y == 1.0f);
	/* Misuse. */
	struct rf_shape two = shape1(2);
	rf_tensor *t2 = rf_test_tensor(ctx, &two, NULL), *ti;
	CHECK_OK(rf_tensor_create(ctx, RF_I32, &s, &ti));
	CHECK_FAILS(rf_op_reduce(ctx, RF_RED_MAX, t0, 2, 0, ty), RF_ERR_INVALID, "empty axis");
	CHECK_FAILS(rf_op_reduce(ctx, RF_RED_SUM, tx, 1, 0, t2), RF_ERR_INVALID, "has 2 elements, expected 1");
	CHECK_FAILS(rf_op_reduce(ctx, RF_RED_SUM, tx, 2, 0, ty), RF_ERR_INVALID, "names axes past");
	CHECK_FAILS(rf_op_reduce(ctx, RF_RED_ARGMAX, t1, 3, 0, ty), RF_ERR_INVALID, "exactly one axis");
	CHECK_FAILS(rf_op_reduce(ctx, RF_RED_VAR, tx, 1, -1, ty), RF_ERR_INVALID, "negative");
	CHECK_FAILS(rf_op_reduce(ctx, RF_RED_SUM, ti, 1, 0, ty), RF_ERR_INVALID, "x must be F32");
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	rf_tensor_destroy(t1);
	rf_tensor_destroy(t0);
	rf_tensor_destroy(t2);
	rf_tensor_destroy(ti);
}

/* }===== */

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	test_unary(ctx);
	test_activation(ctx);
	test_affine_fill(ctx);
	test_unary_misuse(ctx);
	test_reduce_long_sum(ctx);
	test_reduce_axes(ctx);
	test_reduce_special(ctx);
	return rf_test_finish();
}
