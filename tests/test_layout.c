/*
** test_layout.c: layout.h (view copies and permutations for every dtype, on the host
** and on the device) against plain index arithmetic, and the special values of the
** elementwise kernels the Lua tensor API relies on: pow with C99's special cases, NaN
** through maximum/minimum and through the affine clamp, all against the C library in
** double precision.
*/
#include "harness.h"
#include "context.h"
#include "elementwise.h"
#include "layout.h"
#include "tensor.h"
#include "tensor_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {===== permutations and view copies */

/* x [2, 3, 5, 7] with x[i] = i, permuted by (2, 0, 3, 1), compared element by element. */
static void check_permute(rf_ctx *ctx, enum rf_dtype dt, bool device)
{
	struct rf_shape xs = rf_shape_of(4, (int64_t)2, (int64_t)3, (int64_t)5, (int64_t)7);
	int perm[4] = { 2, 0, 3, 1 };
	struct rf_shape ys = rf_shape_of(4, (int64_t)5, (int64_t)2, (int64_t)7, (int64_t)3);
	int64_t n = rf_shape_numel(&xs);
	size_t es = rf_dtype_size(dt);
	char *data = malloc((size_t)n * es), *got = malloc((size_t)n * es);
	for (int64_t i = 0; i < n; i++) {
		float f = (float)i;
		rf_convert_from_f32(dt, &f, data + i * (int64_t)es, 1);
	}
	rf_tensor *hx, *x = NULL, *y = NULL;
	CHECK_OK(rf_tensor_from_host_data(dt, &xs, data, &hx));
	if (device) {
		CHECK_OK(rf_tensor_to_device(ctx, hx, &x));
		CHECK_OK(rf_tensor_create(ctx, dt, &ys, &y));
	} else {
		x = hx;
		hx = NULL;
		CHECK_OK(rf_tensor_create_host(dt, &ys, &y));
	}
	CHECK_OK(rf_op_permute(device ? ctx : NULL, x, perm, y));
	CHECK_OK(rf_tensor_download(y, got, (uint64_t)n * es));
	int bad = 0;
	for (int64_t a = 0; a < 5; a++)
		for (int64_t b = 0; b < 2; b++)
			for (int64_t c = 0; c < 7; c++)
				for (int64_t d = 0; d < 3; d++) {
					int64_t yi = ((a * 2 + b) * 7 + c) * 3 + d;
					int64_t xi = ((b * 3 + d) * 5 + a) * 7 + c;   /* x[b, d, a, c] */
					float f;
					rf_convert_to_f32(dt, got + yi * (int64_t)es, &f, 1);
					bad += f != (float)xi;
				}
	if (bad)
		fprintf(stderr, "permute %s on the %s: %d wrong elements\n", rf_dtype_name(dt),
			device ? "device" : "host", bad);
	CHECK(bad == 0);
	rf_tensor_destroy(hx);
	rf_tensor_destroy(x);
	rf_tensor_destroy(y);
	free(data);
	free(got);
}

/* A broadcast (stride 0) and reversed (negative stride) source written into every other
** column of a host i64 tensor; the other columns keep their values. */
static void test_view_copy_host(void)
{
	int64_t src[3] = { 10, 20, 30 }, dst[4 * 6];
	for (int i = 0; i < 24; i++)
		dst[i] = -1;
	struct rf_shape ss = rf_shape_of(1, (int64_t)3), ds = rf_shape_of(2, (int64_t)4, (int64_t)6);
	rf_tensor *s, *d;
	CHECK_OK(rf_tensor_from_host_data(RF_I64, &ss, src, &s));
	CHECK_OK(rf_tensor_from_host_data(RF_I64, &ds, dst, &d));
	struct rf_view sv = { 2, { 4, 3 }, 2, { 0, -1 } };
	struct rf_view dv = { 2, { 4, 3 }, 1, { 6, 2 } };
	CHECK_OK(rf_view_copy(NULL, s, &sv, d, &dv));
	const int64_t *got = d->host;
	for (int r = 0; r < 4; r++)
		for (int c = 0; c < 6; c++)
			CHECK(got[r * 6 + c] == (c % 2 ? src[2 - c / 2] : -1));
	/* misuse: out of bounds, a stride-0 destination, mixed places */
	struct rf_view far = { 1, { 4 }, 0, { 1 } };
	CHECK_FAILS(rf_view_copy(NULL, s, &far, d, &far), RF_ERR_INVALID, "outside");
	struct rf_view zero = { 1, { 3 }, 0, { 0 } }, one = { 1, { 3 }, 0, { 1 } };
	CHECK_FAILS(rf_view_copy(NULL, s, &one, d, &zero), RF_ERR_INVALID, "has stride 0");
	CHECK_FAILS(rf_view_copy(NULL, s, &one, s, &one), RF_ERR_INVALID, "overlap");
	rf_tensor_destroy(s);
	rf_tensor_destroy(d);
}

static void test_layout(rf_ctx *ctx)
{
	static const enum rf_dtype dts[] = { RF_F32, RF_F16, RF_I64, RF_I32, RF_U8 };
	for (size_t i = 0; i < RF_ARRAY_LEN(dts); i++) {
		check_permute(ctx, dts[i], false);
		check_permute(ctx, dts[i], true);
	}
	test_view_copy_host();
	rf_tensor *h, *d;
	struct rf_shape s = rf_shape_of(1, (int64_t)4);
	CHECK_OK(rf_tensor_create_host(RF_F32, &s, &h));
	CHECK_OK(rf_tensor_create(ctx, RF_F32, &s, &d));
	struct rf_view v = rf_view_contiguous(h);
	CHECK_FAILS(rf_view_copy(ctx, h, &v, d, &v), RF_ERR_INVALID, "both be on the device");
	int bad_perm[1] = { 1 };
	CHECK_FAILS(rf_op_permute(ctx, d, bad_perm, d), RF_ERR_INVALID, "not a permutation");
	rf_tensor_destroy(h);
	rf_tensor_destroy(d);
}

/* }===== */

/* {===== special values of the elementwise kernels */

static void run_binary(rf_ctx *ctx, enum rf_binary_op op, const float *a, const float *b,
		       float *out, int n)
{
	struct rf_shape s = rf_shape_of(1, (int64_t)n);
	rf_tensor *ta = rf_test_tensor(ctx, &s, a), *tb = rf_test_tensor(ctx, &s, b);
	rf_tensor *tc = rf_test_tensor(ctx, &s, NULL);
	CHECK_OK(rf_op_binary(ctx, op, ta, tb, tc));
	CHECK_OK(rf_tensor_download(tc, out, (uint64_t)n * 4));
	rf_tensor_destroy(ta);
	rf_tensor_destroy(tb);
	rf_tensor_destroy(tc);
}

static void test_pow(rf_ctx *ctx)
{
	/* Every pair of these: negative bases, zeros of both signs, infinities, NaN, integral
	** and fractional exponents, big exponents. */
	static const float v[] = { -3.0f, -2.0f, -1.0f, -0.5f, -0.0f, 0.0f, 0.5f, 1.0f, 2.0f, 3.0f,
				   10.0f, 1e-3f, 1.5f, -1.5f, 7.0f, 64.0f, 65.0f, -65.0f, 1e9f,
				   INFINITY, -INFINITY, NAN };
	enum { K = RF_ARRAY_LEN(v), N = K * K };
	float a[N], b[N], got[N];
	double ref[N];
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++) {
			a[i * K + j] = v[i];
			b[i * K + j] = v[j];
			ref[i * K + j] = (double)powf(v[i], v[j]);
		}
	run_binary(ctx, RF_BIN_POW, a, b, got, N);
	/* Infinities, zeros (with their signs) and NaN exactly; the rest to a few ulp of the
	** device's exp2/log2, relative to the result. */
	int bad = 0;
	for (int i = 0; i < N; i++) {
		double g = got[i], r = ref[i];
		bool ok = isnan(r) ? isnan(g)
			: isinf(r) || r == 0 ? g == r && signbit(g) == signbit(r)
			: fabs(g - r) <= 2e-6 * fabs(r) + 1e-37;
		if (!ok) {
			fprintf(stderr, "pow(%g, %g): got %.9g, want %.9g\n", (double)a[i], (double)b[i], g, r);
			bad++;
		}
	}
	printf("%-40s n=%-9d %s\n", "pow special values", N, bad ? "FAIL" : "ok");
	CHECK(bad == 0);

	/* Random bases and exponents in the ranges scripts use. */
	enum { R = 4099 };
	static float ra[R], rb[R], rg[R];
	static double rr[R];
	rf_rand_seed(5);
	rf_rand_fill(ra, R, -4, 4);
	for (int i = 0; i < R; i++) {
		rb[i] = i % 2 ? (float)floor(rf_rand_uniform() * 9 - 4) : (float)(rf_rand_uniform() * 6 - 3);
		if (!(i % 2))
			ra[i] = fabsf(ra[i]);
		rr[i] = pow((double)ra[i], (double)rb[i]);
	}
	run_binary(ctx, RF_BIN_POW, ra, rb, rg, R);
	rf_compare("pow random", rg, rr, R, 1e-30, 4e-6);
}

static void test_nan(rf_ctx *ctx)
{
	float a[4] = { NAN, 1.0f, NAN, -1.0f }, b[4] = { 1.0f, NAN, NAN, 2.0f }, got[4];
	double mx[4] = { NAN, NAN, NAN, 2.0 }, mn[4] = { NAN, NAN, NAN, -1.0 };
	run_binary(ctx, RF_BIN_MAX, a, b, got, 4);
	rf_compare("maximum with NaN", got, mx, 4, 0, 0);
	run_binary(ctx, RF_BIN_MIN, a, b, got, 4);
	rf_compare("minimum with NaN", got, mn, 4, 0, 0);

	struct rf_shape s = rf_shape_of(1, (int64_t)4);
	rf_tensor *x = rf_test_tensor(ctx, &s, a), *y = rf_test_tensor(ctx, &s, NULL);
	CHECK_OK(rf_op_affine(ctx, x, 1.0f, 0.0f, 0.0f, 0.5f, y));
	double clamped[4] = { NAN, 0.5, NAN, 0.0 };
	float *g = rf_test_download(y);
	rf_compare("clamp keeps NaN", g, clamped, 4, 0, 0);
	free(g);
	CHECK_OK(rf_op_affine(ctx, x, 2.0f, 1.0f, -INFINITY, INFINITY, y));
	double mapped[4] = { NAN, 3.0, NAN, -1.0 };
	g = rf_test_download(y);
	rf_compare("affine keeps NaN", g, mapped, 4, 0, 0);
	free(g);
	rf_tensor_destroy(x);
	rf_tensor_destroy(y);
}

/* }===== */

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	test_layout(ctx);
	test_pow(ctx);
	test_nan(ctx);
	return rf_test_finish();
}
