/*
** decompose.c: the decomposition as hooks on the vision forward pass: each hook adds the
** folded contributions of one component into device "slots" (one per output entry that
** is not summed away), and the final hook maps every slot through the frozen ln_post.
** Compute layer (L5).
*/
#include "decompose.h"
#include "clip_hooks.h"
#include "context.h"
#include "elementwise.h"
#include "fold.h"
#include "gemm.h"
#include "launch.h"
#include "status.h"
#include "tensor_ops.h"
#include "transfer.h"

#include <stdlib.h>
#include <string.h>

#define LOCAL 256
#define NO_BIAS 0xffffffffu

/* One output kind: its slots and what finishing each needs. */
struct output {
	rf_tensor **slots;      /* nslots device tensors [B, rows, C] */
	int nslots;
	double *bias;           /* [nslots][C]: out_proj bias share, host */
	double *w;              /* [nslots]: share of mu and beta */
	bool has_bias;
};

struct run {
	rf_clip *m;
	const struct rf_decompose_options *opt;
	struct rf_fold *fold;
	int b, l, n, h, dh, w, c, k;
	bool reduce_layers, reduce_tokens, reduce_heads, spatial;
	struct output spatial_out, heads_out, mlps_out, cls_out;
	rf_tensor **vscaled;    /* per layer [B*N, H*(dh+4)]: value rows weighted by the CLS
				   query's attention, per head followed by 4 entries for the
				   constant rows of the fold (spatial only); multiplied by the
				   folds at the end */
	rf_tensor *t0;          /* [B, H, C] scratch: CLS products */
	rf_tensor *hidden_cls;  /* [B, mlp] scratch: CLS rows of the MLP hidden layer */
	rf_tensor *mlp_cls;     /* [B, W] scratch: the MLP output at CLS */
	rf_tensor *spatial_all; /* [B, L', N, H', C]: attn_spatial, written at the end (spatial
				   without token reduction; its slots stay empty) */
	rf_tensor *mean, *std, *embeds;   /* copies of the final values */
	rf_tensor *norm;
};

/* {===== slots */

/* Slots of `rows` x C per image; rows 0 makes the bookkeeping only (no tensors). */
static enum rf_status output_init(struct run *r, struct output *o, int nslots, int64_t rows, bool bias)
{
	o->nslots = nslots;
	o->has_bias = bias;
	o->slots = calloc((size_t)nslots, sizeof *o->slots);
	o->bias = calloc((size_t)nslots * (size_t)r->c, sizeof *o->bias);
	o->w = calloc((size_t)nslots, sizeof *o->w);
	if (!o->slots || !o->bias || !o->w)
		return rf_error(RF_ERR_OOM_HOST, "decomposition slots");
	struct rf_shape s = rf_shape_of(3, (int64_t)r->b, rows, (int64_t)r->c);
	for (int i = 0; i < nslots && rows > 0; i++) {
		enum rf_status st = rf_tensor_zeros(r->m->ctx, RF_F32, &s, &o->slots[i]);
		if (st != RF_OK)
			return st;
	}
	return RF_OK;
}

static void output_fini(struct output *o)
{
	for (int i = 0; i < o->nslots && o->slots; i++)
		rf_tensor_destroy(o->slots[i]);
	free(o->slots);
	free(o->bias);
	free(o->w);
	memset(o, 0, sizeof *o);
}

/* Records the constant shares of attention summands (l, m, h) for a slot that sums
** `tokens` source tokens and `heads` heads of layer l: each summand carries
** out_proj.bias / (N H) and weight 1 / (K N H). */
static void add_attention_share(struct run *r, struct output *o, int slot, int layer, int tokens,
				int heads)
{
	double frac = (double)tokens * heads / ((double)r->n * r->h);
	for (int c = 0; c < r->c; c++)
		o->bias[(size_t)slot * r->c + c] += frac * r->fold->cb[(size_t)layer * r->c + c];
	o->w[slot] += frac / r->k;
}

static int slot_of_layer(const struct run *r, int layer)
{
	return r->reduce_layers ? 0 : layer;
}

static enum rf_status setup_outputs(struct run *r)
{
	int layer_slots = r->reduce_layers ? 1 : r->l;
	int heads = r->reduce_heads ? 1 : r->h;
	enum rf_status s;
	if (r->spatial) {
		int tokens = r->reduce_tokens ? 1 : r->n;
		bool deferred = !r->reduce_tokens;
		if ((s = output_init(r, &r->spatial_out, layer_slots, deferred ? 0 : (int64_t)tokens * heads,
				     true)) != RF_OK)
			return s;
		if (deferred) {
			struct rf_shape sf = rf_shape_of(5, (int64_t)r->b, (int64_t)layer_slots, (int64_t)r->n,
							 (int64_t)heads, (int64_t)r->c);
			if ((s = rf_tensor_create(r->m->ctx, RF_F32, &sf, &r->spatial_all)) != RF_OK)
				return s;
		}
		for (int l = 0; l < r->l; l++)
			add_attention_share(r, &r->spatial_out, slot_of_layer(r, l), l,
					    r->reduce_tokens ? r->n : 1, r->reduce_heads ? r->h : 1);
	}
	if ((s = output_init(r, &r->heads_out, layer_slots, heads, true)) != RF_OK ||
	    (s = output_init(r, &r->cls_out, layer_slots, 1, true)) != RF_OK ||
	    (s = output_init(r, &r->mlps_out, r->reduce_layers ? 1 : r->l + 1, 1, false)) != RF_OK)
		return s;
	for (int l = 0; l < r->l; l++) {
		add_attention_share(r, &r->heads_out, slot_of_layer(r, l), l, r->n, r->reduce_heads ? r->h : 1);
		add_attention_share(r, &r->cls_out, slot_of_layer(r, l), l, 1, r->h);
	}
	for (int j = 0; j <= r->l; j++)
		r->mlps_out.w[r->reduce_layers ? 0 : j] += 1.0 / r->k;
	return RF_OK;
}

/* }===== */

/* {===== kernels */

struct push_accumulate {
	uint32_t batch, tokens, heads, dim, t_batch, use_alpha, alpha_n, alpha_m0, sum_tokens,
		sum_heads, n;
};
_Static_assert(sizeof(struct push_accumulate) <= 128, "push constants");

/* slot += products t [B, tokens, H, C] (image stride t_batch), weighted by alpha. */
static enum rf_status accumulate(struct run *r, const rf_tensor *t, uint32_t tokens, uint32_t t_batch,
				 const rf_tensor *alpha, uint32_t alpha_m0, bool sum_tokens,
				 bool sum_heads, rf_tensor *slot)
{
	struct push_accumulate pc = {
		.batch = (uint32_t)r->b, .tokens = tokens, .heads = (uint32_t)r->h, .dim = (uint32_t)r->c,
		.t_batch = t_batch, .use_alpha = alpha != NULL, .alpha_n = (uint32_t)r->n,
		.alpha_m0 = alpha_m0, .sum_tokens = sum_tokens, .sum_heads = sum_heads,
		.n = (uint32_t)rf_tensor_numel(slot),
	};
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	enum rf_status s = rf_launch_pipeline(r->m->ctx, RF_SHADER_decomp_accumulate, spec, 1, &p);
	if (s != RF_OK)
		return s;
	const rf_tensor *a = alpha ? alpha : t;
	struct rf_arg args[] = { rf_arg_whole(&t->mem), rf_arg_whole(&a->mem), rf_arg_whole(&slot->mem) };
	return rf_launch_1d(r->m->ctx, p, args, 3, &pc, sizeof pc, pc.n, LOCAL);
}

struct push_scale_v {
	uint32_t n, width, tokens, heads, head_width, out_head;
};
_Static_assert(sizeof(struct push_scale_v) <= 128, "push constants");

/* out [B*N, H*(dh+3)]: value rows of qkv weighted per head by the CLS query's attention
** (the 4 extra entries per head are written at the end by extra_entries). */
static enum rf_status scale_values(struct run *r, const rf_tensor *qkv, const rf_tensor *cls_probs,
				   rf_tensor *out)
{
	struct push_scale_v pc = {
		.n = (uint32_t)rf_tensor_numel(out), .width = (uint32_t)r->w, .tokens = (uint32_t)r->n,
		.heads = (uint32_t)r->h, .head_width = (uint32_t)r->dh,
		.out_head = (uint32_t)(r->dh + RF_FOLD_EXTRA),
	};
	pc.n = (uint32_t)((int64_t)r->b * r->n * r->w);
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	enum rf_status s = rf_launch_pipeline(r->m->ctx, RF_SHADER_decomp_scale_v, spec, 1, &p);
	if (s != RF_OK)
		return s;
	struct rf_arg args[] = { rf_arg_whole(&qkv->mem), rf_arg_whole(&cls_probs->mem), rf_arg_whole(&out->mem) };
	return rf_launch_1d(r->m->ctx, p, args, 3, &pc, sizeof pc, pc.n, LOCAL);
}

struct push_extra {
	uint32_t n, tokens, heads, head_width;
	float w;
};
_Static_assert(sizeof(struct push_extra) <= 128, "push constants");

/* Completes every head block of every row of v: the 3 extra entries 1, w sigma_b,
** -w mu_b (so the products pick up the summand's out_proj bias share and its shares of
** beta and mu), all scaled by 1/(sigma_b ||e_b||). */
static enum rf_status extra_entries(struct run *r, rf_tensor *v, float w)
{
	struct push_extra pc = {
		.n = (uint32_t)((int64_t)r->b * r->n * r->h), .tokens = (uint32_t)r->n,
		.heads = (uint32_t)r->h, .head_width = (uint32_t)r->dh, .w = w,
	};
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	enum rf_status s = rf_launch_pipeline(r->m->ctx, RF_SHADER_decomp_extra, spec, 1, &p);
	if (s != RF_OK)
		return s;
	struct rf_arg args[] = { rf_arg_whole(&r->mean->mem), rf_arg_whole(&r->std->mem),
				 rf_arg_whole(&r->norm->mem), rf_arg_whole(&v->mem) };
	return rf_launch_1d(r->m->ctx, p, args, 4, &pc, sizeof pc, pc.n, LOCAL);
}

struct push_finish {
	uint32_t n, per_image, dim, bias_row;
	float w;
};
_Static_assert(sizeof(struct push_finish) <= 128, "push constants");

/* Maps every slot of `o` through the frozen ln_post; `consts` rows: bpP, g1P, then the
** biases of o's slots from row `first_bias`. */
static enum rf_status finish_output(struct run *r, struct output *o, const rf_tensor *consts,
				    uint32_t first_bias)
{
	uint32_t spec[] = { LOCAL };
	rf_pipeline *p;
	enum rf_status s = rf_launch_pipeline(r->m->ctx, RF_SHADER_decomp_finish, spec, 1, &p);
	for (int i = 0; i < o->nslots && s == RF_OK; i++) {
		rf_tensor *slot = o->slots[i];
		struct push_finish pc = {
			.n = (uint32_t)rf_tensor_numel(slot),
			.per_image = (uint32_t)(rf_tensor_numel(slot) / r->b),
			.dim = (uint32_t)r->c,
			.bias_row = o->has_bias ? first_bias + (uint32_t)i : NO_BIAS,
			.w = (float)o->w[i],
		};
		struct rf_arg args[] = { rf_arg_whole(&slot->mem), rf_arg_whole(&consts->mem),
					 rf_arg_whole(&r->mean->mem), rf_arg_whole(&r->std->mem),
					 rf_arg_whole(&r->norm->mem) };
		s = rf_launch_1d(r->m->ctx, p, args, 5, &pc, sizeof pc, pc.n, LOCAL);
	}
	return s;
}

/* }===== */

/* {===== hooks */

/* Per head h: dst[b, h, :] (+)= src rows (stride src_row, head columns at src_col + h*dh)
** times M[h*dh:(h+1)*dh, :]. With accumulate, adds into dst. */
static enum rf_status head_products(struct run *r, const rf_tensor *src, int64_t src_col, int64_t src_row,
				    int64_t rows, const rf_tensor *mfold, rf_tensor *dst, int64_t dst_row,
				    bool acc)
{
	struct rf_matmul mm = {
		.batch = r->h, .m = rows, .n = r->c, .k = r->dh,
		.a = { src, src_col, r->dh, src_row, 1 },
		.b = { mfold, 0, (int64_t)(r->dh + RF_FOLD_EXTRA) * r->c, r->c, 1 },
		.c = { dst, 0, r->c, dst_row, 1 },
		.alpha = 1.0f, .beta = acc ? 1.0f : 0.0f,
	};
	return rf_op_matmul(r->m->ctx, &mm);
}

/* dst[b, :] += row b of src (rows `row_stride` apart) times GP. */
static enum rf_status rows_times_gp(struct run *r, const rf_tensor *src, int64_t row_stride, rf_tensor *dst)
{
	struct rf_matmul mm = {
		.batch = 1, .m = r->b, .n = r->c, .k = r->w,
		.a = { src, 0, 0, row_stride, 1 },
		.b = { r->fold->gp, 0, 0, r->c, 1 },
		.c = { dst, 0, 0, r->c, 1 },
		.alpha = 1.0f, .beta = 1.0f,
	};
	return rf_op_matmul(r->m->ctx, &mm);
}

static enum rf_status on_embed(void *user, struct rf_clip *m, rf_tensor *z0)
{
	struct run *r = user;
	return rows_times_gp(r, z0, (int64_t)r->n * r->w, r->mlps_out.slots[0]);
}

static enum rf_status on_attention(void *user, struct rf_clip *m, int layer, rf_tensor *qkv,
				   rf_tensor *attn, const rf_tensor *cls_probs, const rf_tensor *probs)
{
	struct run *r = user;
	const rf_tensor *mfold = r->fold->m[layer];
	int slot = slot_of_layer(r, layer);
	int64_t w = r->w, n = r->n;
	enum rf_status s;
	/* attn_heads: the CLS row of the attention output (already summed over tokens). */
	if (r->reduce_heads) {
		if ((s = head_products(r, attn, 0, n * w, r->b, mfold, r->t0, (int64_t)r->h * r->c, false)) != RF_OK ||
		    (s = accumulate(r, r->t0, 1, (uint32_t)(r->h * r->c), NULL, 0, false, true,
				    r->heads_out.slots[slot])) != RF_OK)
			return s;
	} else if ((s = head_products(r, attn, 0, n * w, r->b, mfold, r->heads_out.slots[slot],
				      (int64_t)r->h * r->c, true)) != RF_OK) {
		return s;
	}
	/* Every source token's value, weighted by the CLS query's attention to it; multiplied
	** by the folds once ln_post's constants are known (finish_spatial). */
	if (r->spatial && !r->reduce_tokens) {
		struct rf_shape sv = rf_shape_of(2, (int64_t)r->b * n, (int64_t)r->h * (r->dh + RF_FOLD_EXTRA));
		if ((s = rf_tensor_create(m->ctx, RF_F32, &sv, &r->vscaled[layer])) != RF_OK ||
		    (s = scale_values(r, qkv, cls_probs, r->vscaled[layer])) != RF_OK)
			return s;
	} else if (r->spatial) {
		/* Summing the spatial terms over tokens gives the head terms exactly. */
		if ((s = head_products(r, attn, 0, n * w, r->b, mfold, r->t0, (int64_t)r->h * r->c, false)) != RF_OK ||
		    (s = accumulate(r, r->t0, 1, (uint32_t)(r->h * r->c), NULL, 0, false, r->reduce_heads,
				    r->spatial_out.slots[slot])) != RF_OK)
			return s;
	}
	/* cls_attn: the CLS source token's term, summed over heads. */
	if ((s = head_products(r, qkv, 2 * w, n * 3 * w, r->b, mfold, r->t0, (int64_t)r->h * r->c, false)) != RF_OK)
		return s;
	return accumulate(r, r->t0, 1, (uint32_t)(r->h * r->c), cls_probs, 0, false, true, r->cls_out.slots[slot]);
}

/* The MLP's output at CLS, computed from the CLS rows of its hidden layer alone, so the
** forward pass keeps its fused residual add for every other row. */
static enum rf_status on_mlp_hidden(void *user, struct rf_clip *m, int layer, rf_tensor *hidden)
{
	struct run *r = user;
	int64_t mlp = hidden->shape.dim[hidden->shape.ndim - 1];
	struct rf_view src = { 2, { r->b, mlp }, 0, { (int64_t)r->n * mlp, 1 } };
	struct rf_view dst = rf_view_contiguous(r->hidden_cls);
	const struct rf_linear *proj = &m->vision.blocks[layer].proj;
	struct rf_gemm g = { r->hidden_cls, proj->w, proj->b, RF_ACT_NONE, NULL, r->mlp_cls };
	enum rf_status s = rf_op_copy(m->ctx, hidden, &src, r->hidden_cls, &dst);
	if (s == RF_OK)
		s = rf_op_gemm(m->ctx, &g);
	return s == RF_OK ? rows_times_gp(r, r->mlp_cls, r->w,
					   r->mlps_out.slots[r->reduce_layers ? 0 : layer + 1]) : s;
}

/* attn_spatial [B, L', N, H', C] = for every layer, the completed value rows of all
** images times the extended folds (one product per layer; a slot that sums layers
** accumulates them), each layer's result then copied into its place in every image's
** block by transfer copies. */
static enum rf_status finish_spatial(struct run *r)
{
	rf_ctx *ctx = r->m->ctx;
	int64_t heads = r->reduce_heads ? 1 : r->h, ext = r->dh + RF_FOLD_EXTRA;
	int64_t per_layer = (int64_t)r->n * heads * r->c, slots = r->spatial_out.nslots;
	struct rf_shape sl = rf_shape_of(2, (int64_t)r->b, per_layer);
	rf_tensor *layer_out = NULL;
	enum rf_status s = rf_tensor_create(ctx, RF_F32, &sl, &layer_out);
	float w = (float)(1.0 / ((double)r->k * r->n * r->h));
	for (int l = 0; l < r->l && s == RF_OK; l++) {
		const rf_tensor *v = r->vscaled[l];
		float beta = r->reduce_layers && l > 0 ? 1.0f : 0.0f;
		if ((s = extra_entries(r, r->vscaled[l], w)) != RF_OK)
			break;
		/* Heads kept: one product per head; summed: all heads' rows at once. */
		int64_t rows = (int64_t)r->b * r->n;
		struct rf_matmul mm = r->reduce_heads ? (struct rf_matmul){
			.batch = 1, .m = rows, .n = r->c, .k = r->h * ext,
			.a = { v, 0, 0, r->h * ext, 1 }, .b = { r->fold->m[l], 0, 0, r->c, 1 },
			.c = { layer_out, 0, 0, r->c, 1 }, .alpha = 1.0f, .beta = beta,
		} : (struct rf_matmul){
			.batch = r->h, .m = rows, .n = r->c, .k = ext,
			.a = { v, 0, ext, r->h * ext, 1 }, .b = { r->fold->m[l], 0, ext * r->c, r->c, 1 },
			.c = { layer_out, 0, r->c, (int64_t)r->h * r->c, 1 }, .alpha = 1.0f, .beta = beta,
		};
		if ((s = rf_op_matmul(ctx, &mm)) != RF_OK)
			break;
		if (r->reduce_layers && l + 1 < r->l)
			continue;
		uint64_t bytes = (uint64_t)per_layer * 4;
		for (int b = 0; b < r->b && s == RF_OK; b++)
			s = rf_mem_copy(ctx, &layer_out->mem, (uint64_t)b * bytes, &r->spatial_all->mem,
					((uint64_t)b * (uint64_t)slots + (uint64_t)slot_of_layer(r, l)) * bytes, bytes);
	}
	for (int l = 0; l < r->l; l++) {
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
	struct run *r = user;
	rf_ctx *ctx = m->ctx;
	struct rf_shape sb = rf_shape_of(2, (int64_t)r->b, (int64_t)1);
	struct rf_shape se = embeds->shape;
	enum rf_status s;
	if ((s = copy_tensor(ctx, mean, &sb, &r->mean)) != RF_OK ||
	    (s = copy_tensor(ctx, std, &sb, &r->std)) != RF_OK ||
	    (s = copy_tensor(ctx, embeds, &se, &r->embeds)) != RF_OK ||
	    (s = rf_tensor_create(ctx, RF_F32, &sb, &r->norm)) != RF_OK ||
	    (s = rf_op_reduce(ctx, RF_RED_NORM2, embeds, 1u << 1, 0, r->norm)) != RF_OK)
		return s;
	/* The constants every finishing pass reads: bpP, g1P, then each slot's bias. */
	struct output *outs[] = { &r->spatial_out, &r->heads_out, &r->cls_out };
	int rows = 2;
	for (size_t i = 0; i < RF_ARRAY_LEN(outs); i++)
		rows += outs[i]->nslots;
	float *host = malloc((size_t)rows * (size_t)r->c * sizeof *host);
	if (!host)
		return rf_error(RF_ERR_OOM_HOST, "decomposition constants");
	for (int c = 0; c < r->c; c++) {
		host[c] = (float)r->fold->bpp[c];
		host[r->c + c] = (float)r->fold->g1p[c];
	}
	uint32_t first[RF_ARRAY_LEN(outs)];
	int row = 2;
	for (size_t i = 0; i < RF_ARRAY_LEN(outs); i++) {
		first[i] = (uint32_t)row;
		for (int j = 0; j < outs[i]->nslots; j++, row++)
			for (int c = 0; c < r->c; c++)
				host[(size_t)row * r->c + c] = (float)outs[i]->bias[(size_t)j * r->c + c];
	}
	struct rf_shape sc = rf_shape_of(2, (int64_t)rows, (int64_t)r->c);
	rf_tensor *consts = NULL;
	s = rf_tensor_create(ctx, RF_F32, &sc, &consts);
	if (s == RF_OK)
		s = rf_tensor_upload(consts, host, (uint64_t)rows * (uint64_t)r->c * sizeof *host);
	free(host);
	bool deferred = r->spatial && !r->reduce_tokens;
	for (size_t i = 0; i < RF_ARRAY_LEN(outs) && s == RF_OK; i++)
		s = (outs[i] == &r->spatial_out && deferred) ? finish_spatial(r)
							      : finish_output(r, outs[i], consts, first[i]);
	if (s == RF_OK)
		s = finish_output(r, &r->mlps_out, consts, 0);
	rf_tensor_destroy(consts);
	return s;
}

/* }===== */

/* {===== assembling the outputs */

/* Stacks slots [B, rows, C] along a new axis 1 -> [B, nslots, rows, C] reshaped to
** `shape`; on the device when it fits one binding, else on the host. */
static enum rf_status stack(struct run *r, struct output *o, const struct rf_shape *shape, rf_tensor **out)
{
	rf_ctx *ctx = r->m->ctx;
	if (o->nslots == 1) {
		*out = o->slots[0];
		o->slots[0] = NULL;
		return rf_tensor_reshape(*out, shape);
	}
	int64_t per = rf_tensor_numel(o->slots[0]) / r->b;
	uint64_t bytes = (uint64_t)rf_shape_numel(shape) * 4;
	enum rf_status s;
	if (bytes <= rf_ctx_caps(ctx)->max_storage_range) {
		if ((s = rf_tensor_create(ctx, RF_F32, shape, out)) != RF_OK)
			return s;
		for (int i = 0; i < o->nslots && s == RF_OK; i++) {
			struct rf_view src = { 2, { r->b, per }, 0, { per, 1 } };
			struct rf_view dst = { 2, { r->b, per }, (int64_t)i * per, { per * o->nslots, 1 } };
			s = rf_op_copy(ctx, o->slots[i], &src, *out, &dst);
		}
		return s;
	}
	if ((s = rf_tensor_create_host(RF_F32, shape, out)) != RF_OK)
		return s;
	float *tmp = malloc((size_t)(per * r->b) * sizeof *tmp);
	if (!tmp)
		return rf_error(RF_ERR_OOM_HOST, "assembling attn_spatial");
	for (int i = 0; i < o->nslots && s == RF_OK; i++) {
		s = rf_tensor_download(o->slots[i], tmp, (uint64_t)(per * r->b) * sizeof *tmp);
		for (int64_t b = 0; b < r->b && s == RF_OK; b++)
			memcpy((float *)(*out)->host + (b * o->nslots + i) * per, tmp + b * per,
			       (size_t)per * sizeof *tmp);
	}
	free(tmp);
	return s;
}

static struct rf_shape output_shape(const struct run *r, bool layers, bool tokens, bool heads)
{
	struct rf_shape s = { 0 };
	s.dim[s.ndim++] = r->b;
	if (layers)
		s.dim[s.ndim++] = r->l;
	if (tokens)
		s.dim[s.ndim++] = r->n;
	if (heads)
		s.dim[s.ndim++] = r->h;
	s.dim[s.ndim++] = r->c;
	return s;
}

static enum rf_status assemble(struct run *r, struct rf_decomposition *d)
{
	bool layers = !r->reduce_layers, heads = !r->reduce_heads;
	enum rf_status s = RF_OK;
	struct rf_shape shape;
	if (r->spatial) {
		shape = output_shape(r, layers, !r->reduce_tokens, heads);
		if (r->spatial_out.nslots && !r->spatial_out.slots[0]) {
			d->attn_spatial = r->spatial_all;
			r->spatial_all = NULL;
			s = rf_tensor_reshape(d->attn_spatial, &shape);
		} else {
			s = stack(r, &r->spatial_out, &shape, &d->attn_spatial);
		}
	}
	if (s == RF_OK) {
		shape = output_shape(r, layers, false, heads);
		s = stack(r, &r->heads_out, &shape, &d->attn_heads);
	}
	if (s == RF_OK) {
		shape = output_shape(r, layers, false, false);
		s = stack(r, &r->cls_out, &shape, &d->cls_attn);
	}
	if (s == RF_OK) {
		shape = output_shape(r, false, false, false);
		if (layers) {
			shape.ndim = 3;
			shape.dim[2] = r->c;
			shape.dim[1] = r->l + 1;
		}
		s = stack(r, &r->mlps_out, &shape, &d->mlps);
	}
	d->ln_post_mean = r->mean;
	d->ln_post_std = r->std;
	d->image_embeds = r->embeds;
	r->mean = r->std = r->embeds = NULL;
	return s;
}

/* }===== */

static enum rf_status get_fold(rf_clip *m, const struct rf_decompose_options *opt, struct rf_fold **out)
{
	uint64_t hash;
	enum rf_status s = rf_fold_projection_hash(opt->project, &hash);
	if (s != RF_OK)
		return s;
	if (m->fold && m->fold->centering == opt->centering && m->fold->projection_hash == hash) {
		*out = m->fold;
		return RF_OK;
	}
	rf_clip_drop_folds(m);
	if ((s = rf_fold_build(m, opt->project, opt->centering, &m->fold)) != RF_OK)
		return s;
	*out = m->fold;
	return RF_OK;
}

void rf_clip_drop_folds(rf_clip *m)
{
	rf_fold_destroy(m->fold);
	m->fold = NULL;
}

static void run_fini(struct run *r)
{
	output_fini(&r->spatial_out);
	output_fini(&r->heads_out);
	output_fini(&r->mlps_out);
	output_fini(&r->cls_out);
	for (int l = 0; l < r->l && r->vscaled; l++)
		rf_tensor_destroy(r->vscaled[l]);
	free(r->vscaled);
	rf_tensor_destroy(r->t0);
	rf_tensor_destroy(r->spatial_all);
	rf_tensor_destroy(r->hidden_cls);
	rf_tensor_destroy(r->mlp_cls);
	rf_tensor_destroy(r->mean);
	rf_tensor_destroy(r->std);
	rf_tensor_destroy(r->embeds);
	rf_tensor_destroy(r->norm);
}

enum rf_status rf_clip_decompose(rf_clip *m, const rf_tensor *pixels,
				 const struct rf_decompose_options *opt, struct rf_decomposition *out)
{
	memset(out, 0, sizeof *out);
	const struct rf_clip_config *c = &m->cfg;
	if (pixels->shape.ndim != 4)
		return rf_error(RF_ERR_INVALID, "decompose: pixels must be [B, 3, S, S]");
	struct run r = {
		.m = m, .opt = opt, .b = (int)pixels->shape.dim[0], .l = c->vision.layers, .n = c->tokens,
		.h = c->vision.heads, .dh = c->vision.head_width, .w = c->vision.width,
		.k = 2 * c->vision.layers + 1, .spatial = opt->spatial,
		.reduce_layers = opt->reduce & RF_REDUCE_LAYERS, .reduce_tokens = opt->reduce & RF_REDUCE_TOKENS,
		.reduce_heads = opt->reduce & RF_REDUCE_HEADS,
	};
	enum rf_status s = get_fold(m, opt, &r.fold);
	if (s != RF_OK)
		return s;
	r.c = r.fold->dim;
	struct rf_shape st0 = rf_shape_of(3, (int64_t)r.b, (int64_t)r.h, (int64_t)r.c);
	struct rf_shape shid = rf_shape_of(2, (int64_t)r.b, (int64_t)c->vision.mlp_width);
	struct rf_shape smlp = rf_shape_of(2, (int64_t)r.b, (int64_t)r.w);
	r.vscaled = calloc((size_t)r.l, sizeof *r.vscaled);
	if (!r.vscaled) {
		s = rf_error(RF_ERR_OOM_HOST, "decomposition");
		goto out;
	}
	if ((s = setup_outputs(&r)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &st0, &r.t0)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &shid, &r.hidden_cls)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &smlp, &r.mlp_cls)) != RF_OK)
		goto out;
	struct rf_vision_hooks hooks = {
		.user = &r, .want_cls_probs = true,
		.on_embed = on_embed, .on_attention = on_attention, .on_mlp_hidden = on_mlp_hidden,
		.on_final = on_final,
	};
	rf_tensor *embeds = NULL;
	if ((s = rf_clip_forward_vision(m, pixels, &hooks, &embeds)) != RF_OK)
		goto out;
	rf_tensor_destroy(embeds);
	s = assemble(&r, out);
out:
	run_fini(&r);
	if (s != RF_OK)
		rf_decomposition_free(out);
	return s;
}

void rf_decomposition_free(struct rf_decomposition *d)
{
	rf_tensor_destroy(d->attn_spatial);
	rf_tensor_destroy(d->attn_heads);
	rf_tensor_destroy(d->mlps);
	rf_tensor_destroy(d->cls_attn);
	rf_tensor_destroy(d->ln_post_mean);
	rf_tensor_destroy(d->ln_post_std);
	rf_tensor_destroy(d->image_embeds);
	memset(d, 0, sizeof *d);
}

int rf_decompose_max_batch(const rf_clip *m, const struct rf_decompose_options *opt)
{
	const struct rf_clip_config *c = &m->cfg;
	const struct rf_caps *caps = rf_ctx_caps(m->ctx);
	int64_t dim = c->embed_dim;
	if (opt->project && opt->project->shape.ndim == 2)
		dim = opt->project->shape.dim[1];
	/* Per image: the scratch of every token's head products, and the spatial output. */
	uint64_t scratch = (uint64_t)c->tokens * (uint64_t)c->vision.heads * (uint64_t)dim * 4;
	uint64_t spatial = 0;
	if (opt->spatial) {
		spatial = (uint64_t)dim * 4;
		if (!(opt->reduce & RF_REDUCE_LAYERS)) spatial *= (uint64_t)c->vision.layers;
		if (!(opt->reduce & RF_REDUCE_TOKENS)) spatial *= (uint64_t)c->tokens;
		if (!(opt->reduce & RF_REDUCE_HEADS)) spatial *= (uint64_t)c->vision.heads;
	}
	int batch = rf_clip_max_batch(m);
	if (opt->spatial && scratch && caps->max_storage_range / scratch < (uint64_t)batch)
		batch = (int)RF_MAX(1, caps->max_storage_range / scratch);
	/* Keep the outputs within a third of the budget (weights and activations need the rest). */
	if (spatial && (caps->heap_budget / 3) / spatial < (uint64_t)batch)
		batch = (int)RF_MAX(1, (caps->heap_budget / 3) / spatial);
	return batch;
}
