/*
** attention.c: the multi-head attention launcher (nn.h): shape checks, the host path
** where the device computes its products on the host (attention_host.c), else the kernel
** variant (vec4 or scalar texel loads) and its tiling per device class, and batch
** windows that keep the outputs inside one storage binding. Compute layer (L4).
*/
#include "nn.h"
#include "attention_host.h"
#include "host_math.h"
#include "launch.h"
#include "status.h"

#include <math.h>

struct push_attention {
	uint32_t n, width, heads, qkv_base;
	float scale;
	uint32_t batch_base;
};
_Static_assert(sizeof(struct push_attention) <= 128, "push constants");

#define OP "attention"

/* Tiling: lanes per workgroup, query rows per lane, keys per block. */
struct tiling {
	uint32_t local, rows, keys;
};

static struct tiling choose_tiling(const rf_ctx *ctx, uint64_t n)
{
	/* CPU devices: one subgroup per workgroup and several rows per lane, so each key and
	** value load serves several rows (LAVAPIPE.md: no broadcast fast path for uniform
	** addresses). 5 rows x 8 keys measured best on lavapipe (ViT-B/16, one thread: 24
	** GFLOP/s, against 17-20 for 4 or 6 rows and 12 or 16 keys); 4 or 6 rows are taken
	** when they waste fewer padded rows (N = 50: 64 rows computed instead of 80). GPUs: a
	** row per lane; uniform key/value loads are served by the cache. */
	if (rf_launch_cpu_like(ctx)) {
		uint32_t sg = rf_ctx_caps(ctx)->subgroup_size;
		uint32_t local = sg >= 4 && sg <= 64 ? sg : 8;
		static const uint32_t rows[] = { 5, 4, 6 };
		uint32_t best = rows[0];
		uint64_t best_padded = UINT64_MAX;
		for (size_t i = 0; i < RF_ARRAY_LEN(rows); i++) {
			uint64_t block = (uint64_t)local * rows[i];
			uint64_t padded = RF_CEIL_DIV(n, block) * block;
			if (padded < best_padded) {
				best = rows[i];
				best_padded = padded;
			}
		}
		return (struct tiling){ local, best, 8 };
	}
	return (struct tiling){ 64, 1, 4 };
}

static enum rf_status check_shape(const rf_tensor *t, const char *what, int ndim,
				  const int64_t *dims)
{
	enum rf_status s = rf_check_device(t, RF_F32, OP, what);
	if (s != RF_OK)
		return s;
	struct rf_shape want = rf_shape_make(ndim, dims);
	if (!rf_shape_equal(&t->shape, &want)) {
		char a[96], b[96];
		return rf_error(RF_ERR_INVALID, OP ": %s is %s, expected %s", what,
				rf_shape_str(&t->shape, a, sizeof a), rf_shape_str(&want, b, sizeof b));
	}
	return RF_OK;
}

static enum rf_status check_args(const struct rf_attention *a)
{
	if (!a)
		return rf_error(RF_ERR_INVALID, OP ": no arguments");
	enum rf_status s = rf_check_device(a->qkv, RF_F32, OP, "qkv");
	if (s != RF_OK)
		return s;
	const struct rf_shape *q = &a->qkv->shape;
	if (q->ndim != 3 || q->dim[2] % 3 != 0 || q->dim[2] == 0)
		return rf_error(RF_ERR_INVALID, OP ": qkv must be [B, N, 3W] with W > 0");
	int64_t batch = q->dim[0], n = q->dim[1], width = q->dim[2] / 3;
	if (a->heads < 1 || width % a->heads != 0)
		return rf_error(RF_ERR_INVALID, OP ": width %lld is not a multiple of %d heads",
				(long long)width, a->heads);
	if (width > UINT32_MAX / 3 || n > UINT32_MAX / 3 || batch > UINT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, OP ": qkv %lld x %lld x %lld is too large",
				(long long)batch, (long long)n, (long long)width);
	int64_t out_dims[] = { batch, n, width };
	int64_t probs_dims[] = { batch, a->heads, n, n };
	if ((s = check_shape(a->out, "out", 3, out_dims)) != RF_OK ||
	    (a->probs && (s = check_shape(a->probs, "probs", 4, probs_dims)) != RF_OK) ||
	    (a->cls_probs && (s = check_shape(a->cls_probs, "cls_probs", 3, probs_dims)) != RF_OK))
		return s;
	return RF_OK;
}

enum rf_status rf_op_attention(rf_ctx *ctx, const struct rf_attention *a)
{
	enum rf_status s = check_args(a);
	if (s != RF_OK)
		return s;
	if (rf_host_compute(ctx))
		return rf_attention_host(ctx, a);
	uint64_t batch = (uint64_t)a->qkv->shape.dim[0], n = (uint64_t)a->qkv->shape.dim[1];
	uint64_t width = (uint64_t)a->qkv->shape.dim[2] / 3, heads = (uint64_t)a->heads;
	uint64_t dh = width / heads;
	if (batch == 0 || n == 0)
		return RF_OK;
	bool vec4 = width % 4 == 0 && dh % 4 == 0;
	struct tiling t = choose_tiling(ctx, n);
	uint32_t spec[] = { t.local, t.rows, t.keys, (uint32_t)dh, a->causal, a->probs != NULL,
			    a->cls_probs != NULL };
	rf_pipeline *p;
	uint64_t window;
	uint64_t items[] = { n * width * 4, a->probs ? heads * n * n * 4 : 0,
			     a->cls_probs ? heads * n * 4 : 0 };
	if ((s = rf_launch_pipeline(ctx, vec4 ? RF_SHADER_attention : RF_SHADER_attention_scalar,
				    spec, RF_ARRAY_LEN(spec), &p)) != RF_OK ||
	    (s = rf_window_items(ctx, items, 3, OP, &window)) != RF_OK)
		return s;
	window = RF_MIN(window, rf_ctx_caps(ctx)->max_workgroup_count[2]);
	struct push_attention pc = {
		.n = (uint32_t)n, .width = (uint32_t)width, .heads = (uint32_t)heads,
		.qkv_base = rf_texel_base(a->qkv, vec4 ? 16 : 4),
		.scale = (float)(1.0 / sqrt((double)dh)),
	};
	uint32_t groups = (uint32_t)RF_CEIL_DIV(n, (uint64_t)t.local * t.rows);
	for (uint64_t first = 0; first < batch && s == RF_OK; first += window) {
		uint64_t count = RF_MIN(window, batch - first);
		struct rf_arg out = rf_arg_items(a->out, first, count, items[0]);
		/* Absent outputs are bound to `out` and never written (specialization). */
		struct rf_arg args[] = {
			rf_arg_whole(&a->qkv->mem),
			out,
			a->probs ? rf_arg_items(a->probs, first, count, items[1]) : out,
			a->cls_probs ? rf_arg_items(a->cls_probs, first, count, items[2]) : out,
		};
		pc.batch_base = (uint32_t)first;
		s = rf_cmd_dispatch(ctx, p, args, 4, &pc, sizeof pc, groups, (uint32_t)heads,
				    (uint32_t)count);
	}
	return s;
}
