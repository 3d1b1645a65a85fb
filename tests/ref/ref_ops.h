/*
** ref_ops.h: naive CPU references for the kernels of nn.h and tensor_ops.h, computed in
** double precision from f32 inputs. Test-only: plain loops, no cleverness, so that each
** one can be checked by reading it against the definition it implements.
*/
#ifndef RF_TESTS_REF_OPS_H
#define RF_TESTS_REF_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn.h"
#include "tensor_ops.h"

double ref_unary(enum rf_unary_op op, double x);
double ref_activation(enum rf_activation act, double x);

/* rows x cols, LayerNorm over each row as CLIP's reference defines it (golden README). */
void ref_layernorm(const float *x, int64_t rows, int64_t cols, const float *gamma,
		   const float *beta, double eps, double *y, double *mean, double *std);

/* Softmax over rows of `cols`; with causal, row r's query index is (row_base + r) %
** qcount and columns k > query are excluded (0). */
void ref_softmax(const float *x, int64_t rows, int64_t cols, double scale, bool causal,
		 int64_t qcount, int64_t row_base, double *y);

/* Attention over qkv [B, N, 3W] (rf_op_attention): out [B, N, W], probs [B, H, N, N]
** (NULL to skip). */
void ref_attention(const float *qkv, int64_t batch, int64_t n, int64_t width, int heads,
		   bool causal, double *out, double *probs);

/* Reduction of x (shape) over the axes in mask, keepdims layout. */
void ref_reduce(enum rf_reduce_op op, const float *x, const struct rf_shape *shape,
		uint32_t mask, int correction, double *y);

/* Element-by-element strided copy of 32-bit words (views as in tensor_ops.h). */
void ref_copy_view(const uint32_t *src, const struct rf_view *sv, uint32_t *dst,
		   const struct rf_view *dv);

/* Patches of pixels [b, c, h, w] with patch p, written straight from the definition. */
void ref_patchify(const float *pixels, int64_t b, int64_t c, int64_t h, int64_t w, int64_t p,
		  double *patches);

/* y = cond != 0 ? a : b over y's shape, each input broadcast NumPy-style. */
void ref_where(const float *cond, const struct rf_shape *cs, const float *a,
	       const struct rf_shape *as, const float *b, const struct rf_shape *bs,
	       const struct rf_shape *ys, double *y);

#endif
