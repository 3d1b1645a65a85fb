/*
** reduce.c: reductions over any subset of axes (tensor_ops.h). The axes are merged into
** at most 4 kept and 4 reduced groups; a first pass (reduce.comp) reduces chunks of
** each output's elements with compensated sums, further passes (reduce_partials.comp)
** combine the chunks in a tree until one state per output is left. VAR/STD run the
** tree twice: the mean first, then the centred sum of squares. Compute layer (L4).
*/
#include "tensor_ops.h"
#include "launch.h"
#include "status.h"

#include <stdlib.h>

#define LOCAL 64
#define OP_NAME "reduce"
/* Enough invocations to fill a device; and how many partials one invocation folds. */
#define TARGET_INVOCATIONS 8192
#define MIN_CHUNK 64
#define PARTIALS_PER_INVOCATION 128

struct push_reduce {
	uint32_t count, outputs, o_base, len, chunk, chunks, x_base, correction;
	uint32_t kdim[4], kstride[4], rdim[4], rstride[4];
};
_Static_assert(sizeof(struct push_reduce) <= 128, "push constants");

struct push_partials {
	uint32_t count, outputs, parts, chunk, chunks, len, correction;
};
_Static_assert(sizeof(struct push_partials) <= 128, "push constants");

/* x's axes split into kept and reduced groups (outermost first, padded in front). */
struct plan {
	uint64_t kdim[4], kstride[4], rdim[4], rstride[4];
	uint64_t outputs, len;
};

/* Merges neighbouring axes of the same kind (x is contiguous, so a run of kept or of
** reduced axes walks like one axis) and drops axes of size 1. */
static void make_plan(const struct rf_shape *s, uint32_t mask, struct plan *p)
{
	uint64_t kd[RF_MAX_DIMS], ks[RF_MAX_DIMS], rd[RF_MAX_DIMS], rs[RF_MAX_DIMS];
	int nk = 0, nr = 0, last = -1;   /* last: kind of the previous kept axis group */
	uint64_t stride = 1;
	/* Walk from the innermost axis, so strides are known as we go. */
	for (int d = s->ndim - 1; d >= 0; d--) {
		uint64_t dim = (uint64_t)s->dim[d];
		int kind = (int)(mask >> d & 1);
		if (dim != 1) {
			uint64_t *dims = kind ? rd : kd, *strides = kind ? rs : ks;
			int *n = kind ? &nr : &nk;
			if (last == kind)
				dims[*n - 1] *= dim;
			else {
				dims[*n] = dim;
				strides[*n] = stride;
				(*n)++;
			}
			last = kind;
		}
		stride *= dim;
	}
	/* Innermost-first lists into outermost-first arrays of 4, padded in front. */
	p->outputs = p->len = 1;
	for (int i = 0; i < 4; i++) {
		p->kdim[3 - i] = i < nk ? kd[i] : 1;
		p->kstride[3 - i] = i < nk ? ks[i] : 0;
		p->rdim[3 - i] = i < nr ? rd[i] : 1;
		p->rstride[3 - i] = i < nr ? rs[i] : 0;
		p->outputs *= p->kdim[3 - i];
		p->len *= p->rdim[3 - i];
	}
	RF_ASSERT(nk <= 4 && nr <= 4);
}

static enum rf_status check_args(enum rf_reduce_op op, const rf_tensor *x, uint32_t mask,
				 int correction, const rf_tensor *y)
{
	enum rf_status s;
	if ((s = rf_check_device(x, RF_F32, OP_NAME, "x")) != RF_OK ||
	    (s = rf_check_device(y, RF_F32, OP_NAME, "y")) != RF_OK)
		return s;
	if ((unsigned)op > RF_RED_NORM2)
		return rf_error(RF_ERR_INVALID, OP_NAME ": unknown op %d", (int)op);
	if (x->shape.ndim < 32 && (mask >> x->shape.ndim) != 0)
		return rf_error(RF_ERR_INVALID, OP_NAME ": axes mask 0x%x names axes past x's %d",
				mask, x->shape.ndim);
	bool arg = op == RF_RED_ARGMAX || op == RF_RED_ARGMIN;
	if (arg && (mask == 0 || (mask & (mask - 1)) != 0))
		return rf_error(RF_ERR_INVALID, OP_NAME ": argmax/argmin need exactly one axis");
	if (correction < 0)
		return rf_error(RF_ERR_INVALID, OP_NAME ": correction %d is negative", correction);
	int64_t outputs = 1, len = 1;
	for (int d = 0; d < x->shape.ndim; d++)
		*(mask >> d & 1 ? &len : &outputs) *= x->shape.dim[d];
	if (rf_tensor_numel(y) != outputs) {
		char a[96];
		return rf_error(RF_ERR_INVALID, OP_NAME ": y %s has %lld elements, expected %lld "
				"(x's shape with the reduced axes set to 1)",
				rf_shape_str(&y->shape, a, sizeof a), (long long)rf_tensor_numel(y),
				(long long)outputs);
	}
	bool order = op == RF_RED_MAX || op == RF_RED_MIN || arg;
	if (len == 0 && outputs > 0 && order)
		return rf_error(RF_ERR_INVALID, OP_NAME ": max/min over an empty axis");
	if (len > (1 << 24) && arg)
		return rf_error(RF_ERR_UNSUPPORTED, OP_NAME ": argmax/argmin over more than 2^24 "
				"elements (f32 indices)");
	if (len > UINT32_MAX || rf_tensor_numel(x) > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, OP_NAME ": more than 2^32 elements");
	return RF_OK;
}

/* One dispatch of reduce.comp. */
static enum rf_status first_pass(rf_ctx *ctx, uint32_t op, bool final, bool centred,
				 const struct plan *pl, const rf_tensor *x, uint64_t chunk,
				 uint64_t chunks, uint32_t correction, struct rf_arg mean,
				 struct rf_arg out, uint64_t o_base, uint64_t outputs)
{
	uint32_t spec[] = { LOCAL, op, final, centred };
	rf_pipeline *p;
	enum rf_status s = rf_launch_pipeline(ctx, RF_SHADER_reduce, spec, 4, &p);
	if (s != RF_OK)
		return s;
	struct push_reduce pc = {
		.count = (uint32_t)(outputs * chunks), .outputs = (uint32_t)outputs,
		.o_base = (uint32_t)o_base,
		.len = (uint32_t)pl->len, .chunk = (uint32_t)chunk, .chunks = (uint32_t)chunks,
		.x_base = rf_texel_base(x, 4), .correction = correction,
	};
	for (int i = 0; i < 4; i++) {
		pc.kdim[i] = (uint32_t)pl->kdim[i];
		pc.kstride[i] = (uint32_t)pl->kstride[i];
		pc.rdim[i] = (uint32_t)pl->rdim[i];
		pc.rstride[i] = (uint32_t)pl->rstride[i];
	}
	struct rf_arg args[] = { rf_arg_whole(&x->mem), mean, out };
	return rf_launch_1d(ctx, p, args, 3, &pc, sizeof pc, pc.count, LOCAL);
}

/* Runs the whole tree for `op` from x into `y` (y: [outputs] f32), reading `mean` when
** centred. */
static enum rf_status reduce_tree(rf_ctx *ctx, uint32_t op, bool centred, const struct plan *pl,
				  const rf_tensor *x, uint32_t correction, const rf_tensor *mean,
				  rf_tensor *y)
{
	uint64_t outputs = pl->outputs, len = pl->len;
	uint64_t chunks = RF_CEIL_DIV(TARGET_INVOCATIONS, outputs);
	chunks = RF_MAX(1, RF_MIN(chunks, RF_CEIL_DIV(len, MIN_CHUNK)));
	uint64_t chunk = chunks > 1 ? RF_CEIL_DIV(len, chunks) : len;
	chunks = chunk ? RF_CEIL_DIV(len, chunk) : 1;
	enum rf_status s;
	if (chunks == 1) {
		/* One pass, windows of outputs so y (and the mean) fit a storage binding. */
		uint64_t window;
		if ((s = rf_window_items(ctx, (const uint64_t[]){ 4 }, 1, OP_NAME, &window)) != RF_OK)
			return s;
		for (uint64_t first = 0; first < outputs && s == RF_OK; first += window) {
			uint64_t count = RF_MIN(window, outputs - first);
			struct rf_arg out = rf_arg_items(y, first, count, 4);
			struct rf_arg m = mean ? rf_arg_items(mean, first, count, 4) : out;
			s = first_pass(ctx, op, true, centred, pl, x, chunk, 1, correction, m, out,
				       first, count);
		}
		return s;
	}
	/* Partial states: outputs * chunks <= outputs + TARGET_INVOCATIONS, small. */
	rf_tensor *parts = NULL, *next = NULL;
	struct rf_shape ps = rf_shape_of(1, (int64_t)(outputs * chunks * 2));
	if ((s = rf_tensor_create(ctx, RF_F32, &ps, &parts)) != RF_OK)
		return s;
	struct rf_arg out = rf_arg_whole(&parts->mem);
	s = first_pass(ctx, op, false, centred, pl, x, chunk, chunks, correction,
		       mean ? rf_arg_whole(&mean->mem) : out, out, 0, outputs);
	uint64_t have = chunks;
	while (s == RF_OK && have > 1) {
		uint64_t per = RF_MIN(have, PARTIALS_PER_INVOCATION);
		uint64_t groups = RF_CEIL_DIV(have, per);
		bool final = groups == 1;
		if (!final) {
			ps = rf_shape_of(1, (int64_t)(outputs * groups * 2));
			if ((s = rf_tensor_create(ctx, RF_F32, &ps, &next)) != RF_OK)
				break;
		}
		uint32_t spec[] = { LOCAL, op, final };
		rf_pipeline *p;
		if ((s = rf_launch_pipeline(ctx, RF_SHADER_reduce_partials, spec, 3, &p)) != RF_OK)
			break;
		struct push_partials pc = { (uint32_t)(outputs * groups), (uint32_t)outputs,
					    (uint32_t)have, (uint32_t)per, (uint32_t)groups, (uint32_t)len,
					    correction };
		struct rf_arg args[] = { rf_arg_whole(&parts->mem),
					 final ? rf_arg_whole(&y->mem) : rf_arg_whole(&next->mem) };
		s = rf_launch_1d(ctx, p, args, 2, &pc, sizeof pc, pc.count, LOCAL);
		/* Freed now, reused safely: later dispatches on its range wait on a barrier. */
		rf_tensor_destroy(parts);
		parts = next;
		next = NULL;
		have = groups;
	}
	rf_tensor_destroy(parts);
	return s;
}

enum rf_status rf_op_reduce(rf_ctx *ctx, enum rf_reduce_op op, const rf_tensor *x,
			    uint32_t axes_mask, int correction, rf_tensor *y)
{
	enum rf_status s = check_args(op, x, axes_mask, correction, y);
	if (s != RF_OK)
		return s;
	struct plan pl;
	make_plan(&x->shape, axes_mask, &pl);
	if (pl.outputs == 0)
		return RF_OK;
	if (op != RF_RED_VAR && op != RF_RED_STD)
		return reduce_tree(ctx, (uint32_t)op, false, &pl, x, 0, NULL, y);
	/* Two-pass variance: the mean, then the sum of squared deviations from it. */
	rf_tensor *mean;
	struct rf_shape ms = rf_shape_of(1, (int64_t)pl.outputs);
	if ((s = rf_tensor_create(ctx, RF_F32, &ms, &mean)) != RF_OK)
		return s;
	s = reduce_tree(ctx, RF_RED_MEAN, false, &pl, x, 0, NULL, mean);
	if (s == RF_OK)
		s = reduce_tree(ctx, (uint32_t)op, true, &pl, x, (uint32_t)correction, mean, y);
	rf_tensor_destroy(mean);
	return s;
}
