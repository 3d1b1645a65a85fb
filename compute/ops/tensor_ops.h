/*
** tensor_ops.h: the general tensor kernels scripts and models build on: unary math,
** affine maps, reductions over any axes, strided copies (slice, transpose, permute,
** concat, broadcast-expand), row gathers and image patch extraction. f32 device tensors.
** Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_TENSOR_OPS_H
#define RF_COMPUTE_OPS_TENSOR_OPS_H

#include "tensor.h"

enum rf_unary_op {
	RF_UN_NEG, RF_UN_ABS, RF_UN_EXP, RF_UN_LOG, RF_UN_SQRT, RF_UN_RSQRT, RF_UN_TANH,
	RF_UN_SIGMOID, RF_UN_RELU, RF_UN_SQUARE, RF_UN_SIN, RF_UN_COS, RF_UN_FLOOR, RF_UN_CEIL,
	RF_UN_ROUND, RF_UN_SIGN, RF_UN_RECIPROCAL, RF_UN_NOT,
};

/* y = op(x); y may be x. */
enum rf_status rf_op_unary(rf_ctx *ctx, enum rf_unary_op op, const rf_tensor *x, rf_tensor *y);
/* y = clamp(scale * x + shift, lo, hi) (use -INFINITY/INFINITY for no clamp); y may be x. */
enum rf_status rf_op_affine(rf_ctx *ctx, const rf_tensor *x, float scale, float shift,
			    float lo, float hi, rf_tensor *y);
/* Fills with a constant. */
enum rf_status rf_op_fill(rf_ctx *ctx, rf_tensor *y, float value);
/* y = cond ? a : b with broadcasting (cond nonzero = true). */
enum rf_status rf_op_where(rf_ctx *ctx, const rf_tensor *cond, const rf_tensor *a,
			   const rf_tensor *b, rf_tensor *y);

enum rf_reduce_op { RF_RED_SUM, RF_RED_MEAN, RF_RED_MAX, RF_RED_MIN, RF_RED_VAR, RF_RED_STD,
		    RF_RED_ARGMAX, RF_RED_ARGMIN, RF_RED_PROD, RF_RED_NORM2 };

/* Reduces x over the axes whose bit is set in `axes_mask` (bit d = axis d). The output
** keeps those axes with size 1 (keepdims), so its shape is x's with reduced axes set to 1;
** callers reshape as they like. VAR/STD take `correction` (0 population, 1 unbiased).
** ARGMAX/ARGMIN need exactly one axis and write indices as f32 (exact below 2^24).
** Accumulation is pairwise/tree-shaped so long sums stay within f32 rounding. */
enum rf_status rf_op_reduce(rf_ctx *ctx, enum rf_reduce_op op, const rf_tensor *x,
			    uint32_t axes_mask, int correction, rf_tensor *y);

/* Strided view for copies: element idx (over `shape`) is at
** offset + sum_d idx[d] * stride[d] (in elements, strides may be 0 to broadcast). */
struct rf_view {
	int ndim;
	int64_t shape[RF_MAX_DIMS];
	int64_t offset;
	int64_t stride[RF_MAX_DIMS];
};

/* The contiguous row-major view of a whole tensor. */
struct rf_view rf_view_contiguous(const rf_tensor *t);

/* dst[dst_view] = src[src_view] elementwise over the (common) view shape. Any dtype of
** 4 bytes (f32/i32) or 2 bytes (f16/bf16) as long as src and dst share it. Covers slicing,
** transposes, permutes, concatenation (several copies into slices of one tensor) and
** expansion (stride 0). Views are bounds-checked against their tensors. */
enum rf_status rf_op_copy(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *src_view,
			  rf_tensor *dst, const struct rf_view *dst_view);

/* y[i, :] = x[index[i], :] for x [R, C], index an i32 device tensor [n], y [n, C]. An
** out-of-range index writes zeros (callers validate indices on the host first). */
enum rf_status rf_op_gather_rows(rf_ctx *ctx, const rf_tensor *x, const rf_tensor *index,
				 rf_tensor *y);

/* Patch extraction for a stride-p, kernel-p convolution without padding (CLIP's conv1):
** pixels [B, C, S, S] -> patches [B * (S/p)^2, C*p*p], row b*(P*P) + i*P + j holds
** pixel[b, c, i*p+u, j*p+v] at column c*p*p + u*p + v (matching conv1.weight [W, C, p, p]
** flattened). S must be a multiple of p. */
enum rf_status rf_op_patchify(rf_ctx *ctx, const rf_tensor *pixels, int patch, rf_tensor *patches);

#endif
