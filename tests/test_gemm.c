/*
** test_gemm.c: rf_op_gemm, rf_op_matmul and rf_op_matmul_simple against double-precision
** references, for every kernel family this device can run (REFRACT_GEMM=host where the
** device's memory is host-visible, lanes, tiled, generic): every GEMM shape of ViT-B/16, ViT-H/14 and their text towers at the batch
** sizes CLIP uses, odd shapes, f32/f16/bf16 sources, f32 and f16 storage, transposed
** sources, the fused epilogue, strided and batched matmuls (attention's layouts),
** operands split over binding-range and grid limits, and misuse messages.
*/
#include "harness.h"
#include "context.h"
#include "device.h"
#include "tensor.h"
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kernels[] = { "host", "lanes", "tiled", "generic" };

/* {===== references and helpers */

static double act_ref(enum rf_activation act, double x)
{
	if (act == RF_ACT_GELU)
		return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
	if (act == RF_ACT_QUICKGELU)
		return x / (1.0 + exp(-1.702 * x));
	return x;
}

/* x rounded through dtype `dt` and back, as the device will see it. */
static float round_through(enum rf_dtype dt, float x)
{
	if (dt == RF_F32)
		return x;
	uint16_t h;
	rf_convert_from_f32(dt, &x, &h, 1);
	float y;
	rf_convert_to_f32(dt, &h, &y, 1);
	return y;
}

static rf_tensor *device_tensor(rf_ctx *ctx, const struct rf_shape *s, const float *data)
{
	rf_tensor *t = NULL;
	CHECK_OK(rf_tensor_create(ctx, RF_F32, s, &t));
	if (t && data)
		CHECK_OK(rf_tensor_upload(t, data, rf_tensor_nbytes(t)));
	return t;
}

static float *random_floats(size_t n, double lo, double hi)
{
	float *x = malloc(n * sizeof *x);
	rf_rand_fill(x, n, lo, hi);
	return x;
}

/* Rows to check: all of them, or the first and last three and random ones between. */
static int64_t pick_rows(int64_t m, int64_t max, int64_t *rows)
{
	if (m <= max) {
		for (int64_t i = 0; i < m; i++)
			rows[i] = i;
		return m;
	}
	int64_t n = 0;
	for (int64_t i = 0; i < 3; i++) {
		rows[n++] = i;
		rows[n++] = m - 1 - i;
	}
	while (n < max)
		rows[n++] = 3 + (int64_t)(rf_rand_uniform() * (double)(m - 6));
	return n;
}

/* A context whose matrix products use the family `name` (REFRACT_GEMM is read when a
** context is created). */
static rf_ctx *kernel_ctx(const char *name)
{
	setenv("REFRACT_GEMM", name, 1);
	rf_ctx *ctx = NULL;
	CHECK_OK(rf_ctx_create(NULL, &ctx));
	unsetenv("REFRACT_GEMM");
	if (!ctx)
		exit(rf_test_finish());
	return ctx;
}

/* }===== */

/* {===== rf_op_gemm */

struct gemm_case {
	int64_t m, n, k;
	enum rf_dtype storage;      /* F32 or F16 on the device */
	enum rf_dtype src;          /* F32, F16 or BF16 on the host */
	bool transposed;            /* source stored [k, n] */
	bool bias;
	enum rf_activation act;
	int residual;               /* 0 none, 1 a separate tensor, 2 c itself */
	int64_t lead;               /* > 1: a is [lead, m / lead, k] */
};

/* Host source of W in the case's dtype and orientation, and the reference copy [n, k]
** with the rounding the device's storage applies. */
static void *make_weights(const struct gemm_case *gc, double *wref)
{
	int64_t n = gc->n, k = gc->k;
	float *w = random_floats((size_t)(n * k), -2.0 / sqrt((double)k), 2.0 / sqrt((double)k));
	size_t esize = rf_dtype_size(gc->src);
	char *src = malloc((size_t)(n * k) * esize);
	for (int64_t r = 0; r < n; r++)
		for (int64_t c = 0; c < k; c++) {
			float v = round_through(gc->src, w[r * k + c]);
			wref[r * k + c] = round_through(gc->storage, v);
			int64_t at = gc->transposed ? c * n + r : r * k + c;
			rf_convert_from_f32(gc->src, &v, src + (size_t)at * esize, 1);
		}
	free(w);
	return src;
}

static void gemm_reference(const struct gemm_case *gc, const float *a, const double *w,
			   const float *bias, const float *res, int64_t row, double *out)
{
	for (int64_t j = 0; j < gc->n; j++) {
		double s = 0;
		for (int64_t kk = 0; kk < gc->k; kk++)
			s += (double)a[row * gc->k + kk] * w[j * gc->k + kk];
		if (bias)
			s += bias[j];
		s = act_ref(gc->act, s);
		if (res)
			s += res[row * gc->n + j];
		out[j] = s;
	}
}

/* A prepared weight with its reference copy, shared by the cases of one (K, N). */
struct weights {
	rf_gemm_weights *w;
	double *ref;    /* [n, k] as the device's storage rounds it */
};

static struct weights weights_make(rf_ctx *ctx, const struct gemm_case *gc)
{
	struct weights ws = { NULL, malloc((size_t)(gc->n * gc->k) * sizeof(double)) };
	void *src = make_weights(gc, ws.ref);
	struct rf_weight_source source = { src, gc->src, gc->n, gc->k, gc->transposed };
	CHECK_OK(rf_gemm_weights_create(ctx, &source, gc->storage, &ws.w));
	free(src);
	return ws;
}

static void weights_free(struct weights *ws)
{
	rf_gemm_weights_destroy(ws->w);
	free(ws->ref);
}

static void run_gemm_with(rf_ctx *ctx, const char *kernel, const struct gemm_case *gc,
			  const struct weights *ws, int64_t max_rows)
{
	int64_t m = gc->m, n = gc->n, k = gc->k;
	float *a = random_floats((size_t)(m * k), -1, 1);
	float *bias = gc->bias ? random_floats((size_t)n, -1, 1) : NULL;
	float *res = gc->residual ? random_floats((size_t)(m * n), -1, 1) : NULL;
	float *c = malloc((size_t)(m * n) * sizeof *c);

	struct rf_shape as = gc->lead > 1 ? rf_shape_of(3, gc->lead, m / gc->lead, k) : rf_shape_of(2, m, k);
	struct rf_shape cs = as;
	cs.dim[cs.ndim - 1] = n;
	struct rf_shape bs = rf_shape_of(1, n);
	rf_tensor *ta = device_tensor(ctx, &as, a);
	rf_tensor *tc = device_tensor(ctx, &cs, gc->residual == 2 ? res : NULL);
	rf_tensor *tb = bias ? device_tensor(ctx, &bs, bias) : NULL;
	rf_tensor *tr = gc->residual == 1 ? device_tensor(ctx, &cs, res) : gc->residual == 2 ? tc : NULL;
	if (ws->w && ta && tc) {
		struct rf_gemm g = { ta, ws->w, tb, gc->act, tr, tc };
		CHECK_OK(rf_op_gemm(ctx, &g));
		CHECK_OK(rf_tensor_download(tc, c, rf_tensor_nbytes(tc)));
	}

	int64_t *rows = malloc((size_t)max_rows * sizeof *rows);
	int64_t nrows = pick_rows(m, max_rows, rows);
	double *ref = malloc((size_t)(nrows * n) * sizeof *ref);
	float *got = malloc((size_t)(nrows * n) * sizeof *got);
	for (int64_t i = 0; i < nrows; i++) {
		gemm_reference(gc, a, ws->ref, bias, res, rows[i], ref + i * n);
		memcpy(got + i * n, c + rows[i] * n, (size_t)n * sizeof *got);
	}
	static const char *const acts[] = { "", " gelu", " quickgelu" };
	static const char *const ress[] = { "", " +res", " +=res" };
	char label[128];
	snprintf(label, sizeof label, "gemm %s %s%s%s M=%lld K=%lld N=%lld%s%s%s", kernel,
		 rf_dtype_name(gc->storage), gc->src != gc->storage ? (gc->src == RF_BF16 ? "<bf16" :
		 gc->src == RF_F16 ? "<f16" : "<f32") : "", gc->transposed ? " T" : "", (long long)m,
		 (long long)k, (long long)n, gc->bias ? " +bias" : "", acts[gc->act], ress[gc->residual]);
	/* Inputs are scaled so |C| ~ 1; one missing product term would be ~1e-2. The error
	** of an f32 sum of k terms grows like sqrt(k) ulp in whatever order (and with or
	** without fused multiply-adds) a device accumulates. */
	double tol = (gc->storage == RF_F16 ? 2 : 1) * (2e-6 + 1e-7 * sqrt((double)k));
	rf_compare(label, got, ref, (size_t)(nrows * n), tol, 1e-5);

	rf_tensor_destroy(ta);
	rf_tensor_destroy(tc);
	rf_tensor_destroy(tb);
	if (gc->residual == 1)
		rf_tensor_destroy(tr);
	free(rows);
	free(ref);
	free(got);
	free(a);
	free(bias);
	free(res);
	free(c);
}

static void run_gemm(rf_ctx *ctx, const char *kernel, const struct gemm_case *gc, int64_t max_rows)
{
	struct weights ws = weights_make(ctx, gc);
	run_gemm_with(ctx, kernel, gc, &ws, max_rows);
	weights_free(&ws);
}

/* Every (K, N) of the Linear layers of ViT-B/16 and ViT-H/14 and of their text towers,
** each with the epilogue the model fuses into it (qkv: bias; attention output and fc2:
** bias and the residual stream, c += ...; fc1: bias and the model's activation; the final
** projection: nothing), at the model's token counts: one image (197 or 257 tokens), a
** batch of eight, the text tower's eight end-of-text rows, and a single row. */
enum clip_epilogue { PLAIN, BIAS, BIAS_RESIDUAL, BIAS_ACT };

static const struct clip_model {
	enum rf_activation act;
	struct { int64_t k, n; enum clip_epilogue epi; } layer[6];
	int64_t m[4];
} clip_models[] = {
	{ RF_ACT_QUICKGELU, { { 768, 2304, BIAS }, { 768, 768, BIAS_RESIDUAL }, { 768, 3072, BIAS_ACT },
	  { 3072, 768, BIAS_RESIDUAL }, { 768, 768, PLAIN }, { 768, 512, PLAIN } },
	  { 197, 1576, 8, 1 } },                                      /* ViT-B/16 (+ patch embed) */
	{ RF_ACT_QUICKGELU, { { 512, 1536, BIAS }, { 512, 512, BIAS_RESIDUAL }, { 512, 2048, BIAS_ACT },
	  { 2048, 512, BIAS_RESIDUAL } }, { 197, 1576, 8, 1 } },     /* its text tower */
	{ RF_ACT_GELU, { { 1280, 3840, BIAS }, { 1280, 1280, BIAS_RESIDUAL }, { 1280, 5120, BIAS_ACT },
	  { 5120, 1280, BIAS_RESIDUAL }, { 588, 1280, PLAIN }, { 1280, 1024, PLAIN } },
	  { 257, 2056, 8, 1 } },                                      /* ViT-H/14 */
	{ RF_ACT_GELU, { { 1024, 3072, BIAS }, { 1024, 1024, BIAS_RESIDUAL }, { 1024, 4096, BIAS_ACT },
	  { 4096, 1024, BIAS_RESIDUAL } }, { 257, 2056, 8, 1 } },    /* its text tower */
};

static void test_clip_shapes(rf_ctx *ctx, const char *kernel, int64_t max_rows)
{
	for (size_t md = 0; md < RF_ARRAY_LEN(clip_models); md++) {
		const struct clip_model *cm = &clip_models[md];
		for (size_t s = 0; s < RF_ARRAY_LEN(cm->layer) && cm->layer[s].k; s++) {
			enum clip_epilogue epi = cm->layer[s].epi;
			struct gemm_case gc = { .n = cm->layer[s].n, .k = cm->layer[s].k, .storage = RF_F32,
						.src = RF_F32, .bias = epi != PLAIN,
						.act = epi == BIAS_ACT ? cm->act : RF_ACT_NONE,
						.residual = epi == BIAS_RESIDUAL ? 2 : 0 };
			struct weights ws = weights_make(ctx, &gc);
			for (size_t i = 0; i < RF_ARRAY_LEN(cm->m); i++) {
				gc.m = cm->m[i];
				gc.lead = gc.m > 1000 ? 8 : 1;
				run_gemm_with(ctx, kernel, &gc, &ws, max_rows);
			}
			weights_free(&ws);
		}
	}
}

/* Shapes that are not multiples of any block: 1, primes, K % 4 != 0. Every epilogue for
** the small M (the lanes kernel builds a pipeline per epilogue and block height, and
** the tall blocks of large M take a while to compile); f16 storage on three M. */
static void test_odd_shapes(rf_ctx *ctx, const char *kernel, enum rf_dtype storage)
{
	static const int64_t m[] = { 1, 3, 5, 13, 97, 197, 257 };
	static const int64_t nk[][2] = { { 1, 1 }, { 3, 7 }, { 5, 1 }, { 13, 588 }, { 97, 5 },
					 { 197, 13 }, { 257, 97 }, { 2304, 3 }, { 1, 197 }, { 17, 12 } };
	for (size_t i = 0; i < RF_ARRAY_LEN(m); i++) {
		if (storage == RF_F16 && m[i] != 1 && m[i] != 13 && m[i] != 197)
			continue;
		for (size_t j = 0; j < RF_ARRAY_LEN(nk); j++) {
			struct gemm_case gc = { .m = m[i], .n = nk[j][0], .k = nk[j][1], .storage = storage,
						.src = RF_F32, .bias = (i + j) % 2 == 1 };
			if (m[i] <= 13) {
				gc.act = (enum rf_activation)((i + 2 * j) % 3);
				gc.residual = (int)((i + j) % 3);
			}
			run_gemm(ctx, kernel, &gc, 64);
		}
	}
}

/* f16 storage, f16/bf16 sources and transposed sources on real shapes (the largest only
** for the device's own kernel family: the others are slow where they are not native). */
static void test_sources(rf_ctx *ctx, const char *kernel, bool native)
{
	static const struct gemm_case cases[] = {
		{ 197, 2304, 768, RF_F16, RF_F32, false, true, RF_ACT_NONE, 0, 1 },
		{ 197, 768, 3072, RF_F16, RF_F16, false, true, RF_ACT_NONE, 2, 1 },
		{ 257, 5120, 1280, RF_F16, RF_BF16, false, true, RF_ACT_GELU, 0, 1 },
		{ 197, 512, 768, RF_F32, RF_F16, true, false, RF_ACT_NONE, 0, 1 },    /* visual proj */
		{ 8, 1024, 1280, RF_F16, RF_F32, true, false, RF_ACT_NONE, 0, 1 },
		{ 97, 13, 589, RF_F32, RF_BF16, true, true, RF_ACT_QUICKGELU, 1, 1 },
		{ 1576, 768, 768, RF_F16, RF_F32, false, true, RF_ACT_QUICKGELU, 1, 8 },
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(cases); i++)
		if (native || cases[i].m * cases[i].n * cases[i].k < 200000000)
			run_gemm(ctx, kernel, &cases[i], 24);
}

/* }===== */

/* {===== rf_op_matmul */

struct mm_case {
	const char *label;
	int64_t batch, m, n, k;
	struct rf_matmul_operand a, b, c;    /* tensors filled in by run_matmul */
	int64_t size_a, size_b, size_c;      /* elements of each tensor */
	float alpha, beta;
};

static double elem(const float *x, const struct rf_matmul_operand *o, int64_t b, int64_t i, int64_t j)
{
	return x[o->offset + b * o->batch_stride + i * o->row_stride + j * o->col_stride];
}

static void run_matmul(rf_ctx *ctx, const char *kernel, struct mm_case mc)
{
	float *a = random_floats((size_t)mc.size_a, -1, 1);
	float *b = random_floats((size_t)mc.size_b, -1, 1);
	float *c = random_floats((size_t)mc.size_c, -1, 1);
	float *out = malloc((size_t)mc.size_c * sizeof *out);
	struct rf_shape sa = rf_shape_of(1, mc.size_a), sb = rf_shape_of(1, mc.size_b),
			sc = rf_shape_of(1, mc.size_c);
	mc.a.t = device_tensor(ctx, &sa, a);
	mc.b.t = device_tensor(ctx, &sb, b);
	rf_tensor *tc = device_tensor(ctx, &sc, c);
	mc.c.t = tc;
	struct rf_matmul mm = { mc.batch, mc.m, mc.n, mc.k, mc.a, mc.b, mc.c, mc.alpha, mc.beta };
	CHECK_OK(rf_op_matmul(ctx, &mm));
	CHECK_OK(rf_tensor_download(tc, out, rf_tensor_nbytes(tc)));

	/* Every element of the C tensor: written ones against the reference, the rest
	** unchanged. */
	double *ref = malloc((size_t)mc.size_c * sizeof *ref);
	for (int64_t i = 0; i < mc.size_c; i++)
		ref[i] = c[i];
	for (int64_t bb = 0; bb < mc.batch; bb++)
		for (int64_t i = 0; i < mc.m; i++)
			for (int64_t j = 0; j < mc.n; j++) {
				double s = 0;
				for (int64_t kk = 0; kk < mc.k; kk++)
					s += elem(a, &mc.a, bb, i, kk) * elem(b, &mc.b, bb, kk, j);
				int64_t at = mc.c.offset + bb * mc.c.batch_stride + i * mc.c.row_stride +
					     j * mc.c.col_stride;
				ref[at] = mc.alpha * s + (mc.beta != 0 ? mc.beta * c[at] : 0.0);
			}
	char label[160];
	snprintf(label, sizeof label, "matmul %s %s", kernel, mc.label);
	rf_compare(label, out, ref, (size_t)mc.size_c, 2e-6 + 1e-7 * (double)mc.k, 1e-5);
	rf_tensor_destroy((rf_tensor *)mc.a.t);
	rf_tensor_destroy((rf_tensor *)mc.b.t);
	rf_tensor_destroy(tc);
	free(a);
	free(b);
	free(c);
	free(out);
	free(ref);
}

static void test_matmul(rf_ctx *ctx, const char *kernel)
{
	/* Attention of one head over packed qkv [B, N, 3W] (W = heads * dh): scores
	** [B, H, N, N] = q_h · k_hᵀ, then out[B, N, W] columns of head h = P · v_h. */
	int64_t bsz = 2, tok = 197, heads = 4, dh = 64, width = heads * dh, h = 3;
	struct mm_case qk = { "attention q.kT (B=2, N=197, dh=64, head 3)", bsz, tok, tok, dh,
		{ NULL, h * dh, tok * 3 * width, 3 * width, 1 },
		{ NULL, width + h * dh, tok * 3 * width, 1, 3 * width },
		{ NULL, h * tok * tok, heads * tok * tok, tok, 1 },
		bsz * tok * 3 * width, bsz * tok * 3 * width, bsz * heads * tok * tok, 0.125f, 0.0f };
	run_matmul(ctx, kernel, qk);
	struct mm_case pv = { "attention P.v (B=2, N=197, dh=64, head 3)", bsz, tok, dh, tok,
		{ NULL, h * tok * tok, heads * tok * tok, tok, 1 },
		{ NULL, 2 * width + h * dh, tok * 3 * width, 3 * width, 1 },
		{ NULL, h * dh, tok * width, width, 1 },
		bsz * heads * tok * tok, bsz * tok * 3 * width, bsz * tok * width, 1.0f, 0.0f };
	run_matmul(ctx, kernel, pv);
	/* Per-head folded matrices batched over 12 heads: [12, 64, 768] x [12, 768, 64]. */
	struct mm_case fold = { "batched 12 x (64x768 . 768x64)", 12, 64, 64, 768,
		{ NULL, 0, 64 * 768, 768, 1 }, { NULL, 0, 768 * 64, 64, 1 }, { NULL, 0, 64 * 64, 64, 1 },
		12 * 64 * 768, 12 * 768 * 64, 12 * 64 * 64, 1.0f, 0.0f };
	run_matmul(ctx, kernel, fold);
	/* Transposed A (column-major), transposed B, alpha and beta, offsets, a C that is a
	** window of a wider matrix (its other elements must stay untouched). */
	struct mm_case tr = { "Aᵀ Bᵀ alpha=0.5 beta=-2 offsets, C window", 3, 37, 29, 53,
		{ NULL, 5, 37 * 53 + 3, 1, 37 }, { NULL, 7, 53 * 29 + 1, 1, 53 },
		{ NULL, 11, 40 * 33, 33, 1 },
		5 + 3 * (37 * 53 + 3), 7 + 3 * (53 * 29 + 1), 11 + 3 * 40 * 33, 0.5f, -2.0f };
	run_matmul(ctx, kernel, tr);
	/* C column-major, B's batch stride 0 (shared), K = 1 and K % 4 == 3. */
	struct mm_case cm = { "C column-major, shared B, K=7", 4, 19, 23, 7,
		{ NULL, 0, 19 * 7, 7, 1 }, { NULL, 0, 0, 23, 1 }, { NULL, 0, 19 * 23, 1, 19 },
		4 * 19 * 7, 7 * 23, 4 * 19 * 23, 1.0f, 1.0f };
	run_matmul(ctx, kernel, cm);
	struct mm_case k1 = { "outer product K=1", 2, 33, 65, 1,
		{ NULL, 0, 33, 1, 1 }, { NULL, 0, 65, 65, 1 }, { NULL, 0, 33 * 65, 65, 1 },
		2 * 33, 2 * 65, 2 * 33 * 65, 1.0f, 0.0f };
	run_matmul(ctx, kernel, k1);
}

static void test_matmul_simple(rf_ctx *ctx)
{
	float a[2 * 3 * 4], b[2 * 4 * 5], bt[5 * 4], c[2 * 3 * 5];
	rf_rand_fill(a, RF_ARRAY_LEN(a), -1, 1);
	rf_rand_fill(b, RF_ARRAY_LEN(b), -1, 1);
	rf_rand_fill(bt, RF_ARRAY_LEN(bt), -1, 1);
	struct rf_shape sa = rf_shape_of(3, (int64_t)2, (int64_t)3, (int64_t)4);
	struct rf_shape sb = rf_shape_of(3, (int64_t)2, (int64_t)4, (int64_t)5);
	struct rf_shape sbt = rf_shape_of(2, (int64_t)5, (int64_t)4);
	struct rf_shape sc = rf_shape_of(3, (int64_t)2, (int64_t)3, (int64_t)5);
	rf_tensor *ta = device_tensor(ctx, &sa, a), *tb = device_tensor(ctx, &sb, b);
	rf_tensor *tbt = device_tensor(ctx, &sbt, bt), *tc = device_tensor(ctx, &sc, NULL);
	double ref[2 * 3 * 5];

	CHECK_OK(rf_op_matmul_simple(ctx, ta, tb, false, tc));
	CHECK_OK(rf_tensor_download(tc, c, sizeof c));
	for (int bb = 0; bb < 2; bb++)
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 5; j++) {
				double s = 0;
				for (int kk = 0; kk < 4; kk++)
					s += (double)a[bb * 12 + i * 4 + kk] * b[bb * 20 + kk * 5 + j];
				ref[bb * 15 + i * 5 + j] = s;
			}
	rf_compare("matmul_simple [2,3,4] . [2,4,5]", c, ref, 30, 1e-6, 1e-6);

	CHECK_OK(rf_op_matmul_simple(ctx, ta, tbt, true, tc));
	CHECK_OK(rf_tensor_download(tc, c, sizeof c));
	for (int bb = 0; bb < 2; bb++)
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 5; j++) {
				double s = 0;
				for (int kk = 0; kk < 4; kk++)
					s += (double)a[bb * 12 + i * 4 + kk] * bt[j * 4 + kk];
				ref[bb * 15 + i * 5 + j] = s;
			}
	rf_compare("matmul_simple [2,3,4] . [5,4]T (shared b)", c, ref, 30, 1e-6, 1e-6);

	CHECK_FAILS(rf_op_matmul_simple(ctx, ta, tbt, false, tc), RF_ERR_INVALID,
		    "a [2, 3, 4] and b [5, 4]: inner dimensions 4 and 5 differ");
	CHECK_FAILS(rf_op_matmul_simple(ctx, ta, tb, false, ta), RF_ERR_INVALID,
		    "c has shape [2, 3, 4], expected [2, 3, 5]");
	rf_tensor_destroy(ta);
	rf_tensor_destroy(tb);
	rf_tensor_destroy(tbt);
	rf_tensor_destroy(tc);
}

/* }===== */

/* {===== limits: storage ranges and grids */

/* C over the 128 MiB storage range of lavapipe: split into row chunks. */
static void test_big_output(rf_ctx *ctx, const char *kernel)
{
	struct gemm_case gc = { 33000, 1024, 4, RF_F32, RF_F32, false, true, RF_ACT_NONE, 0, 1 };
	run_gemm(ctx, kernel, &gc, 16);
}

/* More batches than one grid dimension holds (65535 workgroups), and for the generic
** kernel (8 rows per workgroup) more rows. */
static void test_big_grids(rf_ctx *ctx, const char *kernel)
{
	struct mm_case batches = { "70000 batches of 1 x 2 x 3", 70000, 1, 2, 3,
		{ NULL, 0, 3, 3, 1 }, { NULL, 0, 6, 2, 1 }, { NULL, 0, 2, 2, 1 },
		70000 * 3, 70000 * 6, 70000 * 2, 1.0f, 0.0f };
	run_matmul(ctx, kernel, batches);
	if (strcmp(kernel, "generic"))
		return;
	struct mm_case rows = { "600000 x 1 x 1 (rows past the grid)", 1, 600000, 1, 1,
		{ NULL, 0, 0, 1, 1 }, { NULL, 0, 0, 1, 1 }, { NULL, 0, 0, 1, 1 },
		600000, 1, 600000, 1.0f, 0.0f };
	run_matmul(ctx, kernel, rows);
}

/* A over the storage range: row chunks for the storage-buffer kernels, one texel view
** for the lanes kernel. */
static void test_big_input(rf_ctx *ctx, const char *kernel)
{
	struct gemm_case gc = { 33000, 5, 1028, RF_F16, RF_F32, false, false, RF_ACT_NONE, 0, 1 };
	run_gemm(ctx, kernel, &gc, 16);
}

/* }===== */

/* {===== misuse */

static void test_misuse(rf_ctx *ctx)
{
	float w[6 * 4] = { 0 };
	struct rf_weight_source ws = { w, RF_F32, 6, 4, false };
	rf_gemm_weights *gw = NULL;
	CHECK_OK(rf_gemm_weights_create(ctx, &ws, RF_F32, &gw));
	if (gw) {
		CHECK(rf_gemm_weights_n(gw) == 6 && rf_gemm_weights_k(gw) == 4);
		CHECK(rf_gemm_weights_bytes(gw) >= 6 * 4 * 4);
	}
	struct rf_shape s35 = rf_shape_of(2, (int64_t)3, (int64_t)5), s34 = rf_shape_of(2, (int64_t)3, (int64_t)4);
	struct rf_shape s36 = rf_shape_of(2, (int64_t)3, (int64_t)6), s37 = rf_shape_of(2, (int64_t)3, (int64_t)7);
	struct rf_shape s46 = rf_shape_of(2, (int64_t)4, (int64_t)6), s5 = rf_shape_of(1, (int64_t)5);
	rf_tensor *a35 = device_tensor(ctx, &s35, NULL), *a34 = device_tensor(ctx, &s34, NULL);
	rf_tensor *c36 = device_tensor(ctx, &s36, NULL), *c37 = device_tensor(ctx, &s37, NULL);
	rf_tensor *b46 = device_tensor(ctx, &s46, NULL), *b5 = device_tensor(ctx, &s5, NULL);

	struct rf_gemm g = { a35, gw, NULL, RF_ACT_NONE, NULL, c36 };
	CHECK_FAILS(rf_op_gemm(ctx, &g), RF_ERR_INVALID,
		    "a has shape [3, 5] but the weights are [6, 4]: its last dimension must be 4");
	g = (struct rf_gemm){ a34, gw, NULL, RF_ACT_NONE, NULL, c37 };
	CHECK_FAILS(rf_op_gemm(ctx, &g), RF_ERR_INVALID, "c has shape [3, 7], expected [3, 6]");
	g = (struct rf_gemm){ a34, gw, b5, RF_ACT_NONE, NULL, c36 };
	CHECK_FAILS(rf_op_gemm(ctx, &g), RF_ERR_INVALID, "bias has shape [5], expected [6]");
	g = (struct rf_gemm){ a34, gw, NULL, RF_ACT_NONE, c37, c36 };
	CHECK_FAILS(rf_op_gemm(ctx, &g), RF_ERR_INVALID, "residual has shape [3, 7], expected c's [3, 6]");
	g = (struct rf_gemm){ a34, gw, NULL, (enum rf_activation)7, NULL, c36 };
	CHECK_FAILS(rf_op_gemm(ctx, &g), RF_ERR_INVALID, "unknown activation");
	g = (struct rf_gemm){ a34, NULL, NULL, RF_ACT_NONE, NULL, c36 };
	CHECK_FAILS(rf_op_gemm(ctx, &g), RF_ERR_INVALID, "no weights");

	ws.dtype = RF_I32;
	rf_gemm_weights *bad = NULL;
	CHECK_FAILS(rf_gemm_weights_create(ctx, &ws, RF_F32, &bad), RF_ERR_INVALID, "source dtype I32");
	ws.dtype = RF_F32;
	CHECK_FAILS(rf_gemm_weights_create(ctx, &ws, RF_BF16, &bad), RF_ERR_INVALID, "storage dtype BF16");
	ws.k = 0;
	CHECK_FAILS(rf_gemm_weights_create(ctx, &ws, RF_F32, &bad), RF_ERR_INVALID, "shape [6, 0] is empty");
	CHECK(bad == NULL);
	/* An unknown family is refused when the context is created, not at some dispatch. */
	setenv("REFRACT_GEMM", "fastest", 1);
	rf_ctx *none = NULL;
	CHECK_FAILS(rf_ctx_create(NULL, &none), RF_ERR_INVALID,
		    "REFRACT_GEMM=fastest: expected auto, host, lanes, tiled or generic");
	CHECK(none == NULL);
	unsetenv("REFRACT_GEMM");
	ws.k = 4;

	/* matmul: C past its tensor, C overlapping A, C writing an element twice. */
	struct rf_matmul mm = { 1, 3, 6, 4, { a34, 0, 0, 4, 1 }, { b46, 0, 0, 6, 1 }, { a35, 0, 0, 6, 1 },
				1.0f, 0.0f };
	CHECK_FAILS(rf_op_matmul(ctx, &mm), RF_ERR_INVALID, "c (1 x 3 x 6, offset 0, strides 0/6/1) "
		    "reaches element 17 of a [3, 5] tensor of 15 elements");
	mm.c = (struct rf_matmul_operand){ c36, 0, 0, 6, 1 };
	mm.a = (struct rf_matmul_operand){ c36, 0, 0, 4, 1 };
	CHECK_FAILS(rf_op_matmul(ctx, &mm), RF_ERR_INVALID, "c overlaps a");
	mm.a = (struct rf_matmul_operand){ a34, 0, 0, 4, 1 };
	mm.c = (struct rf_matmul_operand){ c36, 0, 0, 1, 1 };
	CHECK_FAILS(rf_op_matmul(ctx, &mm), RF_ERR_INVALID, "write some elements twice");
	mm.c = (struct rf_matmul_operand){ c36, 0, 0, 6, -1 };
	CHECK_FAILS(rf_op_matmul(ctx, &mm), RF_ERR_INVALID, "c has a negative offset or stride");
	mm.c = (struct rf_matmul_operand){ c36, 0, 0, 6, 1 };
	mm.k = 0;
	CHECK_FAILS(rf_op_matmul(ctx, &mm), RF_ERR_INVALID, "k >= 1");
	mm.k = 4;
	CHECK_OK(rf_op_matmul(ctx, &mm));

	rf_gemm_weights_destroy(gw);
	rf_tensor_destroy(a35);
	rf_tensor_destroy(a34);
	rf_tensor_destroy(c36);
	rf_tensor_destroy(c37);
	rf_tensor_destroy(b46);
	rf_tensor_destroy(b5);
}

/* }===== */

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs one section and says how long it took (the whole test should stay well under a
** minute on a 2-core CPU device). */
#define SECTION(call) \
	do { \
		double t0_ = seconds(); \
		call; \
		printf("-- %s: %.1f s\n", #call, seconds() - t0_); \
	} while (0)

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	rf_rand_seed(20240611);
	printf("device: %s (%s)\n", rf_ctx_caps(ctx)->name,
	       rf_device_class_str(rf_ctx_caps(ctx)->device_class));
	/* The device's own families run every CLIP shape (a CPU device: the host's BLAS and
	** the lanes kernel); the others the rest of the list. */
	bool cpu = rf_ctx_caps(ctx)->device_class == RF_DEVICE_CPU;
	test_misuse(ctx);
	for (size_t v = 0; v < RF_ARRAY_LEN(kernels); v++) {
		static const enum rf_gemm_choice choices[] = {
			RF_GEMM_HOST, RF_GEMM_LANES, RF_GEMM_TILED, RF_GEMM_GENERIC,
		};
		rf_ctx *kctx = kernel_ctx(kernels[v]);
		CHECK(rf_ctx_caps(kctx)->gemm == choices[v]);
		if (!rf_gemm_family(kctx)) {
			printf("-- kernel family %s: not on this device (%s)\n", kernels[v], rf_error_message());
			rf_ctx_release(kctx);
			continue;
		}
		bool fast = cpu ? strcmp(kernels[v], "host") == 0 || strcmp(kernels[v], "lanes") == 0
				: strcmp(kernels[v], "tiled") == 0;
#ifdef __SANITIZE_ADDRESS__
		/* Sanitizer builds check memory, not numbers: every CLIP shape once, with the
		** device's first family (they took ~300 s per family there). */
		fast = fast && strcmp(kernels[v], cpu ? "host" : "tiled") == 0;
#endif
		printf("-- kernel family %s\n", kernels[v]);
		SECTION(test_odd_shapes(kctx, kernels[v], RF_F32));
		SECTION(test_odd_shapes(kctx, kernels[v], RF_F16));
		SECTION(test_sources(kctx, kernels[v], fast));
		SECTION(test_matmul(kctx, kernels[v]));
		SECTION(test_big_grids(kctx, kernels[v]));
		if (strcmp(kernels[v], "tiled"))   /* its chunking is the generic kernel's */
			SECTION(test_big_input(kctx, kernels[v]));
		if (fast) {
			SECTION(test_clip_shapes(kctx, kernels[v], 24));
			SECTION(test_big_output(kctx, kernels[v]));
		}
		rf_ctx_release(kctx);
	}
	test_matmul_simple(ctx);
	return rf_test_finish();
}
