/*
** host_math.h: what the host paths of CPU devices share (gemm_host.c,
** attention_host.c): whether this context computes its products on the host, and
** vectorized elementwise math over host-mapped device memory. Compute-internal (L4).
*/
#ifndef RF_COMPUTE_OPS_HOST_MATH_H
#define RF_COMPUTE_OPS_HOST_MATH_H

#include "gemm.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether the Linear layers and attention of this context run on the host (the `host`
** kernel family: gemm.h); false where the choice fails (the error stays set). */
bool rf_host_compute(rf_ctx *ctx);

/* x = act(x) elementwise: GELU through Abramowitz and Stegun's erfc (absolute error below
** 1.5e-7, as the lanes kernel), QuickGELU x / (1 + exp(-1.702 x)); exp to ~1 ulp. */
void rf_host_activate(enum rf_activation act, float *x, size_t n);

/* The softmax of x[0 .. valid) in place (sum in double), and x[valid .. n) = 0. */
void rf_host_softmax_row(float *x, size_t valid, size_t n);

/* Monotonic nanoseconds, for the profile entries of the host paths (profile.h). */
double rf_host_now_ns(void);

#endif
