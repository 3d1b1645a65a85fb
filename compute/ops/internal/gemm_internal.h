/*
** gemm_internal.h: what the GEMM files share (gemm.c, gemm_weights.c, matmul.c,
** gemm_launch.c): the kernel families, the prepared-weight record, and one description
** of a matrix product that every launcher takes. Compute-internal (L4).
*/
#ifndef RF_COMPUTE_OPS_GEMM_INTERNAL_H
#define RF_COMPUTE_OPS_GEMM_INTERNAL_H

#include "gemm.h"

/* The kernel families (see gemm.h for the REFRACT_GEMM switch that forces one). */
enum rf_mm_kernel {
	RF_MM_LANES,     /* CPU devices: register blocks, texel loads, packed weight panels */
	RF_MM_TILED,     /* GPUs: shared-memory tiles */
	RF_MM_GENERIC,   /* one output per invocation, storage buffers: the fallback */
	RF_MM_HOST,      /* CPU devices with host-visible memory: the host's BLAS, Linear only */
};

/* Weight layouts (RF_MM_HOST uses rows). Panels (RF_MM_LANES): panel p holds columns [p*np, (p+1)*np) of C,
** i.e. rows of W; its texel (p, q, j) = W[p*np + j][4q .. 4q+3], zero-padded past N and
** K, at texel index (p*kq + q)*np + j. Rows (the others): W[n][k] at n*ld + k. */
struct rf_gemm_weights {
	rf_ctx *ctx;
	struct rf_mem mem;
	enum rf_dtype storage;        /* RF_F32 or RF_F16 */
	enum rf_mm_kernel kernel;     /* the family whose layout `mem` holds */
	int64_t n, k;
	uint32_t np;                  /* panels: columns per panel */
	int64_t kq;                   /* panels: texels along K per column, ceil(k / 4) */
	int64_t ld;                   /* rows: elements per row */
};

/* The family REFRACT_GEMM asked for when the context was created (rf_caps.gemm), or the
** device's own (CPU: host where its memory is host-visible, else lanes; GPUs: tiled). */
enum rf_status rf_mm_kernel_choose(rf_ctx *ctx, enum rf_mm_kernel *out);

/* gemm_host.c: rf_op_gemm for weights prepared for RF_MM_HOST (arguments checked). */
enum rf_status rf_gemm_host(rf_ctx *ctx, const struct rf_gemm *g);
const char *rf_mm_kernel_name(enum rf_mm_kernel k);

/* Panel width the lanes kernel is tuned for (columns of C per workgroup). */
#define RF_MM_PANEL 16

/* One operand as a kernel reads it: element (b, i, j) at offset + b*bs + i*rs + j*cs,
** in elements of `dtype` from the start of `mem`. Strides are non-negative. */
struct rf_mm_operand {
	const struct rf_mem *mem;
	enum rf_dtype dtype;          /* RF_F32; RF_F16 only for prepared weights (B) */
	int64_t offset, rs, cs, bs;
};

/* C[b] = alpha * A[b]·B[b] (+ bias) -> act (+ residual) (+ beta * C[b]). */
struct rf_mm_problem {
	int64_t batch, m, n, k;
	struct rf_mm_operand a, b, c;
	const struct rf_mem *bias;    /* [n] f32 at bias_offset, or NULL */
	int64_t bias_offset;
	const struct rf_mem *res;     /* residual [m, n] at res_offset, row stride res_rs, or NULL */
	int64_t res_offset, res_rs;
	enum rf_activation act;
	float alpha, beta;
	const rf_gemm_weights *panels;  /* B is these packed panels (lanes kernel only) */
};

/* Records the dispatches that compute `p` with kernel family `kernel`, split as the
** device's binding ranges and workgroup-count limits require. */
enum rf_status rf_mm_launch(rf_ctx *ctx, enum rf_mm_kernel kernel, const struct rf_mm_problem *p);

/* gemm_host.c: whether BLAS can read every operand of `p` (a unit stride along rows or
** columns, no epilogue), and that product on the host (after the recorded work). */
bool rf_matmul_host_fits(const struct rf_mm_problem *p);
enum rf_status rf_matmul_host(rf_ctx *ctx, const struct rf_mm_problem *p);

#endif
