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

/* y = op(x); y must have x's shape and may be x. EXP, LOG, TANH and SIGMOID are
** accurate to a few ulp (own f32 implementations); SIN, COS and SQRT are the device's.
** ROUND rounds halves to even; SIGN(0) = 0; NOT(x) = (x == 0); LOG(x < 0) is NaN. */
enum rf_status rf_op_unary(rf_ctx *ctx, enum rf_unary_op op, const rf_tensor *x, rf_tensor *y);
/* y = clamp(scale * x + shift, lo, hi) (use -INFINITY/INFINITY for no clamp); y may be x.
** NaN stays NaN. */
enum rf_status rf_op_affine(rf_ctx *ctx, const rf_tensor *x, float scale, float shift,
			    float lo, float hi, rf_tensor *y);
/* Fills an F32 tensor with `value`, or an I32 tensor with (int32_t)value (which must be
** an integer in range). A transfer-queue fill: any size, no shader. */
enum rf_status rf_op_fill(rf_ctx *ctx, rf_tensor *y, float value);
/* y = cond ? a : b with broadcasting (cond nonzero = true, NaN counts as true). All F32;
** y must have the broadcast shape, which may need at most 6 axes once neighbouring axes
** that broadcast alike are merged (RF_ERR_UNSUPPORTED beyond). */
enum rf_status rf_op_where(rf_ctx *ctx, const rf_tensor *cond, const rf_tensor *a,
			   const rf_tensor *b, rf_tensor *y);

enum rf_reduce_op { RF_RED_SUM, RF_RED_MEAN, RF_RED_MAX, RF_RED_MIN, RF_RED_VAR, RF_RED_STD,
		    RF_RED_ARGMAX, RF_RED_ARGMIN, RF_RED_PROD, RF_RED_NORM2 };

/* Reduces x over the axes whose bit is set in `axes_mask` (bit d = axis d). The output
** keeps those axes with size 1 (keepdims), so its shape is x's with reduced axes set to 1;
** y may have that shape or any other with the same number of elements (the kept axes in
** row-major order), so callers reshape as they like. VAR/STD take `correction` (0
** population, 1 unbiased; NaN when the count is <= correction) and use two passes (mean,
** then squared deviations). ARGMAX/ARGMIN need exactly one axis and write indices as f32
** (at most 2^24 elements). NaN wins MAX/MIN and the first NaN wins ARGMAX/ARGMIN, as in
** NumPy; ties go to the first index. MAX/MIN/ARG* over an empty axis are errors; an
** empty SUM is 0, PROD 1. Sums are compensated (Kahan) within a chunk and combined in a
** tree of chunks; products are compensated too, so results stay within a few f32
** roundings of the exact value (a 10^6-element sum: ~1e-8 relative). x is read through
** a texel view, so it may exceed one storage binding. */
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

/* Checks a copy's views: each within its tensor, of equal shapes, and no stride-0 axis
** in dst (it would write one element several times). `op` starts the messages. */
enum rf_status rf_views_check(const char *op, const rf_tensor *src, const struct rf_view *sv,
			      const rf_tensor *dst, const struct rf_view *dv);

/* dst[dst_view] = src[src_view] elementwise over the (common) view shape. Any dtype of
** 4 bytes (f32/i32) or 2 bytes (f16/bf16; needs 16-bit storage) as long as src and dst
** share it, copied bit for bit. Covers slicing, transposes, permutes, concatenation
** (several copies into slices of one tensor), reversal (negative strides) and expansion
** (stride 0 in src). Views are bounds-checked against their tensors; dst may not have a
** stride-0 axis, and src and dst may not overlap in memory (RF_ERR_INVALID). Views that
** span more than one storage binding are split along their outer axes. */
enum rf_status rf_op_copy(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *src_view,
			  rf_tensor *dst, const struct rf_view *dst_view);

/* y[i, :] = x[index[i], :] for x [R, C], index an i32 device tensor of n elements (any
** shape), y [n, C]. An out-of-range index writes zeros (callers validate indices on the
** host first). x is read through a texel view, so it may exceed one storage binding. */
enum rf_status rf_op_gather_rows(rf_ctx *ctx, const rf_tensor *x, const rf_tensor *index,
				 rf_tensor *y);

/* Patch extraction for a stride-p, kernel-p convolution without padding (CLIP's conv1):
** pixels [B, C, H, W] -> patches [B * (H/p) * (W/p), C*p*p], row b*(Ph*Pw) + i*Pw + j
** holds pixel[b, c, i*p+u, j*p+v] at column c*p*p + u*p + v (matching conv1.weight
** [W, C, p, p] flattened). H and W must be multiples of p (CLIP: H = W = S). It is one
** rf_op_copy with a 6-axis view. */
enum rf_status rf_op_patchify(rf_ctx *ctx, const rf_tensor *pixels, int patch, rf_tensor *patches);

#endif
