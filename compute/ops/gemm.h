/*
** gemm.h: matrix products on the device, f32 accumulation.
**
**   rf_op_gemm:   C[M,N] = act(A[M,K] · Wᵀ + bias) + residual, W a prepared weight
**                 [N,K] (PyTorch Linear layout) stored as f32 or f16 and packed once in
**                 the layout the device's kernel variant reads. This is the hot path:
**                 every Linear layer of CLIP.
**   rf_op_matmul: C = alpha·A·B + beta·C for batched, arbitrarily strided f32 operands
**                 held in device tensors (attention, folded decomposition matrices,
**                 scripts' matmul). Transposes are strides, never copies.
**
** The kernel family is chosen at run time from rf_caps (never #ifdef):
**   host     CPU devices whose memory the host can map (lavapipe): rf_op_gemm runs the
**            host's BLAS (OpenBLAS sgemm) on the tensors in place, after the work
**            recorded before it (gemm_host.c says why); strided products use lanes.
**   lanes    CPU devices (lavapipe): one subgroup per workgroup, each lane a block of
**            rows of C, operands read as vec4 texels, weights packed once into panels of
**            16 columns; no shared memory, one runtime loop (gemm_lanes.glsl).
**   tiled    GPUs: shared-memory tiles with tile sizes from rf_caps (mm_tiled.comp).
**   generic  one output per invocation from storage buffers: the fallback.
** REFRACT_GEMM=auto|host|lanes|tiled|generic overrides the choice (the kill switch for a fast
** path that misbehaves on some driver); the context reads it once, when it is created
** (rf_caps.gemm), and everything on that context uses the same family.
** Shapes need not be multiples of anything; operands past the device's storage-binding
** range and grids past its workgroup-count limits are split into several dispatches.
** Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_GEMM_H
#define RF_COMPUTE_OPS_GEMM_H

#include "tensor.h"

typedef struct rf_gemm_weights rf_gemm_weights;

/* GELU is the exact form x*Phi(x), x/2*erfc(-x/sqrt2), with erfc good to 1.5e-7 absolute;
** QuickGELU is x*sigmoid(1.702x) (OpenAI CLIP). */
enum rf_activation { RF_ACT_NONE, RF_ACT_GELU, RF_ACT_QUICKGELU };

/* Describes a weight matrix in host memory. */
struct rf_weight_source {
	const void *data;
	enum rf_dtype dtype;     /* F32, F16 or BF16 */
	int64_t n, k;            /* the logical W is [n, k] */
	bool transposed;         /* data is stored [k, n] (e.g. CLIP's `proj` [width, embed]) */
};

/* Uploads and packs a weight; `storage` is RF_F32 or RF_F16. f16 works on every device
** (rgba16f texel views for the lanes family, f16 pairs in 32-bit words for the others),
** halving the memory; arithmetic stays f32. The result holds a context reference. */
enum rf_status rf_gemm_weights_create(rf_ctx *ctx, const struct rf_weight_source *src,
				      enum rf_dtype storage, rf_gemm_weights **out);
void rf_gemm_weights_destroy(rf_gemm_weights *w);
int64_t rf_gemm_weights_n(const rf_gemm_weights *w);
int64_t rf_gemm_weights_k(const rf_gemm_weights *w);
/* Device bytes held (for memory reports). */
uint64_t rf_gemm_weights_bytes(const rf_gemm_weights *w);
/* The kernel family the weights are packed for: "lanes", "tiled" or "generic". */
const char *rf_gemm_weights_kernel(const rf_gemm_weights *w);

struct rf_gemm {
	const rf_tensor *a;           /* [M, K] f32, or any shape whose last dim is K */
	const rf_gemm_weights *w;     /* [N, K] */
	const rf_tensor *bias;        /* [N] f32, or NULL */
	enum rf_activation act;       /* applied after the bias */
	const rf_tensor *residual;    /* same shape as c, added last; may be c itself; or NULL */
	rf_tensor *c;                 /* [M, N] f32 (A's leading dims, N); must not overlap a/bias */
};

enum rf_status rf_op_gemm(rf_ctx *ctx, const struct rf_gemm *g);

/* The host BLAS behind the `host` family (OpenBLAS): the kernel set it uses for this CPU,
** and the one to name in OPENBLAS_CORETYPE (read when OpenBLAS loads) when its own choice
** is weaker than the CPU's instructions allow, else NULL. OpenBLAS 0.3.21 falls back to
** its SSE3 "Prescott" kernels on CPUs it does not know (Intel family 6 model 207 among
** them: 5x slower than its SkylakeX kernels there). */
const char *rf_host_blas_core(void);
/* The family rf_gemm_weights_create packs for on this context now ("host", "lanes", ...;
** REFRACT_GEMM or the device's own), or NULL with the error set. */
const char *rf_gemm_family(rf_ctx *ctx);
const char *rf_host_blas_better_core(void);

/* One strided operand: element (b, i, j) is at data[offset + b*batch + i*row + j*col]. */
struct rf_matmul_operand {
	const rf_tensor *t;          /* f32 device tensor that holds the elements */
	int64_t offset, batch_stride, row_stride, col_stride;
};

struct rf_matmul {
	int64_t batch, m, n, k;
	struct rf_matmul_operand a;  /* A[b] is m x k */
	struct rf_matmul_operand b;  /* B[b] is k x n */
	struct rf_matmul_operand c;  /* C[b] is m x n, written */
	float alpha, beta;           /* C = alpha*A*B + beta*C (beta 0: C is not read) */
};

/* Checks that every operand stays inside its tensor (sizes >= 0, k >= 1, offsets and
** strides >= 0) and that C writes each element once and overlaps neither A nor B:
** RF_ERR_INVALID with the operand, extents and strides in the message otherwise. */
enum rf_status rf_op_matmul(rf_ctx *ctx, const struct rf_matmul *mm);

/* Convenience: C[..., m, n] = A[..., m, k] · B[..., k, n] (or Bᵀ if trans_b) for
** contiguous tensors with equal batch dims; B may instead be 2-D, shared by every batch
** (x · W). c must be allocated with the right shape. */
enum rf_status rf_op_matmul_simple(rf_ctx *ctx, const rf_tensor *a, const rf_tensor *b,
				   bool trans_b, rf_tensor *c);

#endif
