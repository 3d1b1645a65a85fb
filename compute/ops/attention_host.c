/*
** attention_host.c: rf_op_attention on CPU devices that compute their products on the
** host (the `host` family, gemm.h): per image and head, the scores Q·Kᵀ and the output
** P·V through the host's BLAS on the device's memory in place, the softmax rows in
** between (host_math.c). On lavapipe the attention kernel ran at 13-24 GFLOP/s and took
** ~60% of a ViT's device time once the Linear layers left it. Compute layer (L4).
*/
#include "attention_host.h"
#include "context.h"
#include "host_math.h"
#include "memory.h"
#include "profile.h"
#include "status.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct host_attention {
	const float *qkv;
	float *out, *probs, *cls;
	int64_t batch, n, width, heads, dh;
	bool causal;
	float scale;
};

static enum rf_status map_all(rf_ctx *ctx, const struct rf_attention *a, struct host_attention *h)
{
	void *q, *o, *p = NULL, *c = NULL;
	enum rf_status s;
	if ((s = rf_mem_host_ptr(ctx, &a->qkv->mem, &q)) != RF_OK ||
	    (s = rf_mem_host_ptr(ctx, &a->out->mem, &o)) != RF_OK ||
	    (a->probs && (s = rf_mem_host_ptr(ctx, &a->probs->mem, &p)) != RF_OK) ||
	    (a->cls_probs && (s = rf_mem_host_ptr(ctx, &a->cls_probs->mem, &c)) != RF_OK))
		return s;
	h->qkv = q;
	h->out = o;
	h->probs = p;
	h->cls = c;
	return RF_OK;
}

/* One head of one image: scores into `s` [n, n], softmax, then out = P·V. */
static void one_head(const struct host_attention *h, int64_t b, int64_t head, float *s)
{
	int n = (int)h->n, dh = (int)h->dh, ld = (int)(3 * h->width);
	const float *q = h->qkv + b * h->n * 3 * h->width + head * h->dh;
	const float *k = q + h->width, *v = q + 2 * h->width;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, dh, h->scale, q, ld, k, ld, 0.0f, s, n);
	for (int64_t i = 0; i < h->n; i++)
		rf_host_softmax_row(s + i * h->n, h->causal ? (size_t)i + 1 : (size_t)h->n, (size_t)h->n);
	if (h->cls)
		memcpy(h->cls + (b * h->heads + head) * h->n, s, (size_t)h->n * sizeof *s);
	float *o = h->out + b * h->n * h->width + head * h->dh;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dh, n, 1.0f, s, n, v, ld, 0.0f, o,
		    (int)h->width);
}

enum rf_status rf_attention_host(rf_ctx *ctx, const struct rf_attention *a)
{
	struct host_attention h = {
		.batch = a->qkv->shape.dim[0], .n = a->qkv->shape.dim[1], .width = a->qkv->shape.dim[2] / 3,
		.heads = a->heads, .causal = a->causal,
	};
	h.dh = h.width / h.heads;
	h.scale = (float)(1.0 / sqrt((double)h.dh));
	if (h.batch == 0 || h.n == 0)
		return RF_OK;
	if (h.n > INT32_MAX / 3 || 3 * h.width > INT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "attention: %lld tokens of width %lld are past the "
				"BLAS's int", (long long)h.n, (long long)h.width);
	enum rf_status s;
	if ((s = rf_ctx_finish(ctx)) != RF_OK || (s = map_all(ctx, a, &h)) != RF_OK)
		return s;
	/* Without a probabilities output the scores of one head at a time need a scratch. */
	float *scratch = NULL;
	if (!h.probs && !(scratch = malloc((size_t)(h.n * h.n) * sizeof *scratch)))
		return rf_error(RF_ERR_OOM_HOST, "attention: %lld x %lld scores", (long long)h.n, (long long)h.n);
	double t0 = rf_host_now_ns();
	/* Products of a few MFLOP: one BLAS thread each. With several, every call waits for
	** the others, which on a busy machine means waiting out a time slice (measured: 1.5
	** GFLOP/s at ViT-B/16 sizes with 2 threads under load). */
	int threads = openblas_get_num_threads();
	openblas_set_num_threads(1);
	for (int64_t b = 0; b < h.batch; b++)
		for (int64_t head = 0; head < h.heads; head++)
			one_head(&h, b, head, h.probs ? h.probs + (b * h.heads + head) * h.n * h.n : scratch);
	openblas_set_num_threads(threads);
	free(scratch);
	rf_ctx_profile_host(ctx, "attention (host)", rf_host_now_ns() - t0);
	return RF_OK;
}
