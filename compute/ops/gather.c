/*
** gather.c: row gathers y[i, :] = x[index[i], :] (token embeddings and the like),
** tensor_ops.h. x is read through a texel view, so a table larger than one storage
** binding works; y and the indices go in windows of rows. Compute layer (L4).
*/
#include "tensor_ops.h"
#include "launch.h"
#include "status.h"

#define LOCAL 64
#define OP "gather_rows"

struct push_gather {
	uint32_t count, cols, rows, x_base;
};
_Static_assert(sizeof(struct push_gather) <= 128, "push constants");

enum rf_status rf_op_gather_rows(rf_ctx *ctx, const rf_tensor *x, const rf_tensor *index,
				 rf_tensor *y)
{
	enum rf_status s;
	if ((s = rf_check_device(x, RF_F32, OP, "x")) != RF_OK ||
	    (s = rf_check_device(index, RF_I32, OP, "index")) != RF_OK ||
	    (s = rf_check_device(y, RF_F32, OP, "y")) != RF_OK)
		return s;
	if (x->shape.ndim != 2)
		return rf_error(RF_ERR_INVALID, OP ": x must be [rows, cols]");
	int64_t rows = x->shape.dim[0], cols = x->shape.dim[1], n = rf_tensor_numel(index);
	struct rf_shape want = rf_shape_of(2, n, cols);
	if (!rf_shape_equal(&y->shape, &want)) {
		char a[96], e[96];
		return rf_error(RF_ERR_INVALID, OP ": y is %s, expected %s",
				rf_shape_str(&y->shape, a, sizeof a), rf_shape_str(&want, e, sizeof e));
	}
	if (rows > UINT32_MAX || cols > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, OP ": x is too large");
	if (n == 0 || cols == 0)
		return RF_OK;
	rf_pipeline *p;
	uint64_t window;
	uint32_t spec[] = { LOCAL };
	if ((s = rf_launch_pipeline(ctx, RF_SHADER_gather_rows, spec, 1, &p)) != RF_OK ||
	    (s = rf_window_items(ctx, (const uint64_t[]){ (uint64_t)cols * 4, 4 }, 2, OP, &window)) != RF_OK)
		return s;
	for (uint64_t first = 0; first < (uint64_t)n && s == RF_OK; first += window) {
		uint64_t count = RF_MIN(window, (uint64_t)n - first);
		struct push_gather pc = { (uint32_t)(count * (uint64_t)cols), (uint32_t)cols,
					  (uint32_t)rows, rf_texel_base(x, 4) };
		struct rf_arg args[] = { rf_arg_whole(&x->mem), rf_arg_items(index, first, count, 4),
					 rf_arg_items(y, first, count, (uint64_t)cols * 4) };
		s = rf_launch_1d(ctx, p, args, 3, &pc, sizeof pc, pc.count, LOCAL);
	}
	return s;
}
