/*
** gemm_weights.c: prepared weights for rf_op_gemm. A weight is converted from its source
** dtype (and transposed if stored [k, n]) on the host, packed once into the layout the
** device's kernel family reads (gemm_internal.h), stored as f32 or f16, and uploaded.
** Compute layer (L4).
*/
#include "gemm_internal.h"
#include "context.h"
#include "status.h"
#include "transfer.h"

#include <stdlib.h>
#include <string.h>

static enum rf_status check_source(const struct rf_weight_source *src, enum rf_dtype storage)
{
	if (!src)
		return rf_error(RF_ERR_INVALID, "gemm weights: no source given");
	if (src->dtype != RF_F32 && src->dtype != RF_F16 && src->dtype != RF_BF16)
		return rf_error(RF_ERR_INVALID, "gemm weights: source dtype %s is not F32, F16 or BF16",
				rf_dtype_name(src->dtype));
	if (storage != RF_F32 && storage != RF_F16)
		return rf_error(RF_ERR_INVALID, "gemm weights: storage dtype %s is not F32 or F16",
				rf_dtype_name(storage));
	if (src->n < 1 || src->k < 1)
		return rf_error(RF_ERR_INVALID, "gemm weights: shape [%lld, %lld] is empty",
				(long long)src->n, (long long)src->k);
	/* Kernels index with 32 bits; 2^31 elements is far past any CLIP layer. */
	if (src->n > (INT64_C(1) << 31) / src->k)
		return rf_error(RF_ERR_UNSUPPORTED, "gemm weights: shape [%lld, %lld] has more than 2^31 "
				"elements", (long long)src->n, (long long)src->k);
	if (!src->data)
		return rf_error(RF_ERR_INVALID, "gemm weights: source data is NULL");
	return RF_OK;
}

/* W as f32 [n, k], whatever the source dtype and orientation. */
static enum rf_status source_to_f32(const struct rf_weight_source *src, float **out)
{
	size_t count = (size_t)(src->n * src->k);
	float *flat = malloc(count * sizeof *flat);
	if (!flat)
		return rf_error(RF_ERR_OOM_HOST, "gemm weights: %zu bytes for conversion", count * 4);
	rf_convert_to_f32(src->dtype, src->data, flat, count);
	if (!src->transposed) {
		*out = flat;
		return RF_OK;
	}
	float *w = malloc(count * sizeof *w);
	if (!w) {
		free(flat);
		return rf_error(RF_ERR_OOM_HOST, "gemm weights: %zu bytes for the transpose", count * 4);
	}
	for (int64_t kk = 0; kk < src->k; kk++)
		for (int64_t n = 0; n < src->n; n++)
			w[n * src->k + kk] = flat[kk * src->n + n];
	free(flat);
	*out = w;
	return RF_OK;
}

/* Panels: texel (p, q, j) holds W[p*np + j][4q .. 4q+3]; zeros past N and K. */
static void pack_panels(const float *w, int64_t n, int64_t k, uint32_t np, int64_t kq, float *out)
{
	int64_t panels = RF_CEIL_DIV(n, np);
	for (int64_t p = 0; p < panels; p++)
		for (int64_t q = 0; q < kq; q++)
			for (uint32_t j = 0; j < np; j++) {
				float *texel = out + ((p * kq + q) * np + j) * 4;
				int64_t row = p * np + j;
				for (int i = 0; i < 4; i++) {
					int64_t kk = 4 * q + i;
					texel[i] = row < n && kk < k ? w[row * k + kk] : 0.0f;
				}
			}
}

/* Rows: W[n][k] at n*ld + k; zeros in the padding. */
static void pack_rows(const float *w, int64_t n, int64_t k, int64_t ld, float *out)
{
	for (int64_t row = 0; row < n; row++) {
		memcpy(out + row * ld, w + row * k, (size_t)k * sizeof *out);
		memset(out + row * ld + k, 0, (size_t)(ld - k) * sizeof *out);
	}
}

/* Packs `w` for the record's kernel, converts to its storage dtype and uploads. */
static enum rf_status pack_and_upload(rf_gemm_weights *g, const float *w)
{
	size_t count;
	if (g->kernel == RF_MM_LANES)
		count = (size_t)(RF_CEIL_DIV(g->n, g->np) * g->kq * g->np * 4);
	else
		count = (size_t)(g->n * g->ld);
	float *packed = malloc(count * sizeof *packed);
	if (!packed)
		return rf_error(RF_ERR_OOM_HOST, "gemm weights: %zu bytes for packing", count * 4);
	if (g->kernel == RF_MM_LANES)
		pack_panels(w, g->n, g->k, g->np, g->kq, packed);
	else
		pack_rows(w, g->n, g->k, g->ld, packed);
	size_t esize = rf_dtype_size(g->storage);
	/* f16 narrows in place: element i moves to bytes [2i, 2i+2), below where it was read. */
	if (g->storage == RF_F16)
		for (size_t i = 0; i < count; i++) {
			uint16_t h = rf_float_to_half(packed[i]);
			memcpy((char *)packed + 2 * i, &h, 2);
		}
	/* Round up to whole 32-bit words: the storage kernels read f16 pairs as words. */
	uint64_t bytes = RF_ALIGN_UP((uint64_t)count * esize, 4);
	if (bytes > count * esize)
		memset((char *)packed + count * esize, 0, bytes - count * esize);
	enum rf_status s = rf_mem_alloc(g->ctx, bytes, &g->mem);
	if (s == RF_OK)
		s = rf_mem_upload(g->ctx, &g->mem, 0, packed, bytes);
	free(packed);
	return s;
}

enum rf_status rf_gemm_weights_create(rf_ctx *ctx, const struct rf_weight_source *src,
				      enum rf_dtype storage, rf_gemm_weights **out)
{
	*out = NULL;
	enum rf_status s = check_source(src, storage);
	if (s != RF_OK)
		return s;
	enum rf_mm_kernel kernel;
	if ((s = rf_mm_kernel_choose(ctx, &kernel)) != RF_OK)
		return s;
	rf_gemm_weights *g = calloc(1, sizeof *g);
	if (!g)
		return rf_error(RF_ERR_OOM_HOST, "gemm weights: allocating the record");
	g->ctx = rf_ctx_retain(ctx);
	g->storage = storage;
	g->kernel = kernel;
	g->n = src->n;
	g->k = src->k;
	/* Narrow weights get narrow panels rather than mostly zero ones. */
	g->np = src->n >= RF_MM_PANEL ? RF_MM_PANEL : (uint32_t)RF_ALIGN_UP(src->n, 4);
	g->kq = RF_CEIL_DIV(src->k, 4);
	g->ld = RF_ALIGN_UP(src->k, 4);
	float *w = NULL;
	s = source_to_f32(src, &w);
	if (s == RF_OK)
		s = pack_and_upload(g, w);
	free(w);
	if (s != RF_OK) {
		rf_gemm_weights_destroy(g);
		return s;
	}
	*out = g;
	return RF_OK;
}

void rf_gemm_weights_destroy(rf_gemm_weights *w)
{
	if (!w)
		return;
	rf_mem_free(w->ctx, &w->mem);
	rf_ctx_release(w->ctx);
	free(w);
}

int64_t rf_gemm_weights_n(const rf_gemm_weights *w)
{
	return w->n;
}

int64_t rf_gemm_weights_k(const rf_gemm_weights *w)
{
	return w->k;
}

uint64_t rf_gemm_weights_bytes(const rf_gemm_weights *w)
{
	return w->mem.size;
}

const char *rf_gemm_weights_kernel(const rf_gemm_weights *w)
{
	return rf_mm_kernel_name(w->kernel);
}
