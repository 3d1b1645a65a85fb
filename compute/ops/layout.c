/*
** layout.c: view copies and permutations for tensors of any dtype, on the host or on
** the device (layout.h). The device path is rf_op_copy; what that kernel cannot move
** (8-byte elements, 1-byte elements) is re-expressed in 32-bit words or copied through
** the host. Compute layer (L4).
*/
#include "layout.h"
#include "tensor_ops.h"
#include "context.h"
#include "status.h"

#include <string.h>

#define OP "view copy"

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

/* Byte range [lo, hi) a non-empty view reaches, relative to its tensor's first byte. */
static void view_bytes(const struct rf_view *v, size_t es, int64_t *lo, int64_t *hi)
{
	int64_t a = v->offset, b = v->offset;
	for (int d = 0; d < v->ndim; d++) {
		int64_t reach = (v->shape[d] - 1) * v->stride[d];
		*(reach < 0 ? &a : &b) += reach;
	}
	*lo = a * (int64_t)es;
	*hi = (b + 1) * (int64_t)es;
}

static enum rf_status check_args(const rf_tensor *src, const struct rf_view *sv,
				 const rf_tensor *dst, const struct rf_view *dv)
{
	if (!src || !dst)
		return rf_error(RF_ERR_INVALID, OP ": missing tensor");
	if (src->dtype != dst->dtype)
		return rf_error(RF_ERR_INVALID, OP ": src is %s but dst is %s", rf_dtype_name(src->dtype),
				rf_dtype_name(dst->dtype));
	if (rf_tensor_on_device(src) != rf_tensor_on_device(dst))
		return rf_error(RF_ERR_INVALID, OP ": src and dst must both be on the device or both on "
				"the host");
	return rf_views_check(OP, src, sv, dst, dv);
}

/* }===== */

/* {===== host copies */

static void copy_element(char *d, const char *s, size_t es)
{
	switch (es) {
	case 1: *d = *s; break;
	case 2: memcpy(d, s, 2); break;
	case 4: memcpy(d, s, 4); break;
	case 8: memcpy(d, s, 8); break;
	default: memcpy(d, s, es);
	}
}

/* Walks the views with an odometer over all but the innermost axis; the innermost axis
** is one memcpy when both sides are contiguous along it. */
static void host_copy(const char *src, const struct rf_view *sv, char *dst,
		      const struct rf_view *dv, size_t es)
{
	int nd = sv->ndim;
	if (nd == 0) {
		copy_element(dst + dv->offset * (int64_t)es, src + sv->offset * (int64_t)es, es);
		return;
	}
	int64_t idx[RF_MAX_DIMS] = { 0 };
	int64_t inner = sv->shape[nd - 1], ss = sv->stride[nd - 1], ds = dv->stride[nd - 1];
	bool run = ss == 1 && ds == 1;
	int64_t so = sv->offset, dof = dv->offset;
	for (;;) {
		if (run) {
			memcpy(dst + dof * (int64_t)es, src + so * (int64_t)es, (size_t)inner * es);
		} else {
			for (int64_t i = 0; i < inner; i++)
				copy_element(dst + (dof + i * ds) * (int64_t)es, src + (so + i * ss) * (int64_t)es, es);
		}
		int d = nd - 2;
		for (; d >= 0; d--) {
			so += sv->stride[d];
			dof += dv->stride[d];
			if (++idx[d] < sv->shape[d])
				break;
			so -= sv->stride[d] * sv->shape[d];
			dof -= dv->stride[d] * dv->shape[d];
			idx[d] = 0;
		}
		if (d < 0)
			return;
	}
}

/* A device copy done by the CPU: both tensors come down, dst goes back up (whole, so the
** parts outside dst_view keep their values). */
static enum rf_status copy_through_host(const rf_tensor *src, const struct rf_view *sv,
					rf_tensor *dst, const struct rf_view *dv)
{
	rf_tensor *hs = NULL, *hd = NULL;
	enum rf_status s = rf_tensor_to_host(src, &hs);
	if (s == RF_OK)
		s = rf_tensor_to_host(dst, &hd);
	if (s == RF_OK) {
		host_copy(hs->host, sv, hd->host, dv, rf_dtype_size(src->dtype));
		s = rf_tensor_upload(dst, hd->host, rf_tensor_nbytes(dst));
	}
	rf_tensor_destroy(hd);
	rf_tensor_destroy(hs);
	return s;
}

/* }===== */

/* 8-byte elements as pairs of 32-bit words: an extra innermost axis of 2, strides doubled.
** The aliases share the tensors' memory; they are never destroyed. */
static enum rf_status copy_words(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *sv,
				 rf_tensor *dst, const struct rf_view *dv)
{
	if (sv->ndim >= RF_MAX_DIMS)      /* no room for the word axis */
		return copy_through_host(src, sv, dst, dv);
	rf_tensor as = *src, ad = *dst;
	as.dtype = ad.dtype = RF_I32;
	as.shape = rf_shape_of(1, rf_tensor_numel(src) * 2);
	ad.shape = rf_shape_of(1, rf_tensor_numel(dst) * 2);
	struct rf_view s2 = { sv->ndim + 1, { 0 }, sv->offset * 2, { 0 } };
	struct rf_view d2 = { dv->ndim + 1, { 0 }, dv->offset * 2, { 0 } };
	for (int d = 0; d < sv->ndim; d++) {
		s2.shape[d] = d2.shape[d] = sv->shape[d];
		s2.stride[d] = sv->stride[d] * 2;
		d2.stride[d] = dv->stride[d] * 2;
	}
	s2.shape[sv->ndim] = d2.shape[sv->ndim] = 2;
	s2.stride[sv->ndim] = d2.stride[sv->ndim] = 1;
	return rf_op_copy(ctx, &as, &s2, &ad, &d2);
}

enum rf_status rf_view_copy(rf_ctx *ctx, const rf_tensor *src, const struct rf_view *src_view,
			    rf_tensor *dst, const struct rf_view *dst_view)
{
	enum rf_status s = check_args(src, src_view, dst, dst_view);
	if (s != RF_OK || view_numel(src_view) == 0)
		return s;
	size_t es = rf_dtype_size(src->dtype);
	if (!rf_tensor_on_device(src)) {
		int64_t slo, shi, dlo, dhi;
		view_bytes(src_view, es, &slo, &shi);
		view_bytes(dst_view, es, &dlo, &dhi);
		int64_t sb = (int64_t)(uintptr_t)src->host, db = (int64_t)(uintptr_t)dst->host;
		if (sb + slo < db + dhi && db + dlo < sb + shi)
			return rf_error(RF_ERR_INVALID, OP ": src and dst views overlap in memory");
		host_copy(src->host, src_view, dst->host, dst_view, es);
		return RF_OK;
	}
	if (es == 4 || (es == 2 && rf_ctx_caps(ctx)->storage_16bit))
		return rf_op_copy(ctx, src, src_view, dst, dst_view);
	if (es == 8)
		return copy_words(ctx, src, src_view, dst, dst_view);
	return copy_through_host(src, src_view, dst, dst_view);
}

enum rf_status rf_op_permute(rf_ctx *ctx, const rf_tensor *x, const int *perm, rf_tensor *y)
{
	if (!x || !y || !perm)
		return rf_error(RF_ERR_INVALID, "permute: missing argument");
	int nd = x->shape.ndim;
	bool seen[RF_MAX_DIMS] = { false };
	struct rf_shape want = { .ndim = nd };
	for (int i = 0; i < nd; i++) {
		if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]])
			return rf_error(RF_ERR_INVALID, "permute: the axis order is not a permutation of "
					"0..%d", nd - 1);
		seen[perm[i]] = true;
		want.dim[i] = x->shape.dim[perm[i]];
	}
	if (!rf_shape_equal(&want, &y->shape)) {
		char a[96], b[96];
		return rf_error(RF_ERR_INVALID, "permute: y is %s, expected %s",
				rf_shape_str(&y->shape, a, sizeof a), rf_shape_str(&want, b, sizeof b));
	}
	struct rf_view xv = rf_view_contiguous(x), sv = { .ndim = nd };
	for (int i = 0; i < nd; i++) {
		sv.shape[i] = xv.shape[perm[i]];
		sv.stride[i] = xv.stride[perm[i]];
	}
	struct rf_view yv = rf_view_contiguous(y);
	return rf_view_copy(ctx, x, &sv, y, &yv);
}
