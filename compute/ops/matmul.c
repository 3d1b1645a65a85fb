/*
** matmul.c: rf_op_matmul (batched, strided, alpha/beta) and rf_op_matmul_simple:
** checks that every operand stays inside its tensor and that C neither overlaps its
** inputs nor itself, then hands one matrix-product description to the kernel family of
** the device (gemm_launch.c). Compute layer (L4).
*/
#include "gemm_internal.h"
#include "launch.h"
#include "context.h"
#include "status.h"

#include <stdio.h>
#include <string.h>

/* One strided operand with its extents along (batch, rows, columns). */
struct extent {
	const char *name;
	const struct rf_matmul_operand *op;
	int64_t batch, rows, cols;
};

/* Index one past the last element the operand touches (0 when it touches none). */
static int64_t extent_end(const struct extent *e)
{
	if (e->batch == 0 || e->rows == 0 || e->cols == 0)
		return 0;
	return e->op->offset + (e->batch - 1) * e->op->batch_stride + (e->rows - 1) * e->op->row_stride +
	       (e->cols - 1) * e->op->col_stride + 1;
}

static enum rf_status check_operand(rf_ctx *ctx, const struct extent *e)
{
	enum rf_status s = rf_check_device(e->op->t, RF_F32, "matmul", e->name);
	if (s != RF_OK)
		return s;
	if (e->op->t->ctx != ctx)
		return rf_error(RF_ERR_INVALID, "matmul: %s belongs to another context", e->name);
	const struct rf_matmul_operand *o = e->op;
	if (o->offset < 0 || o->batch_stride < 0 || o->row_stride < 0 || o->col_stride < 0)
		return rf_error(RF_ERR_INVALID, "matmul: %s has a negative offset or stride", e->name);
	if (o->offset > UINT32_MAX || o->batch_stride > UINT32_MAX || o->row_stride > UINT32_MAX ||
	    o->col_stride > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "matmul: %s's offset or strides exceed 2^32", e->name);
	int64_t end = extent_end(e), numel = rf_tensor_numel(o->t);
	if (end > numel) {
		char sh[96];
		return rf_error(RF_ERR_INVALID, "matmul: %s (%lld x %lld x %lld, offset %lld, strides "
				"%lld/%lld/%lld) reaches element %lld of a %s tensor of %lld elements",
				e->name, (long long)e->batch, (long long)e->rows, (long long)e->cols,
				(long long)o->offset, (long long)o->batch_stride, (long long)o->row_stride,
				(long long)o->col_stride, (long long)end - 1,
				rf_shape_str(&o->t->shape, sh, sizeof sh), (long long)numel);
	}
	return RF_OK;
}

/* C's elements must be distinct: sorted by stride, each axis must step past everything
** the smaller axes reach. */
static bool distinct_elements(const struct extent *e)
{
	int64_t ext[3] = { e->batch, e->rows, e->cols };
	int64_t str[3] = { e->op->batch_stride, e->op->row_stride, e->op->col_stride };
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (str[j] < str[i]) {
				int64_t t = str[i]; str[i] = str[j]; str[j] = t;
				t = ext[i]; ext[i] = ext[j]; ext[j] = t;
			}
	int64_t reach = 0;
	for (int i = 0; i < 3; i++) {
		if (ext[i] <= 1)
			continue;
		if (str[i] <= reach)
			return false;
		reach += (ext[i] - 1) * str[i];
	}
	return true;
}

/* Whether the bytes C writes and the bytes `in` reads share a range of one block. */
static bool overlaps(const struct extent *c, const struct extent *in)
{
	const rf_tensor *ct = c->op->t, *it = in->op->t;
	if (ct->mem.block != it->mem.block || extent_end(c) == 0 || extent_end(in) == 0)
		return false;
	uint64_t c_lo = ct->mem.offset + 4 * (uint64_t)c->op->offset;
	uint64_t c_hi = ct->mem.offset + 4 * (uint64_t)extent_end(c);
	uint64_t i_lo = it->mem.offset + 4 * (uint64_t)in->op->offset;
	uint64_t i_hi = it->mem.offset + 4 * (uint64_t)extent_end(in);
	return c_lo < i_hi && i_lo < c_hi;
}

static struct rf_mm_operand to_problem(const struct rf_matmul_operand *o)
{
	return (struct rf_mm_operand){ &o->t->mem, RF_F32, o->offset, o->row_stride, o->col_stride,
				       o->batch_stride };
}

enum rf_status rf_op_matmul(rf_ctx *ctx, const struct rf_matmul *mm)
{
	if (!mm)
		return rf_error(RF_ERR_INVALID, "matmul: no arguments given");
	if (mm->batch < 0 || mm->m < 0 || mm->n < 0 || mm->k < 1)
		return rf_error(RF_ERR_INVALID, "matmul: sizes must be >= 0 and k >= 1 (batch %lld, m %lld, "
				"n %lld, k %lld)", (long long)mm->batch, (long long)mm->m, (long long)mm->n,
				(long long)mm->k);
	if (mm->m > UINT32_MAX || mm->n > UINT32_MAX || mm->k > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "matmul: a dimension exceeds 2^32");
	struct extent a = { "a", &mm->a, mm->batch, mm->m, mm->k };
	struct extent b = { "b", &mm->b, mm->batch, mm->k, mm->n };
	struct extent c = { "c", &mm->c, mm->batch, mm->m, mm->n };
	enum rf_status s;
	if ((s = check_operand(ctx, &a)) != RF_OK || (s = check_operand(ctx, &b)) != RF_OK ||
	    (s = check_operand(ctx, &c)) != RF_OK)
		return s;
	if (!distinct_elements(&c))
		return rf_error(RF_ERR_INVALID, "matmul: c's strides (%lld/%lld/%lld) write some elements "
				"twice", (long long)mm->c.batch_stride, (long long)mm->c.row_stride,
				(long long)mm->c.col_stride);
	if (overlaps(&c, &a) || overlaps(&c, &b))
		return rf_error(RF_ERR_INVALID, "matmul: c overlaps %s (the product cannot be computed in "
				"place)", overlaps(&c, &a) ? "a" : "b");
	enum rf_mm_kernel kernel;
	if ((s = rf_mm_kernel_choose(ctx, &kernel)) != RF_OK)
		return s;
	struct rf_mm_problem p = {
		.batch = mm->batch, .m = mm->m, .n = mm->n, .k = mm->k,
		.a = to_problem(&mm->a), .b = to_problem(&mm->b), .c = to_problem(&mm->c),
		.act = RF_ACT_NONE, .alpha = mm->alpha, .beta = mm->beta,
	};
	if (kernel == RF_MM_HOST) {
		if (p.batch > 0 && p.m > 0 && p.n > 0 && rf_matmul_host_fits(&p))
			return rf_matmul_host(ctx, &p);
		kernel = RF_MM_LANES;   /* a layout the BLAS cannot read */
	}
	return rf_mm_launch(ctx, kernel, &p);
}

/* "[2, 3, 4]" for a message. */
static const char *shape_of(const rf_tensor *t, char *buf, size_t size)
{
	return rf_shape_str(&t->shape, buf, size);
}

enum rf_status rf_op_matmul_simple(rf_ctx *ctx, const rf_tensor *a, const rf_tensor *b,
				   bool trans_b, rf_tensor *c)
{
	enum rf_status s;
	if ((s = rf_check_device(a, RF_F32, "matmul", "a")) != RF_OK ||
	    (s = rf_check_device(b, RF_F32, "matmul", "b")) != RF_OK ||
	    (s = rf_check_device(c, RF_F32, "matmul", "c")) != RF_OK)
		return s;
	char sa[96], sb[96], sc[96], sw[96];
	int nd = a->shape.ndim;
	if (nd < 2 || b->shape.ndim < 2 || (b->shape.ndim != 2 && b->shape.ndim != nd))
		return rf_error(RF_ERR_INVALID, "matmul: a %s and b %s: both need 2+ dimensions, b either "
				"2 or as many as a", shape_of(a, sa, sizeof sa), shape_of(b, sb, sizeof sb));
	int bd = b->shape.ndim;
	int64_t m = a->shape.dim[nd - 2], k = a->shape.dim[nd - 1];
	int64_t bk = b->shape.dim[bd - (trans_b ? 1 : 2)], n = b->shape.dim[bd - (trans_b ? 2 : 1)];
	if (bk != k)
		return rf_error(RF_ERR_INVALID, "matmul: a %s and b%s %s: inner dimensions %lld and %lld "
				"differ", shape_of(a, sa, sizeof sa), trans_b ? "ᵀ" : "",
				shape_of(b, sb, sizeof sb), (long long)k, (long long)bk);
	int64_t batch = 1;
	for (int i = 0; i < nd - 2; i++) {
		if (bd == nd && b->shape.dim[i] != a->shape.dim[i])
			return rf_error(RF_ERR_INVALID, "matmul: batch dimensions of a %s and b %s differ",
					shape_of(a, sa, sizeof sa), shape_of(b, sb, sizeof sb));
		batch *= a->shape.dim[i];
	}
	struct rf_shape want = a->shape;
	want.dim[nd - 1] = n;
	if (!rf_shape_equal(&want, &c->shape))
		return rf_error(RF_ERR_INVALID, "matmul: c has shape %s, expected %s for a %s and b%s %s",
				shape_of(c, sc, sizeof sc), rf_shape_str(&want, sw, sizeof sw),
				shape_of(a, sa, sizeof sa), trans_b ? "ᵀ" : "", shape_of(b, sb, sizeof sb));
	struct rf_matmul mm = {
		.batch = batch, .m = m, .n = n, .k = k,
		.a = { a, 0, m * k, k, 1 },
		/* A 2-D b is shared by every batch (batch stride 0). */
		.b = { b, 0, bd == nd ? k * n : 0, trans_b ? 1 : n, trans_b ? k : 1 },
		.c = { c, 0, m * n, n, 1 },
		.alpha = 1.0f, .beta = 0.0f,
	};
	return rf_op_matmul(ctx, &mm);
}
