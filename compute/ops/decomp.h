/*
** decomp.h: the four kernels of the decomposition (compute/model/decompose*.c): adding
** folded per-head products into output slots, weighting value rows by the CLS query's
** attention, completing those rows with ln_post's shares, and mapping finished slots
** through the frozen ln_post. All tensors are f32 on the device, bound whole (each must
** fit one storage binding). Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_DECOMP_H
#define RF_COMPUTE_OPS_DECOMP_H

#include "tensor.h"

/* slot[b, m', h', c] += sum over the tokens m and heads h that m', h' stand for of
** (alpha ? alpha[b, h, m + alpha_m0] : 1) * t[b, m, h, c]
** where m' is m (or 0 with sum_tokens) and h' is h (or 0 with sum_heads). */
struct rf_decomp_accumulate {
	const rf_tensor *t;       /* products [B, tokens, heads, dim], images t_batch elements apart */
	const rf_tensor *alpha;   /* NULL, or weights [B, heads, alpha_n] */
	rf_tensor *slot;          /* [B, tokens or 1, heads or 1, dim] (any shape of that size) */
	uint32_t batch, tokens, heads, dim;
	uint32_t t_batch;
	uint32_t alpha_n, alpha_m0;
	bool sum_tokens, sum_heads;
};
enum rf_status rf_op_decomp_accumulate(rf_ctx *ctx, const struct rf_decomp_accumulate *a);

/* out[b*N + m, h*(dh+4) + j] = qkv[b*N + m, 2W + h*dh + j] * cls_probs[b, h, m] for j < dh
** (W = heads * dh): every source token's value row weighted by the CLS query's attention,
** each head's dh entries followed by 4 that rf_op_decomp_extra writes.
** qkv [B*N, 3W], cls_probs [B, heads, N], out [B*N, heads*(dh+4)]. */
enum rf_status rf_op_decomp_scale_values(rf_ctx *ctx, const rf_tensor *qkv, const rf_tensor *cls_probs,
					 uint32_t batch, uint32_t tokens, uint32_t heads,
					 uint32_t head_width, rf_tensor *out);

/* Completes every head block of v [B*N*heads, dh+4] (row (b*N + m)*heads + h): with
** s = 1 / (std[b] norm[b]), the dh values are multiplied by s and the 4 entries after them
** become s, w std[b] s, -w mean[b] s and 0, so the block times an extended fold gives the
** summand's finished contribution. mean, std, norm: [B] (any shape of B elements). */
enum rf_status rf_op_decomp_extra(rf_ctx *ctx, const rf_tensor *mean, const rf_tensor *std,
				  const rf_tensor *norm, uint32_t tokens, uint32_t heads,
				  uint32_t head_width, float w, rf_tensor *v);

/* No bias row for rf_op_decomp_finish. */
#define RF_DECOMP_NO_BIAS 0xffffffffu

/* slot [B, ..., C] = ((slot + bias) / std[b] + w (bpp - mean[b] g1p / std[b])) / norm[b]:
** raw contributions through the frozen ln_post, divided by the embedding's norm.
** consts [R, C]: row 0 bpp, row 1 g1p, row bias_row the slot's bias (RF_DECOMP_NO_BIAS:
** none). mean, std, norm: [B]; B is their size, C consts' last dimension. */
enum rf_status rf_op_decomp_finish(rf_ctx *ctx, rf_tensor *slot, const rf_tensor *consts,
				   uint32_t bias_row, float w, const rf_tensor *mean,
				   const rf_tensor *std, const rf_tensor *norm);

#endif
