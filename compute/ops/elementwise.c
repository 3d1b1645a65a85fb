/*
** elementwise.c: launchers for elementwise kernels with broadcasting: binary arithmetic
** and comparisons (elementwise.h) and the three-way select rf_op_where (tensor_ops.h).
** Compute layer (L4).
*/
#include "elementwise.h"
#include "tensor_ops.h"
#include "launch.h"
#include "status.h"

#include <string.h>

#define LOCAL 256

struct push_binary {
	uint32_t n, first, ndim, op, a_base, b_base;
	uint32_t dims[8], a_stride[8], b_stride[8];
};
_Static_assert(sizeof(struct push_binary) <= 128, "push constants");

enum rf_status rf_broadcast_shape(const struct rf_shape *a, const struct rf_shape *b,
				  struct rf_shape *out)
{
	int nd = RF_MAX(a->ndim, b->ndim);
	out->ndim = nd;
	for (int i = 0; i < nd; i++) {
		int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
		int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
		if (da != db && da != 1 && db != 1) {
			char sa[96], sb[96];
			/* Dimensions counted from 1, as scripts count them. */
			return rf_error(RF_ERR_INVALID, "shapes %s and %s do not broadcast (dimension %d: "
					"%lld vs %lld)", rf_shape_str(a, sa, sizeof sa),
					rf_shape_str(b, sb, sizeof sb), i + 1, (long long)da, (long long)db);
		}
		out->dim[i] = da == 1 ? db : da;
	}
	return RF_OK;
}

/* Strides of `in` read along `out`'s axes: 0 where `in` is broadcast. */
static void broadcast_strides(const struct rf_shape *in, const struct rf_shape *out, uint32_t *stride)
{
	uint64_t s = 1;
	for (int i = out->ndim - 1; i >= 0; i--) {
		int k = in->ndim - out->ndim + i;
		int64_t d = k >= 0 ? in->dim[k] : 1;
		stride[i] = d == 1 ? 0 : (uint32_t)s;
		s *= (uint64_t)d;
	}
}

enum rf_status rf_op_binary(rf_ctx *ctx, enum rf_binary_op op, const rf_tensor *a,
			    const rf_tensor *b, rf_tensor *out)
{
	enum rf_status s;
	if ((s = rf_check_device(a, RF_F32, "binary op", "a")) != RF_OK ||
	    (s = rf_check_device(b, RF_F32, "binary op", "b")) != RF_OK ||
	    (s = rf_check_device(out, RF_F32, "binary op", "out")) != RF_OK)
		return s;
	struct rf_shape shape;
	if ((s = rf_broadcast_shape(&a->shape, &b->shape, &shape)) != RF_OK)
		return s;
	if (!rf_shape_equal(&shape, &out->shape))
		return rf_error(RF_ERR_INVALID, "binary op: output shape does not match the broadcast shape");
	uint64_t n = (uint64_t)rf_tensor_numel(out);
	if (n == 0)
		return RF_OK;
	if (n > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "binary op: more than 2^32 elements");
	struct push_binary pc = { .ndim = (uint32_t)shape.ndim, .op = (uint32_t)op,
				  .a_base = rf_texel_base(a, 4), .b_base = rf_texel_base(b, 4) };
	for (int i = 0; i < shape.ndim; i++)
		pc.dims[i] = (uint32_t)shape.dim[i];
	broadcast_strides(&a->shape, &shape, pc.a_stride);
	broadcast_strides(&b->shape, &shape, pc.b_stride);
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	uint64_t window;
	if ((s = rf_launch_pipeline(ctx, RF_SHADER_binary, spec, 1, &p)) != RF_OK ||
	    (s = rf_window_items(ctx, (const uint64_t[]){ 4 }, 1, "binary op", &window)) != RF_OK)
		return s;
	/* Inputs through texel views of their whole blocks; the output in windows. */
	for (uint64_t first = 0; first < n && s == RF_OK; first += window) {
		pc.n = (uint32_t)RF_MIN(window, n - first);
		pc.first = (uint32_t)first;
		struct rf_arg args[] = { rf_arg_whole(&a->mem), rf_arg_whole(&b->mem),
					 rf_arg_items(out, first, pc.n, 4) };
		s = rf_launch_1d(ctx, p, args, 3, &pc, sizeof pc, pc.n, LOCAL);
	}
	return s;
}

/* {===== where */

#define WHERE_DIMS 6

struct push_where {
	uint32_t count, first, ndim, cond_base, a_base, b_base;
	uint32_t dim[WHERE_DIMS], cond_stride[WHERE_DIMS], a_stride[WHERE_DIMS], b_stride[WHERE_DIMS];
};
_Static_assert(sizeof(struct push_where) <= 128, "push constants");

/* The output's axes with the three inputs' strides, axes of size 1 dropped and
** neighbours merged where every input steps through them as through one axis. */
struct where_axes {
	int ndim;
	uint64_t dim[RF_MAX_DIMS], stride[3][RF_MAX_DIMS];
};

static void merge_where_axes(const struct rf_shape *out, const rf_tensor *const in[3],
			     struct where_axes *w)
{
	uint32_t st[3][RF_MAX_DIMS];
	for (int k = 0; k < 3; k++)
		broadcast_strides(&in[k]->shape, out, st[k]);
	int n = 0;    /* innermost first */
	uint64_t dim[RF_MAX_DIMS], stride[3][RF_MAX_DIMS];
	for (int d = out->ndim - 1; d >= 0; d--) {
		if (out->dim[d] == 1)
			continue;
		bool merge = n > 0;
		for (int k = 0; k < 3 && merge; k++)
			merge = st[k][d] == stride[k][n - 1] * dim[n - 1];
		if (merge) {
			dim[n - 1] *= (uint64_t)out->dim[d];
			continue;
		}
		dim[n] = (uint64_t)out->dim[d];
		for (int k = 0; k < 3; k++)
			stride[k][n] = st[k][d];
		n++;
	}
	w->ndim = n;
	for (int i = 0; i < n; i++) {
		w->dim[n - 1 - i] = dim[i];
		for (int k = 0; k < 3; k++)
			w->stride[k][n - 1 - i] = stride[k][i];
	}
}

enum rf_status rf_op_where(rf_ctx *ctx, const rf_tensor *cond, const rf_tensor *a,
			   const rf_tensor *b, rf_tensor *y)
{
	enum rf_status s;
	if ((s = rf_check_device(cond, RF_F32, "where", "cond")) != RF_OK ||
	    (s = rf_check_device(a, RF_F32, "where", "a")) != RF_OK ||
	    (s = rf_check_device(b, RF_F32, "where", "b")) != RF_OK ||
	    (s = rf_check_device(y, RF_F32, "where", "y")) != RF_OK)
		return s;
	struct rf_shape ab, shape;
	if ((s = rf_broadcast_shape(&a->shape, &b->shape, &ab)) != RF_OK ||
	    (s = rf_broadcast_shape(&cond->shape, &ab, &shape)) != RF_OK)
		return rf_error_wrap(s, "where");
	if (!rf_shape_equal(&shape, &y->shape)) {
		char e[96], g[96];
		return rf_error(RF_ERR_INVALID, "where: y is %s, the broadcast shape is %s",
				rf_shape_str(&y->shape, g, sizeof g), rf_shape_str(&shape, e, sizeof e));
	}
	uint64_t n = (uint64_t)rf_tensor_numel(y);
	if (n == 0)
		return RF_OK;
	if (n > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "where: more than 2^32 elements");
	const rf_tensor *in[3] = { cond, a, b };
	struct where_axes w;
	merge_where_axes(&shape, in, &w);
	if (w.ndim > WHERE_DIMS)
		return rf_error(RF_ERR_UNSUPPORTED, "where: the broadcast needs %d axes (at most %d)",
				w.ndim, WHERE_DIMS);
	struct push_where pc = { .ndim = (uint32_t)w.ndim, .cond_base = rf_texel_base(cond, 4),
				 .a_base = rf_texel_base(a, 4), .b_base = rf_texel_base(b, 4) };
	for (int d = 0; d < w.ndim; d++) {
		pc.dim[d] = (uint32_t)w.dim[d];
		pc.cond_stride[d] = (uint32_t)w.stride[0][d];
		pc.a_stride[d] = (uint32_t)w.stride[1][d];
		pc.b_stride[d] = (uint32_t)w.stride[2][d];
	}
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	uint64_t window;
	if ((s = rf_launch_pipeline(ctx, RF_SHADER_where, spec, 1, &p)) != RF_OK ||
	    (s = rf_window_items(ctx, (const uint64_t[]){ 4 }, 1, "where", &window)) != RF_OK)
		return s;
	for (uint64_t first = 0; first < n && s == RF_OK; first += window) {
		pc.count = (uint32_t)RF_MIN(window, n - first);
		pc.first = (uint32_t)first;
		struct rf_arg args[] = { rf_arg_whole(&cond->mem), rf_arg_whole(&a->mem),
					 rf_arg_whole(&b->mem), rf_arg_items(y, first, pc.count, 4) };
		s = rf_launch_1d(ctx, p, args, 4, &pc, sizeof pc, pc.count, LOCAL);
	}
	return s;
}

/* }===== */
