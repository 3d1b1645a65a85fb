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
		/* atol: results below FLT_MIN may be flushed to zero (NVIDIA does). */
		{ RF_UN_EXP, "exp", -87, 88, 1.2e-38, 3e-7 },
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
	struct rf_shape s = rf_shape_make(2, (const int64_t[]){ 1, N });
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &s, NULL);
	CHECK_OK(rf_op_affine(ctx, tx, 2.5f, -1.0f, -4.0f, 3.0f, ty));
	for (int i = 0; i < N; i++)
		ref[i] = fmin(fmax((double)(2.5f * x[i] + -1.0f), -4.0), 3.0);
	float *y = rf_test_download(ty);
	/* atol: one rounding of scale*x before the add (or none, with a fused multiply-add)
	** shows relative to a result that cancels towards 0. */
	rf_compare("affine + clamp", y, ref, N, 3e-7, 1e-7);
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
	struct rf_shape a = rf_shape_make(4, (const int64_t[]){ 5, 7, 11, 13 });
	struct rf_shape b = rf_shape_make(2, (const int64_t[]){ 197, 768 });
	struct rf_shape c = rf_shape_make(3, (const int64_t[]){ 3, 1, 4 });
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
	struct rf_shape s1 = rf_shape_make(2, (const int64_t[]){ 1, 1 });
	struct rf_shape s0 = rf_shape_make(2, (const int64_t[]){ 1, 0 });
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

/* {===== copies, gathers, patches, where */

/* Copies src -> dst through the views on the device and compares, bit for bit, with the
** reference applied to the same starting contents of dst. */
static void check_copy(rf_ctx *ctx, const char *label, enum rf_dtype dt, const struct rf_shape *ss,
		       const struct rf_view *sv, const struct rf_shape *ds, const struct rf_view *dv)
{
	size_t es = rf_dtype_size(dt), ns = (size_t)rf_shape_numel(ss), nd = (size_t)rf_shape_numel(ds);
	uint32_t *src = malloc(ns * 4 + 4), *dst = malloc(nd * 4 + 4), *want = malloc(nd * 4 + 4);
	for (size_t i = 0; i < ns; i++)
		src[i] = (uint32_t)(i * 2654435761u);
	for (size_t i = 0; i < nd; i++)
		dst[i] = want[i] = 0xdeadbeefu;
	rf_tensor *ts, *td;
	CHECK_OK(rf_tensor_create(ctx, dt, ss, &ts));
	CHECK_OK(rf_tensor_create(ctx, dt, ds, &td));
	if (es == 2) {
		/* 16-bit data: the low halves of the same patterns, reference on widened words. */
		uint16_t *h = malloc(RF_MAX(ns, nd) * 2 + 2);
		for (size_t i = 0; i < ns; i++)
			h[i] = (uint16_t)(src[i] &= 0xffff);
		CHECK_OK(rf_tensor_upload(ts, h, ns * 2));
		for (size_t i = 0; i < nd; i++)
			h[i] = (uint16_t)(dst[i] = want[i] = 0xbeef);
		CHECK_OK(rf_tensor_upload(td, h, nd * 2));
		CHECK_OK(rf_op_copy(ctx, ts, sv, td, dv));
		CHECK_OK(rf_tensor_download(td, h, nd * 2));
		for (size_t i = 0; i < nd; i++)
			dst[i] = h[i];
		free(h);
	} else {
		CHECK_OK(rf_tensor_upload(ts, src, ns * 4));
		CHECK_OK(rf_tensor_upload(td, dst, nd * 4));
		CHECK_OK(rf_op_copy(ctx, ts, sv, td, dv));
		CHECK_OK(rf_tensor_download(td, dst, nd * 4));
	}
	ref_copy_view(src, sv, want, dv);
	size_t bad = 0;
	for (size_t i = 0; i < nd; i++)
		bad += dst[i] != want[i];
	printf("%-40s n=%-9zu %s\n", label, nd, bad ? "FAIL" : "exact");
	CHECK(bad == 0);
	rf_tensor_destroy(ts);
	rf_tensor_destroy(td);
	free(src);
	free(dst);
	free(want);
}

static void test_copy(rf_ctx *ctx)
{
	/* Transpose [197, 768] -> [768, 197]. */
	struct rf_shape a = rf_shape_make(2, (const int64_t[]){ 197, 768 });
	struct rf_shape at = rf_shape_make(2, (const int64_t[]){ 768, 197 });
	struct rf_view sv = { 2, { 768, 197 }, 0, { 1, 768 } };
	struct rf_view dv = { 2, { 768, 197 }, 0, { 197, 1 } };
	check_copy(ctx, "copy transpose [197, 768]", RF_F32, &a, &sv, &at, &dv);
	/* Slice x[2:5, 1:4, ::2] of [7, 6, 10] into a contiguous [3, 3, 5]. */
	struct rf_shape b = rf_shape_make(3, (const int64_t[]){ 7, 6, 10 });
	struct rf_shape bs = rf_shape_make(3, (const int64_t[]){ 3, 3, 5 });
	struct rf_view sv2 = { 3, { 3, 3, 5 }, 2 * 60 + 10, { 60, 10, 2 } };
	struct rf_view dv2 = { 3, { 3, 3, 5 }, 0, { 15, 5, 1 } };
	check_copy(ctx, "copy slice with step", RF_I32, &b, &sv2, &bs, &dv2);
	/* Permute [2, 3, 4, 5] by (3, 1, 0, 2). */
	struct rf_shape c = rf_shape_make(4, (const int64_t[]){ 2, 3, 4, 5 });
	struct rf_shape cp = rf_shape_make(4, (const int64_t[]){ 5, 3, 2, 4 });
	struct rf_view sv3 = { 4, { 5, 3, 2, 4 }, 0, { 1, 20, 60, 5 } };
	struct rf_view dv3 = { 4, { 5, 3, 2, 4 }, 0, { 24, 8, 4, 1 } };
	check_copy(ctx, "copy permute (3, 1, 0, 2)", RF_F32, &c, &sv3, &cp, &dv3);
	/* Concatenation: [3, 5] into columns 7..11 of [3, 12]. */
	struct rf_shape d = rf_shape_make(2, (const int64_t[]){ 3, 5 });
	struct rf_shape dc = rf_shape_make(2, (const int64_t[]){ 3, 12 });
	struct rf_view sv4 = { 2, { 3, 5 }, 0, { 5, 1 } }, dv4 = { 2, { 3, 5 }, 7, { 12, 1 } };
	check_copy(ctx, "copy into a slice (concat)", RF_F32, &d, &sv4, &dc, &dv4);
	/* Broadcast [1, 5] to [4, 5]; reverse a vector (negative stride). */
	struct rf_shape e = rf_shape_make(2, (const int64_t[]){ 1, 5 });
	struct rf_shape ee = rf_shape_make(2, (const int64_t[]){ 4, 5 });
	struct rf_view sv5 = { 2, { 4, 5 }, 0, { 0, 1 } }, dv5 = { 2, { 4, 5 }, 0, { 5, 1 } };
	check_copy(ctx, "copy broadcast (stride 0)", RF_F32, &e, &sv5, &ee, &dv5);
	struct rf_shape f = rf_shape_make(1, (const int64_t[]){ 1001 });
	struct rf_view sv6 = { 1, { 1001 }, 1000, { -1 } }, dv6 = { 1, { 1001 }, 0, { 1 } };
	check_copy(ctx, "copy reversed (stride -1)", RF_I32, &f, &sv6, &f, &dv6);
	/* 16-bit elements at odd offsets, and a 0-d copy of one element. */
	struct rf_view sv7 = { 2, { 3, 333 }, 2, { 333, 1 } };
	struct rf_view dv7 = { 2, { 3, 333 }, 1, { 333, 1 } };
	check_copy(ctx, "copy f16 odd offsets", RF_F16, &f, &sv7, &f, &dv7);
	/* Contiguous runs: a transfer copy when the bytes allow, else the kernel. */
	struct rf_view sv9 = { 1, { 998 }, 2, { 1 } }, dv9 = { 1, { 998 }, 0, { 1 } };
	check_copy(ctx, "copy f16 contiguous (transfer)", RF_F16, &f, &sv9, &f, &dv9);
	sv9.shape[0] = dv9.shape[0] = 997;
	check_copy(ctx, "copy f16 contiguous, odd bytes", RF_F16, &f, &sv9, &f, &dv9);
	struct rf_view sv8 = { 0, { 0 }, 17, { 0 } }, dv8 = { 0, { 0 }, 3, { 0 } };
	check_copy(ctx, "copy 0-d", RF_BF16, &f, &sv8, &f, &dv8);
}

static void test_copy_misuse(rf_ctx *ctx)
{
	struct rf_shape s = rf_shape_make(2, (const int64_t[]){ 4, 5 });
	rf_tensor *a = rf_test_tensor(ctx, &s, NULL), *b = rf_test_tensor(ctx, &s, NULL), *i, *u;
	CHECK_OK(rf_tensor_create(ctx, RF_I32, &s, &i));
	CHECK_OK(rf_tensor_create(ctx, RF_U8, &s, &u));
	struct rf_view v = rf_view_contiguous(a), w = v;
	CHECK(v.ndim == 2 && v.shape[0] == 4 && v.shape[1] == 5 && v.stride[0] == 5 && v.stride[1] == 1 &&
	      v.offset == 0);
	CHECK_FAILS(rf_op_copy(ctx, a, &v, i, &w), RF_ERR_INVALID, "src is F32 but dst is I32");
	CHECK_FAILS(rf_op_copy(ctx, u, &v, u, &w), RF_ERR_UNSUPPORTED, "U8");
	w.offset = 1;
	CHECK_FAILS(rf_op_copy(ctx, a, &v, b, &w), RF_ERR_INVALID, "reaches elements [1, 20]");
	w = v;
	w.shape[1] = 4;
	CHECK_FAILS(rf_op_copy(ctx, a, &v, b, &w), RF_ERR_INVALID, "different shapes");
	w = v;
	w.stride[0] = 0;
	CHECK_FAILS(rf_op_copy(ctx, a, &v, b, &w), RF_ERR_INVALID, "stride 0");
	CHECK_FAILS(rf_op_copy(ctx, a, &v, a, &v), RF_ERR_INVALID, "overlap");
	v.ndim = 9;
	CHECK_FAILS(rf_op_copy(ctx, a, &v, b, &w), RF_ERR_INVALID, "9 axes");
	rf_tensor_destroy(a);
	rf_tensor_destroy(b);
	rf_tensor_destroy(i);
	rf_tensor_destroy(u);
}

static void test_patchify(rf_ctx *ctx)
{
	static const int64_t cases[][5] = { { 2, 3, 224, 224, 16 }, { 1, 3, 32, 48, 8 }, { 3, 1, 7, 7, 7 } };
	for (size_t k = 0; k < RF_ARRAY_LEN(cases); k++) {
		int64_t b = cases[k][0], c = cases[k][1], h = cases[k][2], w = cases[k][3], p = cases[k][4];
		size_t n = (size_t)(b * c * h * w);
		float *px = malloc(n * sizeof *px);
		double *ref = malloc(n * sizeof *ref);
		rf_rand_seed(30 + k);
		rf_rand_fill(px, n, -1, 1);
		ref_patchify(px, b, c, h, w, p, ref);
		struct rf_shape ps = rf_shape_of(4, b, c, h, w);
		struct rf_shape qs = rf_shape_of(2, b * (h / p) * (w / p), c * p * p);
		rf_tensor *tp = rf_test_tensor(ctx, &ps, px), *tq = rf_test_tensor(ctx, &qs, NULL);
		CHECK_OK(rf_op_patchify(ctx, tp, (int)p, tq));
		float *got = rf_test_download(tq);
		char label[64];
		snprintf(label, sizeof label, "patchify [%lld, %lld, %lld, %lld] p%lld", (long long)b,
			 (long long)c, (long long)h, (long long)w, (long long)p);
		rf_compare(label, got, ref, n, 0, 0);
		free(got);
		free(px);
		free(ref);
		rf_tensor_destroy(tp);
		rf_tensor_destroy(tq);
	}
	struct rf_shape ps = rf_shape_make(4, (const int64_t[]){ 1, 3, 30, 32 });
	struct rf_shape qs = rf_shape_make(2, (const int64_t[]){ 16, 192 });
	rf_tensor *tp = rf_test_tensor(ctx, &ps, NULL), *tq = rf_test_tensor(ctx, &qs, NULL);
	CHECK_FAILS(rf_op_patchify(ctx, tp, 8, tq), RF_ERR_INVALID, "multiples of the patch size 8");
	rf_tensor_destroy(tp);
	rf_tensor_destroy(tq);
}

static void test_gather_rows(rf_ctx *ctx)
{
	enum { R = 1031, C = 77, N = 300 };
	float *x = malloc(R * C * sizeof *x);
	int32_t idx[N];
	double *ref = malloc(N * C * sizeof *ref);
	rf_rand_seed(40);
	rf_rand_fill(x, R * C, -1, 1);
	for (int i = 0; i < N; i++) {
		idx[i] = (int32_t)(rf_rand_u64() % R);
		if (i % 50 == 7)
			idx[i] = i % 100 == 7 ? -3 : R;     /* out of range: zeros */
		for (int c = 0; c < C; c++)
			ref[i * C + c] = idx[i] >= 0 && idx[i] < R ? x[idx[i] * C + c] : 0.0;
	}
	struct rf_shape xs = rf_shape_make(2, (const int64_t[]){ R, C });
	struct rf_shape is = rf_shape_make(1, (const int64_t[]){ N });
	struct rf_shape ys = rf_shape_make(2, (const int64_t[]){ N, C });
	rf_tensor *tx = rf_test_tensor(ctx, &xs, x), *ty = rf_test_tensor(ctx, &ys, NULL), *ti;
	CHECK_OK(rf_tensor_create(ctx, RF_I32, &is, &ti));
	CHECK_OK(rf_tensor_upload(ti, idx, sizeof idx));
	CHECK_OK(rf_op_gather_rows(ctx, tx, ti, ty));
	float *y = rf_test_download(ty);
	rf_compare("gather_rows [1031, 77] x 300", y, ref, N * C, 0, 0);
	CHECK_FAILS(rf_op_gather_rows(ctx, tx, tx, ty), RF_ERR_INVALID, "index must be I32");
	CHECK_FAILS(rf_op_gather_rows(ctx, tx, ti, tx), RF_ERR_INVALID, "expected [300, 77]");
	free(y);
	free(x);
	free(ref);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	rf_tensor_destroy(ti);
}

static void test_where(rf_ctx *ctx)
{
	struct rf_shape cs = rf_shape_make(3, (const int64_t[]){ 4, 1, 7 });
	struct rf_shape as = rf_shape_make(2, (const int64_t[]){ 5, 7 });
	struct rf_shape bs = rf_shape_make(1, (const int64_t[]){ 1 });
	struct rf_shape ys = rf_shape_make(3, (const int64_t[]){ 4, 5, 7 });
	float cond[28], a[35], b[1] = { -9.5f };
	double ref[140];
	rf_rand_seed(50);
	rf_rand_fill(a, 35, -1, 1);
	for (int i = 0; i < 28; i++)
		cond[i] = i % 3 == 0 ? 0.0f : (i % 3 == 1 ? 1.0f : -2.0f);
	ref_where(cond, &cs, a, &as, b, &bs, &ys, ref);
	rf_tensor *tc = rf_test_tensor(ctx, &cs, cond), *ta = rf_test_tensor(ctx, &as, a);
	rf_tensor *tb = rf_test_tensor(ctx, &bs, b), *ty = rf_test_tensor(ctx, &ys, NULL);
	CHECK_OK(rf_op_where(ctx, tc, ta, tb, ty));
	float *y = rf_test_download(ty);
	rf_compare("where [4,1,7] ? [5,7] : [1]", y, ref, 140, 0, 0);
	free(y);
	CHECK_FAILS(rf_op_where(ctx, tc, ta, tb, ta), RF_ERR_INVALID, "broadcast shape is [4, 5, 7]");
	struct rf_shape s3 = rf_shape_make(1, (const int64_t[]){ 3 });
	rf_tensor *t3 = rf_test_tensor(ctx, &s3, NULL);
	CHECK_FAILS(rf_op_where(ctx, tc, ta, t3, ty), RF_ERR_INVALID, "do not broadcast");
	rf_tensor_destroy(t3);
	rf_tensor_destroy(tc);
	rf_tensor_destroy(ta);
	rf_tensor_destroy(tb);
	rf_tensor_destroy(ty);
}

/* }===== */

/* {===== tensors over one storage binding (lavapipe: 128 MiB) */

/* Rows of 16 KiB, 108 past one binding (136 MB of f32 on lavapipe): every kernel must
** split it into windows or read it through a texel view. */
static void test_big(rf_ctx *ctx)
{
	const int64_t cols = 4096, rows = rf_test_rows_past_binding(ctx, cols * 4, 108, 512ull << 20);
	const size_t n = (size_t)(rows * cols);
	if (!rows)
		return;
	float *x = malloc(n * sizeof *x), *y;
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(i % 1000) * 0.001f - 0.25f;
	struct rf_shape s = rf_shape_of(2, rows, cols);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &s, NULL);
	double t0 = rf_test_seconds();

	CHECK_OK(rf_op_affine(ctx, tx, -2.0f, 1.0f, -INFINITY, INFINITY, ty));
	y = rf_test_download(ty);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (y[i] != -2.0f * x[i] + 1.0f && !bad++)
			printf("first wrong %zu: %g vs %g\n", i, y[i], -2.0f * x[i] + 1.0f);
	}
	printf("big affine [%lld, %lld]: %zu wrong\n", (long long)rows, (long long)cols, bad);
	CHECK(bad == 0);
	free(y);

	/* Reversed and shifted by 3 elements: the copy kernel, in windows that start
	** unaligned on both sides. */
	struct rf_view sv = { 1, { (int64_t)n - 3 }, (int64_t)n - 4, { -1 } };
	struct rf_view dv = { 1, { (int64_t)n - 3 }, 3, { 1 } };
	CHECK_OK(rf_op_copy(ctx, tx, &sv, ty, &dv));
	y = rf_test_download(ty);
	bad = 0;
	for (size_t i = 3; i < n; i++)
		bad += y[i] != x[n - 1 - i];
	printf("big copy reversed, shifted by 3: %zu wrong\n", bad);
	CHECK(bad == 0);
	free(y);

	struct rf_shape one = rf_shape_make(1, (const int64_t[]){ 1 });
	struct rf_shape colsh = rf_shape_of(1, cols);
	rf_tensor *t1 = rf_test_tensor(ctx, &one, NULL), *tc = rf_test_tensor(ctx, &colsh, NULL);
	CHECK_OK(rf_op_reduce(ctx, RF_RED_SUM, tx, 3, 0, t1));
	CHECK_OK(rf_op_reduce(ctx, RF_RED_MAX, tx, 1, 0, tc));
	float sum, *cmax = rf_test_download(tc);
	CHECK_OK(rf_tensor_download(t1, &sum, 4));
	double ref = 0;
	for (size_t i = 0; i < n; i++)
		ref += x[i];
	double ref_sum[1] = { ref };
	rf_compare("big reduce sum (texel reads)", &sum, ref_sum, 1, 0, 1e-7);
	bad = 0;
	for (int64_t c = 0; c < cols; c++) {
		float m = x[c];
		for (int64_t r = 1; r < rows; r++)
			m = fmaxf(m, x[r * cols + c]);
		bad += cmax[c] != m;
	}
	printf("big reduce max over rows: %zu wrong\n", bad);
	CHECK(bad == 0);
	free(cmax);
	printf("big tensors: %.2f s on the device and host\n", rf_test_seconds() - t0);
	rf_tensor_destroy(t1);
	rf_tensor_destroy(tc);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	free(x);
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
	test_copy(ctx);
	test_copy_misuse(ctx);
	test_patchify(ctx);
	test_gather_rows(ctx);
	test_where(ctx);
	if (rf_test_big_tensors())
		test_big(ctx);
	return rf_test_finish();
}
