/*
** softmax.c: the row softmax launcher (nn.h): checks, row windows over big tensors and
** the per-device row geometry. Compute layer (L4).
*/
#include "nn.h"
#include "rowops.h"
#include "status.h"

#include <math.h>

struct push_softmax {
	uint32_t rows, cols;
	float scale;
	uint32_t qcount, row_base;
};
_Static_assert(sizeof(struct push_softmax) <= 128, "push constants");

#define OP "softmax"

enum rf_status rf_op_softmax(rf_ctx *ctx, const rf_tensor *x, float scale, bool causal,
			     rf_tensor *y)
{
	enum rf_status s;
	if ((s = rf_check_device(x, RF_F32, OP, "x")) != RF_OK ||
	    (s = rf_check_device(y, RF_F32, OP, "y")) != RF_OK)
		return s;
	if (!rf_shape_equal(&x->shape, &y->shape)) {
		char a[96], b[96];
		return rf_error(RF_ERR_INVALID, OP ": y %s must have x's shape %s",
				rf_shape_str(&y->shape, b, sizeof b), rf_shape_str(&x->shape, a, sizeof a));
	}
	int nd = x->shape.ndim;
	if (nd < (causal ? 2 : 1) || x->shape.dim[nd - 1] == 0)
		return rf_error(RF_ERR_INVALID, OP ": x needs a non-empty last axis%s",
				causal ? " and a query axis before it (causal)" : "");
	if (!isfinite(scale))
		return rf_error(RF_ERR_INVALID, OP ": scale must be finite, not %g", (double)scale);
	uint64_t cols = (uint64_t)x->shape.dim[nd - 1];
	uint64_t rows = (uint64_t)rf_tensor_numel(x) / cols;
	uint64_t qcount = causal ? (uint64_t)x->shape.dim[nd - 2] : 1;
	if (rows == 0)
		return RF_OK;
	if (cols > UINT32_MAX || rows > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, OP ": more than 2^32 rows or columns");
	/* Rows of a multiple of 4 columns move as vec4s (softmax4). */
	bool vec4 = cols % 4 == 0;
	struct rf_row_geometry g = rf_row_geometry(ctx, vec4 ? cols / 4 : cols);
	uint32_t spec[] = { g.local, g.row_lanes, causal };
	rf_pipeline *p;
	uint64_t window;
	enum rf_shader_id id = vec4 ? RF_SHADER_softmax4 : RF_SHADER_softmax;
	if ((s = rf_launch_pipeline(ctx, id, spec, 3, &p)) != RF_OK ||
	    (s = rf_window_items(ctx, (const uint64_t[]){ cols * 4 }, 1, OP, &window)) != RF_OK)
		return s;
	for (uint64_t first = 0; first < rows && s == RF_OK; first += window) {
		uint64_t count = RF_MIN(window, rows - first);
		struct rf_arg args[] = { rf_arg_items(x, first, count, cols * 4),
					 rf_arg_items(y, first, count, cols * 4) };
		struct push_softmax pc = { (uint32_t)count, (uint32_t)cols, scale, (uint32_t)qcount,
					   (uint32_t)first };
		s = rf_launch_groups(ctx, p, args, 2, &pc, sizeof pc, RF_CEIL_DIV(count, g.rows_per_group));
	}
	return s;
}
