/*
** rowops.c: launch geometry of the row-wise kernels (see rowops.h). Compute layer (L4).
*/
#include "rowops.h"

struct rf_row_geometry rf_row_geometry(const rf_ctx *ctx, uint64_t cols)
{
	if (rf_launch_cpu_like(ctx)) {
		/* One subgroup per workgroup, a row per lane: no shared memory or barriers,
		** which cost ~3x on lavapipe (LAVAPIPE.md). */
		uint32_t sg = rf_ctx_caps(ctx)->subgroup_size;
		uint32_t local = sg >= 4 && sg <= 64 ? sg : 8;
		return (struct rf_row_geometry){ local, 1, local };
	}
	/* A workgroup per row, about four columns per lane, 32 to 256 lanes. */
	uint32_t lanes = 32;
	while (lanes < 256 && (uint64_t)lanes * 4 < cols)
		lanes *= 2;
	if (lanes > rf_ctx_caps(ctx)->max_workgroup_invocations)
		lanes = 32;
	return (struct rf_row_geometry){ lanes, lanes, 1 };
}
