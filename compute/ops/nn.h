/*
** nn.h: the row-wise kernels of a transformer: LayerNorm (optionally emitting each row's
** mean and std), softmax with scale and causal mask, activations, and multi-head
** attention over a packed qkv tensor. All f32 device tensors, contiguous, row-major.
** Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_NN_H
#define RF_COMPUTE_OPS_NN_H

#include "tensor.h"
#include "gemm.h"

/* y[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta over the last axis, var as the
** reference computes it: mean(x^2) - mean^2 (see the golden README), accumulated so that
** it matches a double-precision reference to f32 rounding (a corrected two-pass method:
** no cancellation when |mean| >> std). gamma/beta may be NULL (1/0), else hold `cols`
** elements. mean_out/std_out (each NULL or any shape of `rows` elements, rows = numel /
** cols) receive mean and sqrt(var + eps). y may be x. eps must be finite and >= 0.
** Tensors larger than one storage binding are processed in windows of rows. */
enum rf_status rf_op_layernorm(rf_ctx *ctx, const rf_tensor *x, const rf_tensor *gamma,
			       const rf_tensor *beta, float eps, rf_tensor *y,
			       rf_tensor *mean_out, rf_tensor *std_out);

/* y[r, j] = softmax_j(scale * x[r, j]) over the last axis; with `causal`, rows are
** [..., q, k] (x needs at least 2 axes) and entries with k > q (per the row's index
** modulo q-count) are excluded and written as 0. y may be x. scale must be finite. */
enum rf_status rf_op_softmax(rf_ctx *ctx, const rf_tensor *x, float scale, bool causal,
			     rf_tensor *y);

/* y = act(x) elementwise: GELU is exact (erf, through an erfc accurate to a few ulp down
** to underflow), QuickGELU is x*sigmoid(1.702x), NONE copies (nothing when y is x).
** y must have x's shape and may be x. */
enum rf_status rf_op_activation(rf_ctx *ctx, enum rf_activation act, const rf_tensor *x,
				rf_tensor *y);

/* Multi-head scaled dot-product attention over packed projections, as CLIP computes it.
**   qkv   [B, N, 3W]: q = columns [0,W), k = [W,2W), v = [2W,3W); head h uses columns
**         [h*dh, (h+1)*dh) of each, dh = W / heads.
**   out   [B, N, W]: out[b, n, h*dh + j] = sum_m P_h[n, m] v[b, m, h*dh + j]
**         (heads concatenated, before the output projection).
**   P_h = softmax_m(q_h[n] · k_h[m] / sqrt(dh)) (causal: m <= n only).
** Optional outputs (NULL to skip):
**   probs     [B, H, N, N]  every attention probability
**   cls_probs [B, H, N]     row n = 0 of each head's probabilities (what the
**                           decomposition needs, without storing N x N).
** One pass over the keys with an online softmax; probabilities cost a second pass (all
** rows for probs, the first row block only for cls_probs). Widths W and dh that are
** multiples of 4 take the fast path (vec4 loads); any other dh works, more slowly. qkv
** is read through a texel view (up to maxTexelBufferElements texels from the start of
** its memory block); the outputs are written in windows of whole batches, so one
** batch's probabilities must fit one storage binding. heads <= 65535. */
struct rf_attention {
	const rf_tensor *qkv;
	int heads;
	bool causal;
	rf_tensor *out;
	rf_tensor *probs;
	rf_tensor *cls_probs;
};

enum rf_status rf_op_attention(rf_ctx *ctx, const struct rf_attention *a);

#endif
