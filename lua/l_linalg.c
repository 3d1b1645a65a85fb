/*
** l_linalg.c: linear algebra for scripts: matmul with NumPy's semantics on the device
** (rf_op_matmul, strided batched), and the decompositions LAPACK does best on the host
** in double precision: svd (thin, t = U diag(S) Vᵀ) and eigh (symmetric eigenproblem).
** Decomposition results are uploaded as f32 device tensors. Lua layer (L6).
*/
#include "ltensor.h"
#include "gemm.h"
#include "layout.h"
#include "tensor_ops.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

/* {===== matmul */

/* The batch dimensions of a matrix operand (all but its last two). */
static struct rf_shape batch_of(const struct rf_shape *s)
{
	struct rf_shape b = { .ndim = s->ndim - 2 };
	for (int d = 0; d < b.ndim; d++)
		b.dim[d] = s->dim[d];
	return b;
}

/* The batch stride of matrix operand `x` ([xb..., r, c]) over the output batch `batch`:
** 0 when it has a single matrix, r*c when its batch dims equal the output's; otherwise
** x is expanded (copied) to [batch..., r, c], pushed, and *x updated. */
static int64_t batch_stride(lua_State *L, const rf_tensor **x, const struct rf_shape *xs,
			    const struct rf_shape *batch)
{
	int64_t r = xs->dim[xs->ndim - 2], c = xs->dim[xs->ndim - 1];
	struct rf_shape xb = batch_of(xs);
	if (rf_shape_numel(&xb) == 1)
		return 0;
	bool same = true;
	for (int d = 0; d < batch->ndim && same; d++) {
		int k = d - (batch->ndim - xb.ndim);
		same = (k >= 0 ? xb.dim[k] : 1) == batch->dim[d];
	}
	if (same)
		return r * c;
	struct rf_view sv = { .ndim = batch->ndim + 2 };
	int64_t stride = r * c;
	for (int d = batch->ndim - 1; d >= 0; d--) {
		int k = d - (batch->ndim - xb.ndim);
		int64_t have = k >= 0 ? xb.dim[k] : 1;
		sv.shape[d] = batch->dim[d];
		sv.stride[d] = have == 1 ? 0 : stride;
		stride *= have;
	}
	sv.shape[batch->ndim] = r;
	sv.shape[batch->ndim + 1] = c;
	sv.stride[batch->ndim] = c;
	sv.stride[batch->ndim + 1] = 1;
	struct rf_shape es = rf_shape_make(sv.ndim, sv.shape);
	rf_tensor *e = rf_lua_new_device_tensor(L, RF_F32, &es);
	struct rf_view ev = rf_view_contiguous(e);
	rf_tensor alias = **x;                 /* x with its matrix shape (1-d operands) */
	alias.shape = *xs;
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_view_copy(e->ctx, &alias, &sv, e, &ev));
	if (st != RF_OK)
		rf_lua_fail(L, st, "matmul");
	*x = e;
	return r * c;
}

/* matmul(a, b) with NumPy semantics: a 1-d a is a row [1, k] and a 1-d b a column
** [k, 1] (that dimension is dropped from the result); batch dimensions broadcast. */
static int l_matmul(lua_State *L)
{
	enum rf_status st;
	lua_settop(L, 2);
	rf_lua_check_tensor(L, 1);
	rf_lua_check_tensor(L, 2);
	const rf_tensor *a = rf_lua_f32_arg(L, 1), *b = rf_lua_f32_arg(L, 2);
	char sa[160], sb[160];
	rf_shape_str(&a->shape, sa, sizeof sa);
	rf_shape_str(&b->shape, sb, sizeof sb);
	if (a->shape.ndim == 0 || b->shape.ndim == 0)
		return luaL_error(L, "matmul: shapes %s and %s: operands need at least one dimension "
				  "(use * to scale)", sa, sb);
	struct rf_shape as = a->shape, bs = b->shape;
	if (as.ndim == 1)
		as = rf_shape_of(2, (int64_t)1, as.dim[0]);
	if (bs.ndim == 1)
		bs = rf_shape_of(2, bs.dim[0], (int64_t)1);
	int64_t m = as.dim[as.ndim - 2], k = as.dim[as.ndim - 1];
	int64_t kb = bs.dim[bs.ndim - 2], n = bs.dim[bs.ndim - 1];
	if (k != kb)
		return luaL_error(L, "matmul: shapes %s and %s do not match (inner dimensions %I and %I)",
				  sa, sb, (lua_Integer)k, (lua_Integer)kb);
	struct rf_shape ab = batch_of(&as), bb = batch_of(&bs), batch;
	int nd = RF_MAX(ab.ndim, bb.ndim);
	batch.ndim = nd;
	for (int d = 0; d < nd; d++) {
		int ia = d - (nd - ab.ndim), ib = d - (nd - bb.ndim);
		int64_t da = ia >= 0 ? ab.dim[ia] : 1, db = ib >= 0 ? bb.dim[ib] : 1;
		if (da != db && da != 1 && db != 1)
			return luaL_error(L, "matmul: shapes %s and %s: batch dimensions do not broadcast",
					  sa, sb);
		batch.dim[d] = da == 1 ? db : da;
	}
	if (nd + 2 > RF_MAX_DIMS)
		return luaL_error(L, "matmul: too many dimensions");
	struct rf_shape os = batch;
	if (a->shape.ndim > 1)
		os.dim[os.ndim++] = m;
	if (b->shape.ndim > 1)
		os.dim[os.ndim++] = n;
	int64_t sa_stride = batch_stride(L, &a, &as, &batch);
	int64_t sb_stride = batch_stride(L, &b, &bs, &batch);
	rf_tensor *c = rf_lua_new_device_tensor(L, RF_F32, &os);
	if (rf_tensor_numel(c) == 0)
		return 1;
	if (k == 0) {
		RF_LUA_RETRY_OOM(L, st, rf_op_fill(c->ctx, c, 0.0f));
		if (st != RF_OK)
			return rf_lua_fail(L, st, "matmul");
		return 1;
	}
	struct rf_matmul mm = {
		.batch = rf_shape_numel(&batch), .m = m, .n = n, .k = k,
		.a = { a, 0, sa_stride, k, 1 },
		.b = { b, 0, sb_stride, n, 1 },
		.c = { c, 0, m * n, n, 1 },
		.alpha = 1.0f, .beta = 0.0f,
	};
	RF_LUA_RETRY_OOM(L, st, rf_op_matmul(c->ctx, &mm));
	if (st != RF_OK)
		return rf_lua_fail(L, st, "matmul");
	return 1;
}

/* }===== */

/* {===== decompositions (host, double precision) */

/* The values of a [..., r, c] tensor (any dtype, anywhere) as doubles on the stack,
** checked finite. */
static const double *matrix_values(lua_State *L, int arg, const char *what, int64_t *batch,
				   int64_t *r, int64_t *c)
{
	const rf_tensor *t = rf_lua_check_tensor(L, arg);
	if (t->shape.ndim < 2) {
		rf_lua_push_shape_str(L, &t->shape);
		luaL_error(L, "%s: needs a matrix (or a batch of them), got shape %s", what,
			   lua_tostring(L, -1));
	}
	*r = t->shape.dim[t->shape.ndim - 2];
	*c = t->shape.dim[t->shape.ndim - 1];
	*batch = (*r) * (*c) != 0 ? rf_tensor_numel(t) / ((*r) * (*c)) : 0;
	if (*r > INT32_MAX / 2 || *c > INT32_MAX / 2)
		luaL_error(L, "%s: matrix too large", what);
	const double *v = rf_lua_tensor_values(L, t);
	for (int64_t i = 0; i < rf_tensor_numel(t); i++)
		if (!isfinite(v[i]))
			luaL_error(L, "%s: the input contains NaN or infinity", what);
	return v;
}

/* Pushes an f32 device tensor of shape `s` holding the doubles v. */
static void push_result(lua_State *L, const struct rf_shape *s, const double *v)
{
	int64_t n = rf_shape_numel(s);
	float *f = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *f, 0);
	for (int64_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	rf_tensor *t = rf_lua_new_device_tensor(L, RF_F32, s);
	enum rf_status st;
	RF_LUA_RETRY_OOM(L, st, rf_tensor_upload(t, f, (uint64_t)n * 4));
	if (st != RF_OK)
		rf_lua_fail(L, st, "uploading a result");
	lua_remove(L, -2);
}

static double *scratch(lua_State *L, int64_t n)
{
	return lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(double), 0);
}

/* refract.svd(t) -> U [..., m, k], S [..., k], V [..., n, k] with k = min(m, n) and
** t = U diag(S) Vᵀ; singular values descending (LAPACK dgesdd). */
static int l_svd(lua_State *L)
{
	int64_t nb, m, n;
	const double *x = matrix_values(L, 1, "svd", &nb, &m, &n);            /* 2 */
	const rf_tensor *t = rf_lua_check_tensor(L, 1);
	int64_t k = RF_MIN(m, n);
	double *u = scratch(L, nb * m * k), *s = scratch(L, nb * k), *v = scratch(L, nb * n * k);
	double *a = scratch(L, m * n), *vt = scratch(L, k * n);
	for (int64_t b = 0; b < nb && k > 0; b++) {
		memcpy(a, x + b * m * n, (size_t)(m * n) * sizeof *a);
		lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)m, (lapack_int)n, a,
						 (lapack_int)n, s + b * k, u + b * m * k, (lapack_int)k,
						 vt, (lapack_int)n);
		if (info != 0)
			return luaL_error(L, "svd: LAPACK dgesdd failed (info %d: %s)", (int)info,
					  info > 0 ? "did not converge" : "bad argument");
		for (int64_t i = 0; i < n; i++)
			for (int64_t j = 0; j < k; j++)
				v[b * n * k + i * k + j] = vt[j * n + i];
	}
	struct rf_shape us = t->shape, ss = t->shape, vs = t->shape;
	us.dim[us.ndim - 1] = k;
	ss.ndim--;
	ss.dim[ss.ndim - 1] = k;
	vs.dim[vs.ndim - 2] = n;
	vs.dim[vs.ndim - 1] = k;
	push_result(L, &us, u);
	push_result(L, &ss, s);
	push_result(L, &vs, v);
	return 3;
}

/* refract.eigh(t) -> eigenvalues [..., n] ascending, eigenvectors [..., n, n] as columns,
** for a symmetric t (checked to a relative 1e-5 of its largest entry; the symmetric
** part is decomposed). LAPACK dsyevd. */
static int l_eigh(lua_State *L)
{
	int64_t nb, n, n2;
	const double *x = matrix_values(L, 1, "eigh", &nb, &n, &n2);
	const rf_tensor *t = rf_lua_check_tensor(L, 1);
	if (n != n2) {
		rf_lua_push_shape_str(L, &t->shape);
		return luaL_error(L, "eigh: needs square matrices, got shape %s", lua_tostring(L, -1));
	}
	double *w = scratch(L, nb * n), *z = scratch(L, nb * n * n);
	for (int64_t b = 0; b < nb && n > 0; b++) {
		const double *xb = x + b * n * n;
		double *a = z + b * n * n, big = 0;
		for (int64_t i = 0; i < n * n; i++)
			big = fmax(big, fabs(xb[i]));
		for (int64_t i = 0; i < n; i++)
			for (int64_t j = 0; j < n; j++) {
				double p = xb[i * n + j], q = xb[j * n + i];
				if (fabs(p - q) > 1e-5 * big)
					return luaL_error(L, "eigh: the matrix is not symmetric (entry [%I, %I] "
							  "is %f but [%I, %I] is %f)", (lua_Integer)i + 1,
							  (lua_Integer)j + 1, p, (lua_Integer)j + 1,
							  (lua_Integer)i + 1, q);
				a[i * n + j] = 0.5 * (p + q);
			}
		lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, a,
						 (lapack_int)n, w + b * n);
		if (info != 0)
			return luaL_error(L, "eigh: LAPACK dsyevd failed (info %d)", (int)info);
	}
	struct rf_shape ws = t->shape;
	ws.ndim--;
	push_result(L, &ws, w);
	push_result(L, &t->shape, z);
	return 2;
}

/* }===== */

const luaL_Reg rf_lua_linalg_methods[] = {
	{ "matmul", l_matmul },
	{ NULL, NULL },
};

const luaL_Reg rf_lua_linalg_functions[] = {
	{ "matmul", l_matmul }, { "svd", l_svd }, { "eigh", l_eigh },
	{ NULL, NULL },
};
