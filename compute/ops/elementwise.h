/*
** elementwise.h: elementwise arithmetic and comparisons on f32 device tensors with
** NumPy broadcasting. Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_ELEMENTWISE_H
#define RF_COMPUTE_OPS_ELEMENTWISE_H

#include "tensor.h"

enum rf_binary_op {
	RF_BIN_ADD, RF_BIN_SUB, RF_BIN_MUL, RF_BIN_DIV, RF_BIN_MAX, RF_BIN_MIN, RF_BIN_POW,
	RF_BIN_EQ, RF_BIN_NE, RF_BIN_LT, RF_BIN_LE, RF_BIN_GT, RF_BIN_GE,
};

/* The broadcast shape of a and b (NumPy rules), or RF_ERR_INVALID naming both shapes. */
enum rf_status rf_broadcast_shape(const struct rf_shape *a, const struct rf_shape *b,
				  struct rf_shape *out);

/* out = a (op) b; out must have the broadcast shape. All f32 device tensors. MAX and MIN
** propagate NaN; POW follows C's pow (Annex F special cases: x^0 = 1, 1^y = 1, negative
** bases with integral exponents, signed zeros and infinities), multiplying by squaring
** for integral exponents up to 64 and through exp2/log2 otherwise (a few ulp).
** Comparisons write 1 or 0 (false whenever NaN is involved, except NE). The inputs are
** read through texel views and the output written in windows, so tensors larger than one
** storage binding work (up to maxTexelBufferElements elements per input block). */
enum rf_status rf_op_binary(rf_ctx *ctx, enum rf_binary_op op, const rf_tensor *a,
			    const rf_tensor *b, rf_tensor *out);

#endif
