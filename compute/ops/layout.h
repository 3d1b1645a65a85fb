/*
** layout.h: copies that rearrange tensors of any dtype wherever they live: strided view
** copies (rf_view_copy) and axis permutations (rf_op_permute). Device tensors of 4- and
** 2-byte dtypes go through the copy kernel (rf_op_copy); 8-byte device dtypes copy as
** pairs of 32-bit words through the same kernel; host tensors are copied by the CPU.
** Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_LAYOUT_H
#define RF_COMPUTE_OPS_LAYOUT_H

#include "tensor_ops.h"

/* dst[dst_view] = src[src_view] elementwise over the common view shape, as rf_op_copy,
** for two tensors of one dtype that are both on the host (any dtype; ctx may be NULL)
** or both on the device (any dtype: 1-byte dtypes, and 2-byte dtypes without 16-bit
** storage, go through the host, so they are slow). Views are bounds-checked; src may
** broadcast (stride 0) but dst may not, and the two may not overlap in memory. */
enum rf_status rf_view_copy(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *src_view,
			    rf_tensor *dst, const struct rf_view *dst_view);

/* y = x with its axes reordered: y's axis i is x's axis perm[i] (perm a permutation of
** 0..ndim-1), so y.shape[i] = x.shape[perm[i]]. x and y share dtype and placement (as
** rf_view_copy); y must have the permuted shape and may not be x. */
enum rf_status rf_op_permute(rf_ctx *ctx, const rf_tensor *x, const int *perm, rf_tensor *y);

#endif
