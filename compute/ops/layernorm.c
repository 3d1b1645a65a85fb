/*
** layernorm.c: the LayerNorm launcher (nn.h): argument checks, row windows over big
** tensors, and the per-device row geometry. Compute layer (L4).
*/
#include "nn.h"
#include "rowops.h"
#include "status.h"

#include <math.h>

struct push_layernorm {
	uint32_t rows, cols;
	float eps;
};
_Static_assert(sizeof(struct push_layernorm) <= 128, "push constants");

#define OP "layernorm"

static enum rf_status check_vector(const rf_tensor *t, int64_t n, const char *what)
{
	enum rf_status s = rf_check_device(t, RF_F32, OP, what);
	if (s == RF_OK && rf_tensor_numel(t) != n)
		return rf_error(RF_ERR_INVALID, OP ": %s has %lld elements, expected %lld", what,
				(long long)rf_tensor_numel(t), (long long)n);
	return s;
}

static enum rf_status check_args(const rf_tensor *x, const rf_tensor *gamma, const rf_tensor *beta,
				 float eps, const rf_tensor *y, const rf_tensor *mean_out,
				 const rf_tensor *std_out)
{
	enum rf_status s;
	if ((s = rf_check_device(x, RF_F32, OP, "x")) != RF_OK ||
	    (s = rf_check_device(y, RF_F32, OP, "y")) != RF_OK)
		return s;
	if (x->shape.ndim < 1 || x->shape.dim[x->shape.ndim - 1] == 0)
		return rf_error(RF_ERR_INVALID, OP ": x needs a non-empty last axis");
	if (!rf_shape_equal(&x->shape, &y->shape)) {
		char a[96], b[96];
		return rf_error(RF_ERR_INVALID, OP ": y %s must have x's shape %s",
				rf_shape_str(&y->shape, b, sizeof b), rf_shape_str(&x->shape, a, sizeof a));
	}
	if (!(eps >= 0) || isinf(eps))
		return rf_error(RF_ERR_INVALID, OP ": eps must be finite and >= 0, not %g", (double)eps);
	int64_t cols = x->shape.dim[x->shape.ndim - 1], rows = rf_tensor_numel(x) / cols;
	if ((gamma && (s = check_vector(gamma, cols, "gamma")) != RF_OK) ||
	    (beta && (s = check_vector(beta, cols, "beta")) != RF_OK) ||
	    (mean_out && (s = check_vector(mean_out, rows, "mean_out")) != RF_OK) ||
	    (std_out && (s = check_vector(std_out, rows, "std_out")) != RF_OK))
		return s;
	if (cols > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, OP ": rows of %lld elements", (long long)cols);
	return RF_OK;
}

enum rf_status rf_op_layernorm(rf_ctx *ctx, const rf_tensor *x, const rf_tensor *gamma,
			       const rf_tensor *beta, float eps, rf_tensor *y,
			       rf_tensor *mean_out, rf_tensor *std_out)
{
	enum rf_status s = check_args(x, gamma, beta, eps, y, mean_out, std_out);
	if (s != RF_OK)
		return s;
	uint64_t cols = (uint64_t)x->shape.dim[x->shape.ndim - 1];
	uint64_t rows = (uint64_t)rf_tensor_numel(x) / cols;
	if (rows == 0)
		return RF_OK;
	/* Rows of a multiple of 4 columns move as vec4s (layernorm4). */
	bool vec4 = cols % 4 == 0;
	struct rf_row_geometry g = rf_row_geometry(ctx, vec4 ? cols / 4 : cols);
	uint32_t spec[] = { g.local, g.row_lanes, gamma != NULL, beta != NULL, mean_out != NULL,
			    std_out != NULL };
	rf_pipeline *p;
	uint64_t window;
	enum rf_shader_id id = vec4 ? RF_SHADER_layernorm4 : RF_SHADER_layernorm;
	if ((s = rf_launch_pipeline(ctx, id, spec, 6, &p)) != RF_OK ||
	    (s = rf_window_items(ctx, (const uint64_t[]){ cols * 4, 4 }, 2, OP, &window)) != RF_OK)
		return s;
	for (uint64_t first = 0; first < rows && s == RF_OK; first += window) {
		uint64_t count = RF_MIN(window, rows - first);
		struct rf_arg xa = rf_arg_items(x, first, count, cols * 4);
		struct rf_arg ya = rf_arg_items(y, first, count, cols * 4);
		/* Absent operands are bound to x (read) or y (written), and the specialization
		** constants keep the kernel from touching them. */
		struct rf_arg args[] = {
			xa,
			gamma ? rf_arg_whole(&gamma->mem) : xa,
			beta ? rf_arg_whole(&beta->mem) : xa,
			ya,
			mean_out ? rf_arg_items(mean_out, first, count, 4) : ya,
			std_out ? rf_arg_items(std_out, first, count, 4) : ya,
		};
		struct push_layernorm pc = { (uint32_t)count, (uint32_t)cols, eps };
		s = rf_launch_groups(ctx, p, args, 6, &pc, sizeof pc, RF_CEIL_DIV(count, g.rows_per_group));
	}
	return s;
}
