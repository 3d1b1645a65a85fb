/*
** elementwise.c: launchers for elementwise kernels with broadcasting. Compute layer (L4).
*/
#include "elementwise.h"
#include "launch.h"
#include "status.h"

#include <string.h>

#define LOCAL 256

struct push_binary {
	uint32_t n, ndim, op, pad;
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
			return rf_error(RF_ERR_INVALID, "shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
					rf_shape_str(a, sa, sizeof sa), rf_shape_str(b, sb, sizeof sb), i,
					(long long)da, (long long)db);
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
	struct push_binary pc = { .n = (uint32_t)rf_tensor_numel(out), .ndim = (uint32_t)shape.ndim,
				  .op = (uint32_t)op };
	if (rf_tensor_numel(out) > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "binary op: more than 2^32 elements");
	for (int i = 0; i < shape.ndim; i++)
		pc.dims[i] = (uint32_t)shape.dim[i];
	broadcast_strides(&a->shape, &shape, pc.a_stride);
	broadcast_strides(&b->shape, &shape, pc.b_stride);
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	if ((s = rf_launch_pipeline(ctx, RF_SHADER_binary, spec, 1, &p)) != RF_OK)
		return s;
	struct rf_arg args[] = { rf_arg_whole(&a->mem), rf_arg_whole(&b->mem), rf_arg_whole(&out->mem) };
	return rf_launch_1d(ctx, p, args, 3, &pc, sizeof pc, pc.n, LOCAL);
}
