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

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	test_unary(ctx);
	test_activation(ctx);
	test_affine_fill(ctx);
	test_unary_misuse(ctx);
	return rf_test_finish();
}
