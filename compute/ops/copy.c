/*
** copy.c: strided N-d copies between views of device tensors (slices, transposes,
** permutes, concatenation into slices, broadcast expansion) and the patch extraction
** of CLIP's conv1, which is one such copy. Views are merged into as few axes as
** possible, and regions whose byte span exceeds one storage binding are split along
** their outermost axis until each fits. Compute layer (L4).
*/
#include "tensor_ops.h"
#include "launch.h"
#include "status.h"
#include "transfer.h"

#include <stdlib.h>
#include <string.h>

#define LOCAL 64
#define RUN 16        /* elements per invocation along the innermost axis */
#define OP "copy"

struct push_copy {
	uint32_t count, rows, ndim, src_base, dst_base;
	uint32_t dim[8];
	int32_t src_stride[8], dst_stride[8];
};
_Static_assert(sizeof(struct push_copy) <= 128, "push constants");

struct rf_view rf_view_contiguous(const rf_tensor *t)
{
	struct rf_view v = { .ndim = t->shape.ndim };
	int64_t stride = 1;
	for (int d = t->shape.ndim - 1; d >= 0; d--) {
		v.shape[d] = t->shape.dim[d];
		v.stride[d] = stride;
		stride *= t->shape.dim[d];
	}
	return v;
}

/* {===== checks */

static int64_t view_numel(const struct rf_view *v)
{
	for (int d = 0; d < v->ndim; d++)
		if (v->shape[d] == 0)
			return 0;   /* before any product: the other sizes may be huge */
	int64_t n = 1;
	for (int d = 0; d < v->ndim; d++)
		n *= v->shape[d];
	return n;
}

/* Lowest and highest element offsets a non-empty view reaches. */
static void view_span(const struct rf_view *v, int64_t *lo, int64_t *hi)
{
	*lo = *hi = v->offset;
	for (int d = 0; d < v->ndim; d++) {
		int64_t reach = (v->shape[d] - 1) * v->stride[d];
		*(reach < 0 ? lo : hi) += reach;
	}
}

static enum rf_status check_view(const char *op, const struct rf_view *v, const rf_tensor *t,
				 const char *what)
{
	if (!v)
		return rf_error(RF_ERR_INVALID, "%s: %s view is missing", op, what);
	if (v->ndim < 0 || v->ndim > RF_MAX_DIMS)
		return rf_error(RF_ERR_INVALID, "%s: %s view has %d axes (at most %d)", op, what, v->ndim,
				RF_MAX_DIMS);
	/* A view with no element touches no memory, whatever its other sizes and strides
	** (a tensor [2^61, 0] is valid): nothing more to check, and nothing is multiplied. */
	bool empty = false;
	for (int d = 0; d < v->ndim; d++) {
		if (v->shape[d] < 0)
			return rf_error(RF_ERR_INVALID, "%s: %s view axis %d has size %lld", op, what, d,
					(long long)v->shape[d]);
		empty = empty || v->shape[d] == 0;
	}
	if (empty)
		return RF_OK;
	for (int d = 0; d < v->ndim; d++) {
		if (v->stride[d] == INT64_MIN)
			return rf_error(RF_ERR_INVALID, "%s: %s view axis %d has stride %lld", op, what, d,
					(long long)v->stride[d]);
		int64_t s = v->stride[d] < 0 ? -v->stride[d] : v->stride[d];
		if (v->shape[d] > (INT64_C(1) << 40) || s > (INT64_C(1) << 40))
			return rf_error(RF_ERR_INVALID, "%s: %s view axis %d has size %lld, stride %lld",
					op, what, d, (long long)v->shape[d], (long long)v->stride[d]);
	}
	int64_t lo, hi;
	view_span(v, &lo, &hi);
	if (lo < 0 || hi >= rf_tensor_numel(t))
		return rf_error(RF_ERR_INVALID, "%s: %s view reaches elements [%lld, %lld], outside "
				"its tensor's [0, %lld)", op, what, (long long)lo, (long long)hi,
				(long long)rf_tensor_numel(t));
	return RF_OK;
}

enum rf_status rf_views_check(const char *op, const rf_tensor *src, const struct rf_view *sv,
			      const rf_tensor *dst, const struct rf_view *dv)
{
	enum rf_status s;
	if ((s = check_view(op, sv, src, "src")) != RF_OK || (s = check_view(op, dv, dst, "dst")) != RF_OK)
		return s;
	bool same = sv->ndim == dv->ndim;
	for (int d = 0; same && d < sv->ndim; d++)
		same = sv->shape[d] == dv->shape[d];
	if (!same)
		return rf_error(RF_ERR_INVALID, "%s: src and dst views have different shapes", op);
	if (view_numel(dv) == 0)
		return RF_OK;   /* writes nothing */
	for (int d = 0; d < dv->ndim; d++)
		if (dv->stride[d] == 0 && dv->shape[d] > 1)
			return rf_error(RF_ERR_INVALID, "%s: dst view axis %d has stride 0 (it would "
					"write one element several times)", op, d);
	return RF_OK;
}

static enum rf_status check_args(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *sv,
				 const rf_tensor *dst, const struct rf_view *dv)
{
	if (!src || !dst || !rf_tensor_on_device(src) || !rf_tensor_on_device(dst))
		return rf_error(RF_ERR_INVALID, OP ": src and dst must be device tensors");
	if (src->dtype != dst->dtype)
		return rf_error(RF_ERR_INVALID, OP ": src is %s but dst is %s", rf_dtype_name(src->dtype),
				rf_dtype_name(dst->dtype));
	size_t es = rf_dtype_size(src->dtype);
	if (es != 4 && es != 2)
		return rf_error(RF_ERR_UNSUPPORTED, OP ": %s elements (only 4- and 2-byte dtypes)",
				rf_dtype_name(src->dtype));
	if (es == 2 && !rf_ctx_caps(ctx)->storage_16bit)
		return rf_error(RF_ERR_UNSUPPORTED, OP ": %s needs 16-bit storage, which %s lacks",
				rf_dtype_name(src->dtype), rf_ctx_caps(ctx)->name);
	enum rf_status s = rf_views_check(OP, src, sv, dst, dv);
	if (s != RF_OK)
		return s;
	if (view_numel(sv) > 0 && src->mem.block == dst->mem.block) {
		int64_t slo, shi, dlo, dhi;
		view_span(sv, &slo, &shi);
		view_span(dv, &dlo, &dhi);
		uint64_t a0 = src->mem.offset + (uint64_t)slo * es;
		uint64_t a1 = src->mem.offset + (uint64_t)(shi + 1) * es;
		uint64_t b0 = dst->mem.offset + (uint64_t)dlo * es;
		uint64_t b1 = dst->mem.offset + (uint64_t)(dhi + 1) * es;
		if (a0 < b1 && b0 < a1)
			return rf_error(RF_ERR_INVALID, OP ": src and dst views overlap in memory");
	}
	return RF_OK;
}

/* }===== */

/* {===== regions */

/* The iteration space: axes outermost first, with a stride per side. */
struct region {
	int ndim;
	int64_t dim[RF_MAX_DIMS], ss[RF_MAX_DIMS], ds[RF_MAX_DIMS];
	int64_t so, dof;
};

/* Drops axes of size 1 and merges an axis into its inner neighbour where both views
** step through them as through one axis. */
static struct region merge_axes(const struct rf_view *sv, const struct rf_view *dv)
{
	struct region r = { .so = sv->offset, .dof = dv->offset };
	int64_t dim[RF_MAX_DIMS], ss[RF_MAX_DIMS], ds[RF_MAX_DIMS];
	int n = 0;   /* innermost first */
	for (int d = sv->ndim - 1; d >= 0; d--) {
		if (sv->shape[d] == 1)
			continue;
		if (n && sv->stride[d] == ss[n - 1] * dim[n - 1] &&
		    dv->stride[d] == ds[n - 1] * dim[n - 1]) {
			dim[n - 1] *= sv->shape[d];
			continue;
		}
		dim[n] = sv->shape[d];
		ss[n] = sv->stride[d];
		ds[n] = dv->stride[d];
		n++;
	}
	if (n == 0) {      /* one element */
		dim[0] = 1;
		ss[0] = ds[0] = 0;
		n = 1;
	}
	r.ndim = n;
	for (int i = 0; i < n; i++) {
		r.dim[n - 1 - i] = dim[i];
		r.ss[n - 1 - i] = ss[i];
		r.ds[n - 1 - i] = ds[i];
	}
	/* A transpose-like copy: src is contiguous along some outer axis but not along the
	** innermost. Iteration order is free (dst never aliases itself), so move that axis
	** next to the innermost one, where neighbouring lanes walk it (copy.comp). */
	if (n >= 3 && r.ss[n - 1] != 1 && r.ss[n - 1] != -1) {
		for (int k = n - 3; k >= 0; k--) {
			if (r.ss[k] != 1 && r.ss[k] != -1)
				continue;
			int64_t d = r.dim[k], a = r.ss[k], b = r.ds[k];
			for (int j = k; j < n - 2; j++) {
				r.dim[j] = r.dim[j + 1];
				r.ss[j] = r.ss[j + 1];
				r.ds[j] = r.ds[j + 1];
			}
			r.dim[n - 2] = d;
			r.ss[n - 2] = a;
			r.ds[n - 2] = b;
			break;
		}
	}
	return r;
}

static void region_span(const struct region *r, bool dst, int64_t *lo, int64_t *hi)
{
	*lo = *hi = dst ? r->dof : r->so;
	for (int d = 0; d < r->ndim; d++) {
		int64_t reach = (r->dim[d] - 1) * (dst ? r->ds[d] : r->ss[d]);
		*(reach < 0 ? lo : hi) += reach;
	}
}

struct copy_job {
	rf_ctx *ctx;
	rf_pipeline *p;
	const rf_tensor *src;
	rf_tensor *dst;
	uint64_t esize, align_elems, max_elems;
};

/* The window of a side: first element bound (aligned) and element count. */
static bool side_window(const struct copy_job *j, const struct region *r, bool dst,
			int64_t *start, int64_t *count)
{
	int64_t lo, hi;
	region_span(r, dst, &lo, &hi);
	*start = lo - lo % (int64_t)j->align_elems;
	*count = hi - *start + 1;
	return (uint64_t)*count <= j->max_elems;
}

static enum rf_status dispatch(const struct copy_job *j, const struct region *r, int64_t s0,
			       int64_t sn, int64_t d0, int64_t dn)
{
	struct push_copy pc = { .ndim = (uint32_t)r->ndim, .src_base = (uint32_t)(r->so - s0),
				.dst_base = (uint32_t)(r->dof - d0) };
	uint64_t rows = 1;
	for (int d = 0; d < r->ndim; d++) {
		pc.dim[d] = (uint32_t)r->dim[d];
		/* Axes of size 1 never step; their (possibly huge) strides are not needed. */
		pc.src_stride[d] = r->dim[d] > 1 ? (int32_t)r->ss[d] : 0;
		pc.dst_stride[d] = r->dim[d] > 1 ? (int32_t)r->ds[d] : 0;
		if (d < r->ndim - 1)
			rows *= (uint64_t)r->dim[d];
	}
	pc.rows = (uint32_t)rows;
	pc.count = (uint32_t)(rows * RF_CEIL_DIV((uint64_t)r->dim[r->ndim - 1], RUN));
	struct rf_arg args[] = { rf_arg_items(j->src, (uint64_t)s0, (uint64_t)sn, j->esize),
				 rf_arg_items(j->dst, (uint64_t)d0, (uint64_t)dn, j->esize) };
	return rf_launch_1d(j->ctx, j->p, args, 2, &pc, sizeof pc, pc.count, LOCAL);
}

/* Copies a region, halving its outermost non-trivial axis until both sides fit a
** storage binding. A single element always fits, so this ends. */
static enum rf_status copy_region(const struct copy_job *j, const struct region *r)
{
	int64_t s0, sn, d0, dn;
	bool fits_s = side_window(j, r, false, &s0, &sn), fits_d = side_window(j, r, true, &d0, &dn);
	if (fits_s && fits_d)
		return dispatch(j, r, s0, sn, d0, dn);
	int k = 0;
	while (r->dim[k] == 1)
		k++;
	struct region a = *r, b = *r;
	int64_t half = r->dim[k] / 2;
	a.dim[k] = half;
	b.dim[k] = r->dim[k] - half;
	b.so += half * r->ss[k];
	b.dof += half * r->ds[k];
	enum rf_status s = copy_region(j, &a);
	return s == RF_OK ? copy_region(j, &b) : s;
}

/* }===== */

enum rf_status rf_op_copy(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *src_view,
			  rf_tensor *dst, const struct rf_view *dst_view)
{
	enum rf_status s = check_args(ctx, src, src_view, dst, dst_view);
	if (s != RF_OK || view_numel(src_view) == 0)
		return s;
	struct copy_job j = { ctx, NULL, src, dst, rf_dtype_size(src->dtype), 1, 0 };
	uint32_t spec[] = { LOCAL, RUN };
	if ((s = rf_launch_pipeline(ctx, j.esize == 2 ? RF_SHADER_copy16 : RF_SHADER_copy, spec, 2,
				    &j.p)) != RF_OK)
		return s;
	const struct rf_caps *caps = rf_ctx_caps(ctx);
	j.align_elems = RF_MAX(1, caps->storage_align / j.esize);
	/* Window offsets stay below 2^31 so signed 32-bit arithmetic in the shader is safe. */
	j.max_elems = RF_MIN(caps->max_storage_range / j.esize, (uint64_t)INT32_MAX);
	struct region r = merge_axes(src_view, dst_view);
	if (r.ndim == 1 && r.ss[0] == 1 && r.ds[0] == 1 && (r.dim[0] * (int64_t)j.esize) % 4 == 0 &&
	    (r.so * (int64_t)j.esize) % 4 == 0 && (r.dof * (int64_t)j.esize) % 4 == 0)
		/* One contiguous run: a transfer copy, at memcpy speed. */
		return rf_mem_copy(ctx, &src->mem, (uint64_t)r.so * j.esize, &dst->mem,
				   (uint64_t)r.dof * j.esize, (uint64_t)r.dim[0] * j.esize);
	return copy_region(&j, &r);
}

enum rf_status rf_op_patchify(rf_ctx *ctx, const rf_tensor *pixels, int patch, rf_tensor *patches)
{
	enum rf_status s;
	if ((s = rf_check_device(pixels, RF_F32, "patchify", "pixels")) != RF_OK ||
	    (s = rf_check_device(patches, RF_F32, "patchify", "patches")) != RF_OK)
		return s;
	const struct rf_shape *ps = &pixels->shape;
	if (ps->ndim != 4 || patch < 1 || ps->dim[2] % patch || ps->dim[3] % patch)
		return rf_error(RF_ERR_INVALID, "patchify: pixels must be [B, C, H, W] with H and W "
				"multiples of the patch size %d", patch);
	int64_t b = ps->dim[0], c = ps->dim[1], h = ps->dim[2], w = ps->dim[3], p = patch;
	int64_t ph = h / p, pw = w / p;
	struct rf_shape want = rf_shape_of(2, b * ph * pw, c * p * p);
	if (!rf_shape_equal(&patches->shape, &want)) {
		char a[96], e[96];
		return rf_error(RF_ERR_INVALID, "patchify: patches is %s, expected %s",
				rf_shape_str(&patches->shape, a, sizeof a),
				rf_shape_str(&want, e, sizeof e));
	}
	/* Axes (b, i, j, c, u, v): pixel[b, c, i*p + u, j*p + v] -> patches[b*ph*pw + i*pw + j,
	** c*p*p + u*p + v], which is the destination's row-major order. */
	struct rf_view src = { 6, { b, ph, pw, c, p, p }, 0, { c * h * w, p * w, p, h * w, w, 1 } };
	struct rf_view dst = { 6, { b, ph, pw, c, p, p }, 0,
			       { ph * pw * c * p * p, pw * c * p * p, c * p * p, p * p, p, 1 } };
	return rf_op_copy(ctx, pixels, &src, patches, &dst);
}
