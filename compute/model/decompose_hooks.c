/*
** decompose_hooks.c: the decomposition as hooks on the vision forward pass: each hook
** adds the folded contributions of one component into the run's slots, and the final
** hook maps every slot through the frozen ln_post. The kernels are compute/ops/decomp.h's
** and the matrix products rf_op_matmul/rf_op_gemm. Compute layer (L5).
*/
#include "decompose_internal.h"
#include "decomp.h"
#include "gemm.h"
#include "status.h"
#include "tensor_ops.h"
#include "transfer.h"

/* {===== products with the folds */

/* Per head h: dst[b, h, :] (+)= src rows (stride src_row, head columns at src_col + h*dh)
** times M[h*dh:(h+1)*dh, :]. With accumulate, adds into dst. */
static enum rf_status head_products(const rf_decomposer *d, const rf_tensor *src, int64_t src_col,
				    int64_t src_row, int64_t rows, const rf_tensor *mfold, rf_tensor *dst,
				    int64_t dst_row, bool acc)
{
	struct rf_matmul mm = {
		.batch = d->h, .m = rows, .n = d->c, .k = d->dh,
		.a = { src, src_col, d->dh, src_row, 1 },
		.b = { mfold, 0, (int64_t)(d->dh + RF_FOLD_EXTRA) * d->c, d->c, 1 },
		.c = { dst, 0, d->c, dst_row, 1 },
		.alpha = 1.0f, .beta = acc ? 1.0f : 0.0f,
	};
	return rf_op_matmul(d->m->ctx, &mm);
}

/* dst[b, :] += row b of src (rows `row_stride` apart) times GP. */
static enum rf_status rows_times_gp(const struct rf_decomp_run *r, const rf_tensor *src, int64_t row_stride,
				    rf_tensor *dst)
{
	const rf_decomposer *d = r->d;
	struct rf_matmul mm = {
		.batch = 1, .m = r->b, .n = d->c, .k = d->w,
		.a = { src, 0, 0, row_stride, 1 },
		.b = { d->fold->gp, 0, 0, d->c, 1 },
		.c = { dst, 0, 0, d->c, 1 },
		.alpha = 1.0f, .beta = 1.0f,
	};
	return rf_op_matmul(d->m->ctx, &mm);
}

/* slot += the CLS products in t0 [B, H, C], weighted by alpha's CLS column when given,
** with the heads summed or kept. */
static enum rf_status add_cls_products(const struct rf_decomp_run *r, const rf_tensor *alpha,
				       bool sum_heads, rf_tensor *slot)
{
	const rf_decomposer *d = r->d;
	struct rf_decomp_accumulate a = {
		.t = d->scratch.t0, .alpha = alpha, .slot = slot,
		.batch = (uint32_t)r->b, .tokens = 1, .heads = (uint32_t)d->h, .dim = (uint32_t)d->c,
		.t_batch = (uint32_t)(d->h * d->c), .alpha_n = (uint32_t)d->n, .alpha_m0 = 0,
		.sum_tokens = false, .sum_heads = sum_heads,
	};
	return rf_op_decomp_accumulate(d->m->ctx, &a);
}

/* }===== */

/* {===== hooks */

static enum rf_status on_embed(void *user, struct rf_clip *m, rf_tensor *z0)
{
	struct rf_decomp_run *r = user;
	(void)m;
	return rows_times_gp(r, z0, (int64_t)r->d->n * r->d->w, r->slots[RF_OUT_MLPS][0]);
}

static enum rf_status on_attention(void *user, struct rf_clip *m, int layer, rf_tensor *qkv,
				   rf_tensor *attn, const rf_tensor *cls_probs, const rf_tensor *probs)
{
	struct rf_decomp_run *r = user;
	const rf_decomposer *d = r->d;
	const rf_tensor *mfold = d->fold->m[layer];
	rf_tensor *t0 = d->scratch.t0;
	int slot = rf_decomp_slot_of_layer(d, layer);
	int64_t w = d->w, n = d->n, hc = (int64_t)d->h * d->c;
	enum rf_status s;
	(void)m, (void)probs;
	/* attn_heads: the CLS row of the attention output (already summed over tokens). */
	rf_tensor *heads_slot = r->slots[RF_OUT_HEADS][slot];
	if (d->reduce_heads) {
		if ((s = head_products(d, attn, 0, n * w, r->b, mfold, t0, hc, false)) != RF_OK ||
		    (s = add_cls_products(r, NULL, true, heads_slot)) != RF_OK)
			return s;
	} else if ((s = head_products(d, attn, 0, n * w, r->b, mfold, heads_slot, hc, true)) != RF_OK) {
		return s;
	}
	/* Every source token's value, weighted by the CLS query's attention to it; multiplied
	** by the folds once ln_post's constants are known (finish_spatial). */
	if (d->deferred) {
		struct rf_shape sv = rf_shape_of(2, (int64_t)r->b * n, (int64_t)d->h * (d->dh + RF_FOLD_EXTRA));
		if ((s = rf_tensor_create(d->m->ctx, RF_F32, &sv, &r->vscaled[layer])) != RF_OK ||
		    (s = rf_op_decomp_scale_values(d->m->ctx, qkv, cls_probs, (uint32_t)r->b, (uint32_t)d->n,
						   (uint32_t)d->h, (uint32_t)d->dh, r->vscaled[layer])) != RF_OK)
			return s;
	} else if (d->opt.spatial) {
		/* Summing the spatial terms over tokens gives the head terms exactly. */
		if ((s = head_products(d, attn, 0, n * w, r->b, mfold, t0, hc, false)) != RF_OK ||
		    (s = add_cls_products(r, NULL, d->reduce_heads, r->slots[RF_OUT_SPATIAL][slot])) != RF_OK)
			return s;
	}
	/* cls_attn: the CLS source token's term, summed over heads. */
	if ((s = head_products(d, qkv, 2 * w, n * 3 * w, r->b, mfold, t0, hc, false)) != RF_OK)
		return s;
	return add_cls_products(r, cls_probs, true, r->slots[RF_OUT_CLS][slot]);
}

/* The MLP's output at CLS, computed from the CLS rows of its hidden layer alone, so the
** forward pass keeps its fused residual add for every other row. */
static enum rf_status on_mlp_hidden(void *user, struct rf_clip *m, int layer, rf_tensor *hidden)
{
	struct rf_decomp_run *r = user;
	const rf_decomposer *d = r->d;
	int64_t mlp = hidden->shape.dim[hidden->shape.ndim - 1];
	struct rf_view src = { 2, { r->b, mlp }, 0, { (int64_t)d->n * mlp, 1 } };
	struct rf_view dst = rf_view_contiguous(d->scratch.hidden_cls);
	const struct rf_linear *proj = &m->vision.blocks[layer].proj;
	struct rf_gemm g = { d->scratch.hidden_cls, proj->w, proj->b, RF_ACT_NONE, NULL, d->scratch.mlp_cls };
	enum rf_status s = rf_op_copy(m->ctx, hidden, &src, d->scratch.hidden_cls, &dst);
	if (s == RF_OK)
		s = rf_op_gemm(m->ctx, &g);
	return s == RF_OK ? rows_times_gp(r, d->scratch.mlp_cls, d->w,
					   r->slots[RF_OUT_MLPS][d->reduce_layers ? 0 : layer + 1]) : s;
}

/* Maps every slot of an output through the frozen ln_post. */
static enum rf_status finish_output(struct rf_decomp_run *r, enum rf_decomp_output which)
{
	const rf_decomposer *d = r->d;
	const struct rf_slot_plan *p = &d->plan[which];
	enum rf_status s = RF_OK;
	for (int i = 0; i < p->nslots && s == RF_OK; i++)
		s = rf_op_decomp_finish(d->m->ctx, r->slots[which][i], d->consts,
					p->has_bias ? p->first_bias + (uint32_t)i : RF_DECOMP_NO_BIAS,
					(float)p->w[i], r->mean, r->std, r->norm);
	return s;
}

/* attn_spatial [B, L', N, H', C] = for every layer, the completed value rows of all
** images times the extended folds (one product per layer; a slot that sums layers
** accumulates them), each layer's result then copied into its place in every image's
** block by transfer copies. The value rows are freed once used. */
static enum rf_status finish_spatial(struct rf_decomp_run *r)
{
	const rf_decomposer *d = r->d;
	rf_ctx *ctx = d->m->ctx;
	int64_t heads = d->reduce_heads ? 1 : d->h, ext = d->dh + RF_FOLD_EXTRA;
	int64_t per_layer = (int64_t)d->n * heads * d->c, slots = d->plan[RF_OUT_SPATIAL].nslots;
	struct rf_shape sl = rf_shape_of(2, (int64_t)r->b, per_layer);
	rf_tensor *layer_out = NULL;
	float w = (float)(1.0 / ((double)d->k * d->n * d->h));
	enum rf_status s = rf_tensor_create(ctx, RF_F32, &sl, &layer_out);
	for (int l = 0; l < d->l && s == RF_OK; l++) {
		rf_tensor *v = r->vscaled[l];
		float beta = d->reduce_layers && l > 0 ? 1.0f : 0.0f;
		if ((s = rf_op_decomp_extra(ctx, r->mean, r->std, r->norm, (uint32_t)d->n, (uint32_t)d->h,
					    (uint32_t)d->dh, w, v)) != RF_OK)
			break;
		/* Heads kept: one product per head; summed: all heads' rows at once. */
		int64_t rows = (int64_t)r->b * d->n;
		struct rf_matmul mm = d->reduce_heads ? (struct rf_matmul){
			.batch = 1, .m = rows, .n = d->c, .k = d->h * ext,
			.a = { v, 0, 0, d->h * ext, 1 }, .b = { d->fold->m[l], 0, 0, d->c, 1 },
			.c = { layer_out, 0, 0, d->c, 1 }, .alpha = 1.0f, .beta = beta,
		} : (struct rf_matmul){
			.batch = d->h, .m = rows, .n = d->c, .k = ext,
			.a = { v, 0, ext, d->h * ext, 1 }, .b = { d->fold->m[l], 0, ext * d->c, d->c, 1 },
			.c = { layer_out, 0, d->c, (int64_t)d->h * d->c, 1 }, .alpha = 1.0f, .beta = beta,
		};
		if ((s = rf_op_matmul(ctx, &mm)) != RF_OK)
			break;
		if (d->reduce_layers && l + 1 < d->l)
			continue;
		uint64_t bytes = (uint64_t)per_layer * 4;
		for (int b = 0; b < r->b && s == RF_OK; b++)
			s = rf_mem_copy(ctx, &layer_out->mem, (uint64_t)b * bytes, &r->spatial_all->mem,
					((uint64_t)b * (uint64_t)slots +
					 (uint64_t)rf_decomp_slot_of_layer(d, l)) * bytes, bytes);
	}
	for (int l = 0; l < d->l; l++) {
		rf_tensor_destroy(r->vscaled[l]);
		r->vscaled[l] = NULL;
	}
	rf_tensor_destroy(layer_out);
	return s;
}

static enum rf_status copy_tensor(rf_ctx *ctx, const rf_tensor *src, const struct rf_shape *shape,
				  rf_tensor **out)
{
	enum rf_status s = rf_tensor_create(ctx, RF_F32, shape, out);
	if (s == RF_OK)
		s = rf_mem_copy(ctx, &src->mem, 0, &(*out)->mem, 0, rf_tensor_nbytes(src));
	return s;
}

static enum rf_status on_final(void *user, struct rf_clip *m, const rf_tensor *rr, const rf_tensor *mean,
			       const rf_tensor *std, const rf_tensor *embeds)
{
	struct rf_decomp_run *r = user;
	rf_ctx *ctx = m->ctx;
	struct rf_shape sb = rf_shape_of(2, (int64_t)r->b, (int64_t)1);
	struct rf_shape se = embeds->shape;
	enum rf_status s;
	(void)rr;
	if ((s = copy_tensor(ctx, mean, &sb, &r->mean)) != RF_OK ||
	    (s = copy_tensor(ctx, std, &sb, &r->std)) != RF_OK ||
	    (s = copy_tensor(ctx, embeds, &se, &r->embeds)) != RF_OK ||
	    (s = rf_tensor_create(ctx, RF_F32, &sb, &r->norm)) != RF_OK ||
	    (s = rf_op_reduce(ctx, RF_RED_NORM2, embeds, 1u << 1, 0, r->norm)) != RF_OK)
		return s;
	static const enum rf_decomp_output order[] = { RF_OUT_SPATIAL, RF_OUT_HEADS, RF_OUT_CLS, RF_OUT_MLPS };
	for (size_t i = 0; i < RF_ARRAY_LEN(order) && s == RF_OK; i++)
		s = order[i] == RF_OUT_SPATIAL && r->d->deferred ? finish_spatial(r) : finish_output(r, order[i]);
	return s;
}

/* }===== */

struct rf_vision_hooks rf_decomp_hooks(struct rf_decomp_run *r)
{
	return (struct rf_vision_hooks){
		.user = r, .want_cls_probs = true,
		.on_embed = on_embed, .on_attention = on_attention, .on_mlp_hidden = on_mlp_hidden,
		.on_final = on_final,
	};
}
