/*
** unary.c: elementwise maps of one f32 tensor: the unary math ops, the affine map with
** clamp and the fill of tensor_ops.h, and the activations of nn.h (the same kernel with
** another op constant). Compute layer (L4).
*/
#include "tensor_ops.h"
#include "nn.h"
#include "launch.h"
#include "status.h"
#include "transfer.h"

#include <math.h>
#include <string.h>

#define LOCAL 64

/* Op codes of unary.comp beyond enum rf_unary_op. */
enum { OP_AFFINE = 32, OP_GELU = 33, OP_QUICKGELU = 34 };

struct push_unary {
	uint32_t n, first;
	float scale, shift, lo, hi;
};
_Static_assert(sizeof(struct push_unary) <= 128, "push constants");

static enum rf_status check_pair(const rf_tensor *x, const rf_tensor *y, const char *op)
{
	enum rf_status s;
	if ((s = rf_check_device(x, RF_F32, op, "x")) != RF_OK ||
	    (s = rf_check_device(y, RF_F32, op, "y")) != RF_OK)
		return s;
	if (!rf_shape_equal(&x->shape, &y->shape)) {
		char a[96], b[96];
		return rf_error(RF_ERR_INVALID, "%s: y %s must have x's shape %s", op,
				rf_shape_str(&y->shape, b, sizeof b), rf_shape_str(&x->shape, a, sizeof a));
	}
	return RF_OK;
}

/* Runs unary.comp with op constant `code` over x -> y, one storage window at a time:
** whole vec4s with the VEC4 variant, then the last n % 4 elements with the scalar one
** (from an aligned window start, skipping what the vec4 pass did, so y may be x). */
static enum rf_status run(rf_ctx *ctx, uint32_t code, const struct push_unary *params,
			  const rf_tensor *x, rf_tensor *y, const char *op)
{
	enum rf_status s = check_pair(x, y, op);
	if (s != RF_OK)
		return s;
	uint32_t spec[] = { LOCAL, code };
	rf_pipeline *p4, *p1;
	uint64_t window;
	if ((s = rf_launch_pipeline(ctx, RF_SHADER_unary4, spec, 2, &p4)) != RF_OK ||
	    (s = rf_launch_pipeline(ctx, RF_SHADER_unary, spec, 2, &p1)) != RF_OK ||
	    (s = rf_window_items(ctx, (const uint64_t[]){ 16 }, 1, op, &window)) != RF_OK)
		return s;
	uint64_t n = (uint64_t)rf_tensor_numel(x), quads = n / 4;
	for (uint64_t first = 0; first < quads && s == RF_OK; first += window) {
		uint64_t count = RF_MIN(window, quads - first);
		struct push_unary pc = *params;
		pc.n = (uint32_t)count;
		pc.first = 0;
		struct rf_arg args[] = { rf_arg_items(x, first, count, 16),
					 rf_arg_items(y, first, count, 16) };
		s = rf_launch_1d(ctx, p4, args, 2, &pc, sizeof pc, count, LOCAL);
	}
	if (s != RF_OK || n % 4 == 0)
		return s;
	uint64_t align = RF_MAX(1, rf_ctx_caps(ctx)->storage_align / 4);
	uint64_t start = quads * 4 / align * align;
	struct push_unary pc = *params;
	pc.n = (uint32_t)(n - start);
	pc.first = (uint32_t)(quads * 4 - start);
	struct rf_arg args[] = { rf_arg_items(x, start, n - start, 4),
				 rf_arg_items(y, start, n - start, 4) };
	return rf_launch_1d(ctx, p1, args, 2, &pc, sizeof pc, pc.n - pc.first, LOCAL);
}

enum rf_status rf_op_unary(rf_ctx *ctx, enum rf_unary_op op, const rf_tensor *x, rf_tensor *y)
{
	if ((unsigned)op > RF_UN_NOT)
		return rf_error(RF_ERR_INVALID, "unary op: unknown op %d", (int)op);
	struct push_unary pc = { 0 };
	return run(ctx, (uint32_t)op, &pc, x, y, "unary op");
}

enum rf_status rf_op_affine(rf_ctx *ctx, const rf_tensor *x, float scale, float shift,
			    float lo, float hi, rf_tensor *y)
{
	if (isnan(lo) || isnan(hi) || lo > hi)
		return rf_error(RF_ERR_INVALID, "affine: clamp bounds [%g, %g] are not an interval",
				(double)lo, (double)hi);
	struct push_unary pc = { 0, 0, scale, shift, lo, hi };
	return run(ctx, OP_AFFINE, &pc, x, y, "affine");
}

enum rf_status rf_op_activation(rf_ctx *ctx, enum rf_activation act, const rf_tensor *x,
				rf_tensor *y)
{
	struct push_unary pc = { 0 };
	switch (act) {
	case RF_ACT_NONE: {
		/* The identity: a copy unless it runs in place. */
		enum rf_status s = check_pair(x, y, "activation");
		if (s != RF_OK || (x->mem.block == y->mem.block && x->mem.offset == y->mem.offset))
			return s;
		return rf_mem_copy(ctx, &x->mem, 0, &y->mem, 0, rf_tensor_nbytes(x));
	}
	case RF_ACT_GELU:
		return run(ctx, OP_GELU, &pc, x, y, "activation");
	case RF_ACT_QUICKGELU:
		return run(ctx, OP_QUICKGELU, &pc, x, y, "activation");
	}
	return rf_error(RF_ERR_INVALID, "activation: unknown activation %d", (int)act);
}

enum rf_status rf_op_fill(rf_ctx *ctx, rf_tensor *y, float value)
{
	if (!y || !rf_tensor_on_device(y))
		return rf_error(RF_ERR_INVALID, "fill: y must be a device tensor");
	uint32_t bits;
	if (y->dtype == RF_F32) {
		memcpy(&bits, &value, 4);
	} else if (y->dtype == RF_I32) {
		if (!(value >= -2147483648.0f && value < 2147483648.0f) || value != truncf(value))
			return rf_error(RF_ERR_INVALID, "fill: %g is not an i32 value", (double)value);
		int32_t v = (int32_t)value;
		memcpy(&bits, &v, 4);
	} else {
		return rf_error(RF_ERR_INVALID, "fill: y must be F32 or I32, not %s",
				rf_dtype_name(y->dtype));
	}
	/* A 32-bit pattern fill is exactly a constant fill, at transfer speed, any size. */
	return rf_mem_fill(ctx, &y->mem, 0, RF_ALIGN_UP(rf_tensor_nbytes(y), 4), bits);
}
