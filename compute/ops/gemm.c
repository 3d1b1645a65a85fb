/*
** gemm.c: rf_op_gemm, the Linear layer: argument checks with messages that name the
** shapes, then one matrix-product description for the kernel family the weights were
** packed for; and the choice of that family (REFRACT_GEMM, read into rf_caps when the
** context is created). Compute layer (L4).
*/
#include "gemm_internal.h"
#include "host_math.h"
#include "launch.h"
#include "memory.h"
#include "context.h"
#include "device.h"
#include "status.h"

static const char *const kernel_names[] = {
	[RF_MM_LANES] = "lanes", [RF_MM_TILED] = "tiled", [RF_MM_GENERIC] = "generic",
	[RF_MM_HOST] = "host",
};

const char *rf_mm_kernel_name(enum rf_mm_kernel k)
{
	return kernel_names[k];
}

enum rf_status rf_mm_kernel_choose(rf_ctx *ctx, enum rf_mm_kernel *out)
{
	const struct rf_caps *caps = rf_ctx_caps(ctx);
	switch (caps->gemm) {
	case RF_GEMM_LANES: *out = RF_MM_LANES; return RF_OK;
	case RF_GEMM_TILED: *out = RF_MM_TILED; return RF_OK;
	case RF_GEMM_GENERIC: *out = RF_MM_GENERIC; return RF_OK;
	case RF_GEMM_HOST:
		if (!rf_mem_mappable(ctx))
			return rf_error(RF_ERR_UNSUPPORTED, "REFRACT_GEMM=host: the device memory of %s "
					"is not host-visible", caps->name);
		*out = RF_MM_HOST;
		return RF_OK;
	case RF_GEMM_AUTO: break;
	}
	/* CPU devices: the host's BLAS on the device's memory where the host can map it
	** (gemm_host.c says why), else the register-blocked kernel (a CPU driver runs a
	** workgroup as one SIMD thread). Everything else is a GPU of some kind:
	** shared-memory tiles. */
	bool cpu = caps->device_class == RF_DEVICE_CPU;
	*out = !cpu ? RF_MM_TILED : rf_mem_mappable(ctx) ? RF_MM_HOST : RF_MM_LANES;
	return RF_OK;
}

bool rf_host_compute(rf_ctx *ctx)
{
	enum rf_mm_kernel k;
	return rf_mm_kernel_choose(ctx, &k) == RF_OK && k == RF_MM_HOST;
}

const char *rf_gemm_family(rf_ctx *ctx)
{
	enum rf_mm_kernel k;
	return rf_mm_kernel_choose(ctx, &k) == RF_OK ? kernel_names[k] : NULL;
}

/* Whether two device tensors share bytes. */
static bool overlap(const rf_tensor *x, const rf_tensor *y)
{
	return x->mem.block == y->mem.block && x->mem.offset < y->mem.offset + y->mem.size &&
	       y->mem.offset < x->mem.offset + x->mem.size;
}

static enum rf_status check_shapes(const struct rf_gemm *g, int64_t n, int64_t k)
{
	char sa[96], sc[96], want[96];
	const struct rf_shape *as = &g->a->shape;
	if (as->ndim < 1 || as->dim[as->ndim - 1] != k)
		return rf_error(RF_ERR_INVALID, "gemm: a has shape %s but the weights are [%lld, %lld]: "
				"its last dimension must be %lld", rf_shape_str(as, sa, sizeof sa),
				(long long)n, (long long)k, (long long)k);
	struct rf_shape cs = *as;
	cs.dim[cs.ndim - 1] = n;
	if (!rf_shape_equal(&cs, &g->c->shape))
		return rf_error(RF_ERR_INVALID, "gemm: c has shape %s, expected %s (a %s times the "
				"transpose of weights [%lld, %lld])", rf_shape_str(&g->c->shape, sc, sizeof sc),
				rf_shape_str(&cs, want, sizeof want), rf_shape_str(as, sa, sizeof sa),
				(long long)n, (long long)k);
	if (g->bias && (g->bias->shape.ndim != 1 || g->bias->shape.dim[0] != n))
		return rf_error(RF_ERR_INVALID, "gemm: bias has shape %s, expected [%lld]",
				rf_shape_str(&g->bias->shape, sa, sizeof sa), (long long)n);
	if (g->residual && !rf_shape_equal(&g->residual->shape, &g->c->shape))
		return rf_error(RF_ERR_INVALID, "gemm: residual has shape %s, expected c's %s",
				rf_shape_str(&g->residual->shape, sa, sizeof sa),
				rf_shape_str(&g->c->shape, sc, sizeof sc));
	return RF_OK;
}

static enum rf_status check_gemm(rf_ctx *ctx, const struct rf_gemm *g)
{
	enum rf_status s;
	if (!g || !g->w)
		return rf_error(RF_ERR_INVALID, "gemm: no %s given", g ? "weights" : "arguments");
	if ((s = rf_check_device(g->a, RF_F32, "gemm", "a")) != RF_OK ||
	    (s = rf_check_device(g->c, RF_F32, "gemm", "c")) != RF_OK ||
	    (g->bias && (s = rf_check_device(g->bias, RF_F32, "gemm", "bias")) != RF_OK) ||
	    (g->residual && (s = rf_check_device(g->residual, RF_F32, "gemm", "residual")) != RF_OK))
		return s;
	if (g->w->ctx != ctx || g->a->ctx != ctx || g->c->ctx != ctx)
		return rf_error(RF_ERR_INVALID, "gemm: weights and tensors belong to another context");
	if ((unsigned)g->act > RF_ACT_QUICKGELU)
		return rf_error(RF_ERR_INVALID, "gemm: unknown activation %d", (int)g->act);
	if ((s = check_shapes(g, g->w->n, g->w->k)) != RF_OK)
		return s;
	if (overlap(g->a, g->c))
		return rf_error(RF_ERR_INVALID, "gemm: c overlaps a (the product cannot be computed in place)");
	if (g->bias && overlap(g->bias, g->c))
		return rf_error(RF_ERR_INVALID, "gemm: c overlaps bias");
	if (g->residual && g->residual != g->c && overlap(g->residual, g->c) &&
	    (g->residual->mem.block != g->c->mem.block || g->residual->mem.offset != g->c->mem.offset))
		return rf_error(RF_ERR_INVALID, "gemm: residual overlaps c without being c");
	if (rf_tensor_numel(g->c) > UINT32_MAX || rf_tensor_numel(g->a) > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "gemm: operands of more than 2^32 elements");
	return RF_OK;
}

enum rf_status rf_op_gemm(rf_ctx *ctx, const struct rf_gemm *g)
{
	enum rf_status s = check_gemm(ctx, g);
	if (s != RF_OK)
		return s;
	const rf_gemm_weights *w = g->w;
	if (w->kernel == RF_MM_HOST)
		return rf_gemm_host(ctx, g);
	int64_t m = rf_tensor_numel(g->a) / w->k;
	struct rf_mm_problem p = {
		.batch = 1, .m = m, .n = w->n, .k = w->k,
		.a = { &g->a->mem, RF_F32, 0, w->k, 1, 0 },
		.c = { &g->c->mem, RF_F32, 0, w->n, 1, 0 },
		.act = g->act, .alpha = 1.0f, .beta = 0.0f,
	};
	if (w->kernel == RF_MM_LANES) {
		p.b = (struct rf_mm_operand){ &w->mem, w->storage, 0, 0, 0, 0 };
		p.panels = w;
	} else {
		/* B[k, n] = W[n, k]: unit stride along k. */
		p.b = (struct rf_mm_operand){ &w->mem, w->storage, 0, 1, w->ld, 0 };
	}
	if (g->bias)
		p.bias = &g->bias->mem;
	if (g->residual && g->residual->mem.block == g->c->mem.block &&
	    g->residual->mem.offset == g->c->mem.offset) {
		p.beta = 1.0f;   /* C += ...: read each element of C just before it is written */
	} else if (g->residual) {
		p.res = &g->residual->mem;
		p.res_rs = w->n;
	}
	return rf_mm_launch(ctx, w->kernel, &p);
}
