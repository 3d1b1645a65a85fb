/*
** test_nn.c: the transformer kernels of nn.h (LayerNorm with row statistics, softmax
** with scale and causal mask, activations, multi-head attention) against double-precision
** CPU references on fixed-seed inputs with odd sizes, misuse cases, and the attention
** throughput on CLIP shapes (printed, benchmark style).
*/
#include "harness.h"
#include "gemm.h"
#include "context.h"
#include "tensor.h"
#include "nn.h"
#include "ref/ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *random_floats(size_t n, uint64_t seed, double lo, double hi)
{
	float *x = malloc((n ? n : 1) * sizeof *x);
	rf_rand_seed(seed);
	rf_rand_fill(x, n, lo, hi);
	return x;
}

static double *doubles(size_t n)
{
	return malloc((n ? n : 1) * sizeof(double));
}

/* {===== layernorm */

struct ln_case {
	int64_t rows, cols;
	double offset;          /* added to x: a large mean tests the variance's cancellation */
	bool affine, stats, in_place;
};

static void run_layernorm(rf_ctx *ctx, const struct ln_case *c)
{
	size_t n = (size_t)(c->rows * c->cols);
	float *x = random_floats(n, (uint64_t)(c->rows * 131 + c->cols), -2, 2);
	for (size_t i = 0; i < n; i++)
		x[i] += (float)c->offset;
	float *gamma = random_floats((size_t)c->cols, 5, 0.5, 1.5);
	float *beta = random_floats((size_t)c->cols, 6, -0.5, 0.5);
	double *ry = doubles(n), *rmean = doubles((size_t)c->rows), *rstd = doubles((size_t)c->rows);
	ref_layernorm(x, c->rows, c->cols, c->affine ? gamma : NULL, c->affine ? beta : NULL, 1e-5,
		      ry, rmean, rstd);

	struct rf_shape s = rf_shape_of(2, c->rows, c->cols), v = rf_shape_of(1, c->cols),
			r = rf_shape_of(1, c->rows);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x);
	rf_tensor *ty = c->in_place ? tx : rf_test_tensor(ctx, &s, NULL);
	rf_tensor *tg = rf_test_tensor(ctx, &v, gamma), *tb = rf_test_tensor(ctx, &v, beta);
	rf_tensor *tm = rf_test_tensor(ctx, &r, NULL), *tsd = rf_test_tensor(ctx, &r, NULL);
	CHECK_OK(rf_op_layernorm(ctx, tx, c->affine ? tg : NULL, c->affine ? tb : NULL, 1e-5f, ty,
				 c->stats ? tm : NULL, c->stats ? tsd : NULL));
	float *y = rf_test_download(ty);
	char label[96];
	snprintf(label, sizeof label, "layernorm [%lld, %lld]%s%s%s", (long long)c->rows,
		 (long long)c->cols, c->offset != 0 ? " +mean" : "", c->affine ? " affine" : "",
		 c->in_place ? " in place" : "");
	rf_compare(label, y, ry, n, 1e-6, 1e-6);
	if (c->stats) {
		float *m = rf_test_download(tm), *sd = rf_test_download(tsd);
		rf_compare("  row mean", m, rmean, (size_t)c->rows, 1e-7, 2e-7);
		rf_compare("  row std", sd, rstd, (size_t)c->rows, 0, 1e-6);
		free(m);
		free(sd);
	}
	free(y);
	if (ty != tx)
		rf_tensor_destroy(ty);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(tg);
	rf_tensor_destroy(tb);
	rf_tensor_destroy(tm);
	rf_tensor_destroy(tsd);
	free(x);
	free(gamma);
	free(beta);
	free(ry);
	free(rmean);
	free(rstd);
}

static void test_layernorm(rf_ctx *ctx)
{
	static const struct ln_case cases[] = {
		{ 197, 768, 0, true, true, false },
		{ 257, 1280, 0, true, false, true },
		{ 77, 512, 30, true, true, false },
		{ 3, 2304, 1000, false, true, false },
		{ 17, 1, 0, true, true, false },
		{ 1, 13, 0, false, false, false },
		{ 1031, 64, -5, true, true, true },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++)
		run_layernorm(ctx, &cases[i]);
}

static void test_layernorm_misuse(rf_ctx *ctx)
{
	struct rf_shape s = rf_shape_make(2, (const int64_t[]){ 4, 8 });
	struct rf_shape s2 = rf_shape_make(2, (const int64_t[]){ 4, 9 });
	struct rf_shape v7 = rf_shape_make(1, (const int64_t[]){ 7 });
	struct rf_shape r4 = rf_shape_make(1, (const int64_t[]){ 3 });
	rf_tensor *x = rf_test_tensor(ctx, &s, NULL), *y2 = rf_test_tensor(ctx, &s2, NULL);
	rf_tensor *g7 = rf_test_tensor(ctx, &v7, NULL), *m3 = rf_test_tensor(ctx, &r4, NULL), *xi;
	CHECK_OK(rf_tensor_create(ctx, RF_I32, &s, &xi));
	CHECK_FAILS(rf_op_layernorm(ctx, x, NULL, NULL, 1e-5f, y2, NULL, NULL), RF_ERR_INVALID,
		    "must have x's shape");
	CHECK_FAILS(rf_op_layernorm(ctx, x, g7, NULL, 1e-5f, x, NULL, NULL), RF_ERR_INVALID,
		    "gamma has 7 elements, expected 8");
	CHECK_FAILS(rf_op_layernorm(ctx, x, NULL, NULL, 1e-5f, x, m3, NULL), RF_ERR_INVALID,
		    "mean_out has 3 elements, expected 4");
	CHECK_FAILS(rf_op_layernorm(ctx, xi, NULL, NULL, 1e-5f, x, NULL, NULL), RF_ERR_INVALID,
		    "x must be F32");
	CHECK_FAILS(rf_op_layernorm(ctx, x, NULL, NULL, -1.0f, x, NULL, NULL), RF_ERR_INVALID, "eps");
	rf_tensor_destroy(x);
	rf_tensor_destroy(y2);
	rf_tensor_destroy(g7);
	rf_tensor_destroy(m3);
	rf_tensor_destroy(xi);
}

/* }===== */

/* {===== softmax */

static void run_softmax(rf_ctx *ctx, int64_t batch, int64_t q, int64_t k, float scale, bool causal)
{
	size_t n = (size_t)(batch * q * k);
	float *x = random_floats(n, (uint64_t)(batch + 7 * q + 13 * k), -8, 8);
	double *ref = doubles(n);
	ref_softmax(x, batch * q, k, scale, causal, q, 0, ref);
	struct rf_shape s = rf_shape_of(3, batch, q, k);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &s, NULL);
	CHECK_OK(rf_op_softmax(ctx, tx, scale, causal, ty));
	float *y = rf_test_download(ty);
	char label[96];
	snprintf(label, sizeof label, "softmax [%lld, %lld, %lld] x%g%s", (long long)batch,
		 (long long)q, (long long)k, (double)scale, causal ? " causal" : "");
	rf_compare(label, y, ref, n, 1e-9, 2e-6);
	free(y);
	/* In place gives the same. */
	CHECK_OK(rf_op_softmax(ctx, tx, scale, causal, tx));
	y = rf_test_download(tx);
	rf_compare("  in place", y, ref, n, 1e-9, 2e-6);
	free(y);
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	free(x);
	free(ref);
}

static void test_softmax(rf_ctx *ctx)
{
	run_softmax(ctx, 12, 197, 197, 0.125f, false);
	run_softmax(ctx, 8, 77, 77, 1.0f, true);
	run_softmax(ctx, 1, 1, 1, 1.0f, false);
	run_softmax(ctx, 3, 5, 1031, 0.7f, false);
	run_softmax(ctx, 2, 17, 9, 2.0f, true);     /* more queries than keys */
	run_softmax(ctx, 2, 13, 20, 1.5f, true);    /* vec4 rows, causal edges inside a vec4 */
	run_softmax(ctx, 4, 64, 64, 0.25f, false);  /* vec4 rows */
}

static void test_softmax_misuse(rf_ctx *ctx)
{
	struct rf_shape s = rf_shape_make(1, (const int64_t[]){ 8 });
	struct rf_shape s2 = rf_shape_make(1, (const int64_t[]){ 9 });
	rf_tensor *x = rf_test_tensor(ctx, &s, NULL), *y = rf_test_tensor(ctx, &s2, NULL);
	CHECK_FAILS(rf_op_softmax(ctx, x, 1.0f, false, y), RF_ERR_INVALID, "must have x's shape");
	CHECK_FAILS(rf_op_softmax(ctx, x, 1.0f, true, x), RF_ERR_INVALID, "query axis");
	CHECK_FAILS(rf_op_softmax(ctx, x, NAN, false, x), RF_ERR_INVALID, "scale");
	rf_tensor_destroy(x);
	rf_tensor_destroy(y);
}

/* }===== */

/* {===== attention */

struct attn_case {
	int64_t batch, n, width;
	int heads;
	bool causal, probs, cls;
};

static void run_attention(rf_ctx *ctx, const struct attn_case *c)
{
	int64_t b = c->batch, n = c->n, w = c->width, h = c->heads;
	size_t nqkv = (size_t)(b * n * 3 * w), nout = (size_t)(b * n * w), np = (size_t)(b * h * n * n);
	float *qkv = random_floats(nqkv, (uint64_t)(n * 1000 + w + h), -2, 2);
	double *rout = doubles(nout), *rprobs = doubles(np), *rcls = doubles((size_t)(b * h * n));
	ref_attention(qkv, b, n, w, c->heads, c->causal, rout, rprobs);
	for (int64_t i = 0; i < b * h; i++)
		memcpy(rcls + i * n, rprobs + i * n * n, (size_t)n * sizeof *rcls);

	struct rf_shape sq = rf_shape_of(3, b, n, 3 * w), so = rf_shape_of(3, b, n, w);
	struct rf_shape sp = rf_shape_of(4, b, h, n, n), sc = rf_shape_of(3, b, h, n);
	rf_tensor *tq = rf_test_tensor(ctx, &sq, qkv), *to = rf_test_tensor(ctx, &so, NULL);
	rf_tensor *tp = c->probs ? rf_test_tensor(ctx, &sp, NULL) : NULL;
	rf_tensor *tc = c->cls ? rf_test_tensor(ctx, &sc, NULL) : NULL;
	struct rf_attention a = { tq, c->heads, c->causal, to, tp, tc };
	CHECK_OK(rf_op_attention(ctx, &a));
	char label[96];
	snprintf(label, sizeof label, "attention B%lld N%lld W%lld H%d dh%lld%s", (long long)b,
		 (long long)n, (long long)w, c->heads, (long long)(w / h), c->causal ? " causal" : "");
	float *out = rf_test_download(to);
	rf_compare(label, out, rout, nout, 1e-6, 1e-5);
	free(out);
	if (tp) {
		float *p = rf_test_download(tp);
		rf_compare("  probs", p, rprobs, np, 1e-8, 2e-6);
		free(p);
	}
	if (tc) {
		float *p = rf_test_download(tc);
		rf_compare("  cls probs", p, rcls, (size_t)(b * h * n), 1e-8, 2e-6);
		free(p);
	}
	rf_tensor_destroy(tq);
	rf_tensor_destroy(to);
	rf_tensor_destroy(tp);
	rf_tensor_destroy(tc);
	free(qkv);
	free(rout);
	free(rprobs);
	free(rcls);
}

static void test_attention(rf_ctx *ctx)
{
	static const struct attn_case cases[] = {
		{ 1, 197, 768, 12, false, true, true },     /* ViT-B/16 */
		{ 2, 257, 1280, 16, false, false, true },   /* ViT-H/14, dh 80 */
		{ 3, 77, 512, 8, true, true, true },        /* text tower */
		{ 2, 17, 64, 4, false, true, true },        /* the tiny golden model, dh 16 */
		{ 1, 65, 96, 3, true, false, true },        /* dh 32 */
		{ 2, 2, 256, 2, false, true, false },       /* dh 128 */
		{ 3, 1, 64, 2, true, true, true },          /* one token */
		{ 2, 17, 18, 3, false, true, true },        /* dh 6: scalar loads */
		{ 1, 33, 10, 2, true, true, true },         /* W 10, dh 5: scalar loads */
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++)
		run_attention(ctx, &cases[i]);
}

/* Effective GFLOP/s (4 B H N^2 dh: both products) on CLIP shapes. */
static void bench_attention(rf_ctx *ctx, int64_t b, int64_t n, int64_t w, int h, bool causal,
			    const char *name)
{
	struct rf_shape sq = rf_shape_of(3, b, n, 3 * w), so = rf_shape_of(3, b, n, w);
	float *qkv = random_floats((size_t)(b * n * 3 * w), 3, -2, 2);
	rf_tensor *tq = rf_test_tensor(ctx, &sq, qkv), *to = rf_test_tensor(ctx, &so, NULL);
	struct rf_attention a = { tq, h, causal, to, NULL, NULL };
	CHECK_OK(rf_op_attention(ctx, &a));          /* warm-up: pipeline build and JIT */
	CHECK_OK(rf_ctx_finish(ctx));
	/* The best of several runs: the machine may be shared, and the minimum is the
	** least disturbed measurement. */
	int reps = 0;
	double total = 0, best = INFINITY;
	while (total < 0.4 && reps < 40) {
		double t0 = rf_test_seconds();
		CHECK_OK(rf_op_attention(ctx, &a));
		CHECK_OK(rf_ctx_finish(ctx));
		double t = rf_test_seconds() - t0;
		best = fmin(best, t);
		total += t;
		reps++;
	}
	double flops = 4.0 * (double)b * h * (double)n * (double)n * (double)(w / h);
	printf("bench attention %-14s B%-2lld best %7.2f ms (mean %7.2f) %6.2f GFLOP/s\n", name,
	       (long long)b, 1e3 * best, 1e3 * total / reps, flops / best * 1e-9);
	rf_tensor_destroy(tq);
	rf_tensor_destroy(to);
	free(qkv);
}

/* Milliseconds per call of the row kernels on a ViT-B/16 batch of 8 (best of several). */
static double best_ms(rf_ctx *ctx, int which, rf_tensor *x, rf_tensor *y)
{
	double best = INFINITY;
	for (int r = 0; r < 6; r++) {
		double t0 = rf_test_seconds();
		if (which == 0)
			CHECK_OK(rf_op_layernorm(ctx, x, NULL, NULL, 1e-5f, y, NULL, NULL));
		else if (which == 1)
			CHECK_OK(rf_op_softmax(ctx, x, 0.125f, false, y));
		else
			CHECK_OK(rf_op_activation(ctx, RF_ACT_GELU, x, y));
		CHECK_OK(rf_ctx_finish(ctx));
		best = fmin(best, rf_test_seconds() - t0);
	}
	return best * 1e3;
}

static void bench_rows(rf_ctx *ctx)
{
	struct rf_shape ln = rf_shape_make(2, (const int64_t[]){ 8 * 197, 768 });
	struct rf_shape sm = rf_shape_make(2, (const int64_t[]){ 8 * 12 * 197, 197 });
	struct rf_shape mlp = rf_shape_make(2, (const int64_t[]){ 8 * 197, 3072 });
	const struct rf_shape *shapes[] = { &ln, &sm, &mlp };
	const char *names[] = { "layernorm [1576, 768]", "softmax [18912, 197]", "gelu [1576, 3072]" };
	for (int k = 0; k < 3; k++) {
		size_t n = (size_t)rf_shape_numel(shapes[k]);
		float *x = random_floats(n, 70, -3, 3);
		rf_tensor *tx = rf_test_tensor(ctx, shapes[k], x), *ty = rf_test_tensor(ctx, shapes[k], NULL);
		best_ms(ctx, k, tx, ty);   /* warm-up */
		double ms = best_ms(ctx, k, tx, ty);
		printf("bench %-26s %7.2f ms  %6.2f GB/s (read + write)\n", names[k], ms,
		       8.0 * (double)n / ms * 1e-6);
		rf_tensor_destroy(tx);
		rf_tensor_destroy(ty);
		free(x);
	}
}

static void test_attention_misuse(rf_ctx *ctx)
{
	struct rf_shape sq = rf_shape_make(3, (const int64_t[]){ 2, 5, 24 });
	struct rf_shape so = rf_shape_make(3, (const int64_t[]){ 2, 5, 8 });
	struct rf_shape bad = rf_shape_make(3, (const int64_t[]){ 2, 5, 7 });
	struct rf_shape sp = rf_shape_make(4, (const int64_t[]){ 2, 2, 5, 4 });
	rf_tensor *q = rf_test_tensor(ctx, &sq, NULL), *o = rf_test_tensor(ctx, &so, NULL);
	rf_tensor *ob = rf_test_tensor(ctx, &bad, NULL), *pb = rf_test_tensor(ctx, &sp, NULL);
	struct rf_attention a = { q, 3, false, o, NULL, NULL };
	CHECK_FAILS(rf_op_attention(ctx, &a), RF_ERR_INVALID, "not a multiple of 3 heads");
	a.heads = 2;
	a.out = ob;
	CHECK_FAILS(rf_op_attention(ctx, &a), RF_ERR_INVALID, "out is [2, 5, 7], expected [2, 5, 8]");
	a.out = o;
	a.probs = pb;
	CHECK_FAILS(rf_op_attention(ctx, &a), RF_ERR_INVALID, "probs is [2, 2, 5, 4]");
	a.probs = NULL;
	a.qkv = ob;
	CHECK_FAILS(rf_op_attention(ctx, &a), RF_ERR_INVALID, "[B, N, 3W]");
	CHECK_FAILS(rf_op_attention(ctx, NULL), RF_ERR_INVALID, "no arguments");
	rf_tensor_destroy(q);
	rf_tensor_destroy(o);
	rf_tensor_destroy(ob);
	rf_tensor_destroy(pb);
}

/* }===== */

/* {===== tensors over one storage binding (lavapipe: 128 MiB) */

/* Rows of 16 KiB, 108 past one binding (8300 rows on lavapipe), as [2, rows / 2, 4096];
** then attention probabilities past one binding. */
static void test_big(rf_ctx *ctx)
{
	const int64_t cols = 4096, rows = rf_test_rows_past_binding(ctx, cols * 4, 108, 512ull << 20);
	const int64_t per_window = (int64_t)(rf_ctx_caps(ctx)->max_storage_range / (uint64_t)(cols * 4));
	const size_t n = (size_t)(rows * cols);
	if (!rows)
		return;
	double t0 = rf_test_seconds();
	float *x = random_floats(n, 60, -4, 4);
	struct rf_shape s = rf_shape_of(3, (int64_t)2, rows / 2, cols);
	rf_tensor *tx = rf_test_tensor(ctx, &s, x), *ty = rf_test_tensor(ctx, &s, NULL);
	/* The references on sampled rows: every 37th, and those around the first window's
	** end (8192 rows of 16 KiB on lavapipe). */
	int64_t picked[300];
	int np = 0;
	for (int64_t r = 0; r < rows && np < 280; r += 37)
		picked[np++] = r;
	for (int64_t r = per_window - 6; r < per_window + 6; r++)
		picked[np++] = r;
	float *gx = malloc((size_t)(np * cols) * sizeof *gx), *gy = malloc((size_t)(np * cols) * sizeof *gy);
	double *ref = doubles((size_t)(np * cols));
	for (int i = 0; i < np; i++)
		memcpy(gx + i * cols, x + picked[i] * cols, (size_t)cols * sizeof *x);
	for (int op = 0; op < 2; op++) {
		if (op == 0)
			CHECK_OK(rf_op_layernorm(ctx, tx, NULL, NULL, 1e-5f, ty, NULL, NULL));
		else
			CHECK_OK(rf_op_softmax(ctx, tx, 1.0f, true, ty));
		float *y = rf_test_download(ty);
		for (int i = 0; i < np; i++) {
			memcpy(gy + i * cols, y + picked[i] * cols, (size_t)cols * sizeof *y);
			if (op == 0)
				ref_layernorm(gx + i * cols, 1, cols, NULL, NULL, 1e-5, ref + i * cols, NULL, NULL);
			else
				ref_softmax(gx + i * cols, 1, cols, 1.0, true, rows / 2, picked[i], ref + i * cols);
		}
		char label[80];
		snprintf(label, sizeof label, "big %s [2, %lld, 4096] (sampled rows)",
			 op == 0 ? "layernorm" : "softmax causal", (long long)(rows / 2));
		rf_compare(label, gy, ref, (size_t)(np * cols), op == 0 ? 1e-6 : 1e-9, op == 0 ? 1e-6 : 2e-6);
		free(y);
	}
	rf_tensor_destroy(tx);
	rf_tensor_destroy(ty);
	free(x);
	free(gx);
	free(gy);
	free(ref);
	/* Probabilities of 4 x 24 x n x n in windows of batches: n = 600 (138 MB) on lavapipe;
	** with a smaller binding, n such that one batch takes 64% of it. */
	int64_t side = (int64_t)(0.8 * sqrt((double)rf_ctx_caps(ctx)->max_storage_range / (24 * 4)));
	struct attn_case c = { 4, RF_MIN(side, 600), 96, 24, false, true, true };
	run_attention(ctx, &c);
	printf("big tensors: %.2f s on the device and host\n", rf_test_seconds() - t0);
}

/* }===== */

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	/* With a forced kernel layout (REFRACT_KERNELS) or binding limit only correctness
	** matters: skip the benchmarks. */
	bool bench = !getenv("REFRACT_KERNELS") && !getenv("REFRACT_MAX_STORAGE_RANGE");
#ifdef __SANITIZE_ADDRESS__
	/* Sanitizer builds: timings would mean nothing. */
	bench = false;
#endif
	test_layernorm(ctx);
	test_layernorm_misuse(ctx);
	test_softmax(ctx);
	test_softmax_misuse(ctx);
	/* Attention runs on the host where the products do (REFRACT_GEMM=host, a CPU device
	** whose memory the host maps), else on the device: both, where both exist. */
	static const char *const families[] = { "host", "lanes" };
	for (size_t f = 0; f < RF_ARRAY_LEN(families); f++) {
		/* The context reads REFRACT_GEMM once, when it is created: one per family. */
		setenv("REFRACT_GEMM", families[f], 1);
		rf_ctx *fctx = NULL;
		CHECK_OK(rf_ctx_create(NULL, &fctx));
		unsetenv("REFRACT_GEMM");
		if (!fctx)
			continue;
		if (!rf_gemm_family(fctx)) {
			printf("-- attention with REFRACT_GEMM=%s: not on this device\n", families[f]);
			rf_ctx_release(fctx);
			continue;
		}
		printf("-- attention with REFRACT_GEMM=%s\n", families[f]);
		test_attention(fctx);
		test_attention_misuse(fctx);
		if (rf_test_big_tensors())
			test_big(fctx);
		rf_ctx_release(fctx);
	}
	if (bench) {
		bench_attention(ctx, 1, 197, 768, 12, false, "ViT-B/16");
		bench_attention(ctx, 8, 197, 768, 12, false, "ViT-B/16");
		bench_attention(ctx, 1, 257, 1280, 16, false, "ViT-H/14");
		bench_attention(ctx, 8, 77, 512, 8, true, "text (causal)");
		bench_rows(ctx);
	}
	return rf_test_finish();
}
