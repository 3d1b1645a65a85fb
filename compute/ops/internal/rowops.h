/*
** rowops.h: the launch geometry the row-wise kernels share (common/rows.glsl): a lane
** per row on CPU devices, a workgroup per row elsewhere. Internal to compute/ops.
** Compute layer (L4).
*/
#ifndef RF_COMPUTE_OPS_ROWOPS_H
#define RF_COMPUTE_OPS_ROWOPS_H

#include "launch.h"

struct rf_row_geometry {
	uint32_t local;          /* workgroup size (specialization constant 0) */
	uint32_t row_lanes;      /* lanes per row (specialization constant 1): 1 or local */
	uint32_t rows_per_group;
};

/* The geometry for rows of `cols` elements on this device. */
struct rf_row_geometry rf_row_geometry(const rf_ctx *ctx, uint64_t cols);

#endif
