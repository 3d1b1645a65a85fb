/*
** gemm_host.c: rf_op_gemm on CPU devices whose memory the host can map (lavapipe: device
** memory is host memory), through the host's BLAS (OpenBLAS cblas_sgemm) reading and
** writing the tensors in place. Compute layer (L4).
**
** Why: lavapipe 22.3 compiles every shader load into a gather (a texel fetch is a call of
** ~45 instructions), lowers fma() to a multiply and an add, and keeps loop-carried values
** in memory behind a blend; the best register-blocked kernel (gemm_lanes.glsl) runs at
** 20-35 GFLOP per CPU-second where OpenBLAS's sgemm runs at ~160 on the same core
** (measured with `refract bench gemm --threads 1` and LP_NUM_THREADS=1). A forward pass
** spent ~90% of its time in the Linear layers, so on a CPU device they go to the BLAS
** that the host has, as do attention (attention_host.c) and the strided products BLAS
** can read; LayerNorm, copies and the decomposition's kernels stay on the device.
**
** Order: the work recorded before the product is run first (rf_ctx_finish), the product
** is computed on the host, and the work recorded after it sees its result (host writes
** precede the next submit). The output is prefilled with the bias so that one sgemm with
** beta = 1 gives A·Wᵀ + bias; the activation follows on the host (vectorized), and a
** residual is added last. f16 weights are widened (a whole layer at a time) into
** a scratch (F16C where the CPU has it). REFRACT_GEMM=lanes turns this family off.
*/
#include "gemm_internal.h"
#include "host_math.h"
#include "context.h"
#include "profile.h"
#include "status.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define RF_HAVE_F16C_PATH 1
#endif

/* f16 weights are widened into a scratch of at most this many bytes per sgemm call: a
** whole ViT-H layer (26 MiB) at once; narrower column panels (256 at K = 3072 gave 0.75x
** the speed of f32 weights) leave the BLAS less to block over. */
#define F16_SCRATCH_BYTES ((size_t)64 << 20)

/* {===== OpenBLAS's kernels */

const char *rf_host_blas_core(void)
{
	return openblas_get_corename();
}

static bool named(const char *core, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(core, names[i]))
			return true;
	return false;
}

const char *rf_host_blas_better_core(void)
{
#if defined(__x86_64__) || defined(__i386__)
	static const char *const avx512[] = { "SkylakeX", "Cooperlake", "SapphireRapids" };
	static const char *const avx2[] = { "Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids" };
	const char *core = openblas_get_corename();
	if (!core)
		return NULL;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512cd"))
		return named(core, avx512, RF_ARRAY_LEN(avx512)) ? NULL : "SkylakeX";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return named(core, avx2, RF_ARRAY_LEN(avx2)) ? NULL : "Haswell";
#endif
	return NULL;
}

/* }===== */

/* {===== f16 weights */

static void widen_scalar(const uint16_t *src, float *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = rf_half_to_float(src[i]);
}

#ifdef RF_HAVE_F16C_PATH
__attribute__((target("avx,f16c"))) static void widen_f16c(const uint16_t *src, float *dst, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
	widen_scalar(src + i, dst + i, n - i);
}
#endif

#ifdef RF_HAVE_F16C_PATH
/* CPUID leaf 1's F16C bit: clang 14's __builtin_cpu_supports does not know "f16c". */
static bool cpu_has_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

/* F16C converts exactly as rf_half_to_float does (every half is a float). */
static void widen(const uint16_t *src, float *dst, size_t n)
{
#ifdef RF_HAVE_F16C_PATH
	if (cpu_has_f16c() && __builtin_cpu_supports("avx")) {
		widen_f16c(src, dst, n);
		return;
	}
#endif
	widen_scalar(src, dst, n);
}

/* }===== */

/* C = [bias rows] (the caller's sgemm then adds A·Wᵀ with beta = 1). */
static void prefill_bias(float *c, const float *bias, int64_t m, int64_t n)
{
	for (int64_t i = 0; i < m; i++)
		memcpy(c + i * n, bias, (size_t)n * sizeof *c);
}

/* out = A·Wᵀ + bias, the product's rows in `out` (row stride N). */
static enum rf_status product(rf_ctx *ctx, const struct rf_gemm *g, int64_t m, rf_tensor *out)
{
	const rf_gemm_weights *w = g->w;
	void *pa, *pw, *pc, *pb = NULL;
	enum rf_status s;
	if ((s = rf_mem_host_ptr(ctx, &g->a->mem, &pa)) != RF_OK ||
	    (s = rf_mem_host_ptr(ctx, &w->mem, &pw)) != RF_OK ||
	    (s = rf_mem_host_ptr(ctx, &out->mem, &pc)) != RF_OK ||
	    (g->bias && (s = rf_mem_host_ptr(ctx, &g->bias->mem, &pb)) != RF_OK))
		return s;
	int mi = (int)m, n = (int)w->n, k = (int)w->k, ld = (int)w->ld;
	float *c = pc, beta = pb ? 1.0f : 0.0f;
	if (pb)
		prefill_bias(c, pb, m, n);
	if (w->storage == RF_F32) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, n, k, 1.0f, pa, k, pw, ld, beta, c, n);
		return RF_OK;
	}
	int cols = (int)RF_MIN((int64_t)n, RF_MAX((int64_t)256, (int64_t)(F16_SCRATCH_BYTES / ((size_t)ld * 4))));
	float *panel = malloc((size_t)cols * (size_t)ld * sizeof *panel);
	if (!panel)
		return rf_error(RF_ERR_OOM_HOST, "gemm: %zu bytes to widen f16 weights",
				(size_t)cols * (size_t)ld * sizeof *panel);
	const uint16_t *wh = pw;
	for (int j0 = 0; j0 < n; j0 += cols) {
		int nj = RF_MIN(cols, n - j0);
		widen(wh + (size_t)j0 * (size_t)ld, panel, (size_t)nj * (size_t)ld);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, nj, k, 1.0f, pa, k, panel, ld, beta,
			    c + j0, n);
	}
	free(panel);
	return RF_OK;
}

/* C = residual + T elementwise on the host (the residual may be C). */
static enum rf_status add_residual(rf_ctx *ctx, const rf_tensor *res, const rf_tensor *t, rf_tensor *c)
{
	void *pr, *pt, *pc;
	enum rf_status s;
	if ((s = rf_mem_host_ptr(ctx, &res->mem, &pr)) != RF_OK ||
	    (s = rf_mem_host_ptr(ctx, &t->mem, &pt)) != RF_OK ||
	    (s = rf_mem_host_ptr(ctx, &c->mem, &pc)) != RF_OK)
		return s;
	const float *r = pr, *tt = pt;
	float *cc = pc;
	size_t n = (size_t)rf_tensor_numel(c);
	for (size_t i = 0; i < n; i++)
		cc[i] = r[i] + tt[i];
	return RF_OK;
}

/* With a residual the product goes to a scratch T = act(A·Wᵀ + bias) first and C =
** residual + T after it, so that the result is bit for bit what the same product without
** the residual followed by an addition gives (the hooks of clip_block.c compute the
** branch apart and add it; interventions that write back what was there must leave the
** output identical). */
enum rf_status rf_gemm_host(rf_ctx *ctx, const struct rf_gemm *g)
{
	int64_t m = rf_tensor_numel(g->a) / g->w->k;
	if (m == 0)
		return RF_OK;
	if (m > INT32_MAX || g->w->ld > INT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "gemm: %lld rows are past the BLAS's int", (long long)m);
	rf_tensor *t = NULL;
	enum rf_status s = RF_OK;
	if (g->residual && (s = rf_tensor_create(ctx, RF_F32, &g->c->shape, &t)) != RF_OK)
		return s;
	rf_tensor *out = t ? t : g->c;
	if ((s = rf_ctx_finish(ctx)) != RF_OK)
		goto done;
	double t0 = rf_host_now_ns();
	if ((s = product(ctx, g, m, out)) != RF_OK)
		goto done;
	if (g->act != RF_ACT_NONE) {
		void *po;
		if ((s = rf_mem_host_ptr(ctx, &out->mem, &po)) != RF_OK)
			goto done;
		rf_host_activate(g->act, po, (size_t)rf_tensor_numel(out));
	}
	if (g->residual)
		s = add_residual(ctx, g->residual, t, g->c);
	rf_ctx_profile_host(ctx, "gemm (host)", rf_host_now_ns() - t0);
done:
	rf_tensor_destroy(t);
	return s;
}

/* {===== strided products */

/* How BLAS reads an operand: row-major with leading dimension `ld`, transposed or not;
** false when neither stride is 1 (or the other does not fit an int). */
static bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool *trans, int *ld)
{
	if (cs == 1 && (rows == 1 || rs >= cols) && rs <= INT32_MAX) {
		*trans = false;
		*ld = (int)RF_MAX(rs, RF_MAX(cols, 1));
		return true;
	}
	if (rs == 1 && (cols == 1 || cs >= rows) && cs <= INT32_MAX) {
		*trans = true;
		*ld = (int)RF_MAX(cs, RF_MAX(rows, 1));
		return true;
	}
	return false;
}

bool rf_matmul_host_fits(const struct rf_mm_problem *p)
{
	bool t;
	int ld;
	return p->m <= INT32_MAX && p->n <= INT32_MAX && p->k <= INT32_MAX &&
	       blas_layout(p->m, p->k, p->a.rs, p->a.cs, &t, &ld) &&
	       blas_layout(p->k, p->n, p->b.rs, p->b.cs, &t, &ld) &&
	       blas_layout(p->m, p->n, p->c.rs, p->c.cs, &t, &ld) && p->c.dtype == RF_F32 &&
	       p->a.dtype == RF_F32 && p->b.dtype == RF_F32 && !p->bias && !p->res &&
	       p->act == RF_ACT_NONE && !p->panels;
}

enum rf_status rf_matmul_host(rf_ctx *ctx, const struct rf_mm_problem *p)
{
	void *pa, *pb, *pc;
	enum rf_status s;
	if ((s = rf_ctx_finish(ctx)) != RF_OK || (s = rf_mem_host_ptr(ctx, p->a.mem, &pa)) != RF_OK ||
	    (s = rf_mem_host_ptr(ctx, p->b.mem, &pb)) != RF_OK || (s = rf_mem_host_ptr(ctx, p->c.mem, &pc)) != RF_OK)
		return s;
	bool ta, tb, tc;
	int lda, ldb, ldc;
	blas_layout(p->m, p->k, p->a.rs, p->a.cs, &ta, &lda);
	blas_layout(p->k, p->n, p->b.rs, p->b.cs, &tb, &ldb);
	blas_layout(p->m, p->n, p->c.rs, p->c.cs, &tc, &ldc);
	int m = (int)p->m, n = (int)p->n, k = (int)p->k;
	double t0 = rf_host_now_ns();
	/* Small products on one BLAS thread: with several, each call waits for all of them
	** (a time slice when the machine is busy; see attention_host.c). */
	int threads = openblas_get_num_threads();
	bool small = p->m * p->n * p->k < (INT64_C(1) << 24);
	if (small)
		openblas_set_num_threads(1);
	for (int64_t b = 0; b < p->batch; b++) {
		const float *a = (const float *)pa + p->a.offset + b * p->a.bs;
		const float *bb = (const float *)pb + p->b.offset + b * p->b.bs;
		float *c = (float *)pc + p->c.offset + b * p->c.bs;
		/* A column-major C is the row-major Cᵀ = Bᵀ·Aᵀ. */
		if (!tc)
			cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
				    m, n, k, p->alpha, a, lda, bb, ldb, p->beta, c, ldc);
		else
			cblas_sgemm(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, ta ? CblasNoTrans : CblasTrans,
				    n, m, k, p->alpha, bb, ldb, a, lda, p->beta, c, ldc);
	}
	if (small)
		openblas_set_num_threads(threads);
	rf_ctx_profile_host(ctx, "matmul (host)", rf_host_now_ns() - t0);
	return RF_OK;
}

/* }===== */
