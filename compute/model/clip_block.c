/*
** clip_block.c: one pre-LN residual attention block on [B, N, W] activations, with the
** hook points of clip_hooks.h. Shared by the vision and the text tower.
** Compute layer (L5).
*/
#include "clip_internal.h"
#include "clip_hooks.h"
#include "elementwise.h"
#include "nn.h"
#include "status.h"

#include <string.h>

static enum rf_status make(rf_ctx *ctx, rf_tensor **t, int ndim, int64_t a, int64_t b, int64_t c,
			   int64_t d)
{
	int64_t dims[4] = { a, b, c, d };
	struct rf_shape s = rf_shape_make(ndim, dims);
	return rf_tensor_create(ctx, RF_F32, &s, t);
}

enum rf_status rf_block_scratch_init(rf_ctx *ctx, const struct rf_tower_config *cfg, int batch,
				     int tokens, const struct rf_vision_hooks *hooks,
				     struct rf_block_scratch *s)
{
	memset(s, 0, sizeof *s);
	int64_t b = batch, n = tokens, w = cfg->width;
	enum rf_status st;
	if ((st = make(ctx, &s->u, 3, b, n, w, 0)) != RF_OK ||
	    (st = make(ctx, &s->qkv, 3, b, n, 3 * w, 0)) != RF_OK ||
	    (st = make(ctx, &s->attn, 3, b, n, w, 0)) != RF_OK ||
	    (st = make(ctx, &s->hidden, 3, b, n, cfg->mlp_width, 0)) != RF_OK)
		goto fail;
	if (hooks && hooks->separate_branches && (st = make(ctx, &s->branch, 3, b, n, w, 0)) != RF_OK)
		goto fail;
	if (hooks && hooks->want_cls_probs && (st = make(ctx, &s->cls_probs, 3, b, cfg->heads, n, 0)) != RF_OK)
		goto fail;
	if (hooks && hooks->want_probs && (st = make(ctx, &s->probs, 4, b, cfg->heads, n, n)) != RF_OK)
		goto fail;
	return RF_OK;
fail:
	rf_block_scratch_fini(s);
	return st;
}

void rf_block_scratch_fini(struct rf_block_scratch *s)
{
	rf_tensor_destroy(s->u);
	rf_tensor_destroy(s->qkv);
	rf_tensor_destroy(s->attn);
	rf_tensor_destroy(s->hidden);
	rf_tensor_destroy(s->branch);
	rf_tensor_destroy(s->cls_probs);
	rf_tensor_destroy(s->probs);
	memset(s, 0, sizeof *s);
}

/* out = in·Wᵀ + b, added to z either fused (residual) or apart so a hook can see it. */
static enum rf_status branch_into_stream(const struct rf_block_run *run, struct rf_block_scratch *s,
					 const struct rf_linear *lin, const rf_tensor *in, rf_tensor *z,
					 bool attention)
{
	rf_ctx *ctx = run->m->ctx;
	const struct rf_vision_hooks *h = run->hooks;
	if (!h || !h->separate_branches) {
		struct rf_gemm g = { in, lin->w, lin->b, RF_ACT_NONE, z, z };
		return rf_op_gemm(ctx, &g);
	}
	struct rf_gemm g = { in, lin->w, lin->b, RF_ACT_NONE, NULL, s->branch };
	enum rf_status st = rf_op_gemm(ctx, &g);
	if (st == RF_OK) {
		if (attention && h->on_attention_out)
			st = h->on_attention_out(h->user, run->m, run->layer, s->branch);
		else if (!attention && h->on_mlp_out)
			st = h->on_mlp_out(h->user, run->m, run->layer, s->branch);
	}
	if (st == RF_OK)
		st = rf_op_binary(ctx, RF_BIN_ADD, z, s->branch, z);
	return st;
}

enum rf_status rf_block_forward(const struct rf_block_run *run, struct rf_block_scratch *s,
				rf_tensor *z)
{
	rf_ctx *ctx = run->m->ctx;
	const struct rf_block_weights *w = run->w;
	const struct rf_vision_hooks *h = run->hooks;
	float eps = run->cfg->ln_eps;
	enum rf_status st = RF_OK;
	if (h && h->on_resid_pre && (st = h->on_resid_pre(h->user, run->m, run->layer, z)) != RF_OK)
		return st;

	/* attention branch */
	if ((st = rf_op_layernorm(ctx, z, w->ln1.w, w->ln1.b, eps, s->u, NULL, NULL)) != RF_OK)
		return st;
	struct rf_gemm qkv = { s->u, w->qkv.w, w->qkv.b, RF_ACT_NONE, NULL, s->qkv };
	if ((st = rf_op_gemm(ctx, &qkv)) != RF_OK)
		return st;
	if (h && h->on_qkv && (st = h->on_qkv(h->user, run->m, run->layer, s->qkv)) != RF_OK)
		return st;
	struct rf_attention att = { s->qkv, run->cfg->heads, run->causal, s->attn, s->probs, s->cls_probs };
	if ((st = rf_op_attention(ctx, &att)) != RF_OK)
		return st;
	if (h && h->on_attention &&
	    (st = h->on_attention(h->user, run->m, run->layer, s->qkv, s->attn, s->cls_probs, s->probs)) != RF_OK)
		return st;
	if ((st = branch_into_stream(run, s, &w->out, s->attn, z, true)) != RF_OK)
		return st;

	/* MLP branch */
	if ((st = rf_op_layernorm(ctx, z, w->ln2.w, w->ln2.b, eps, s->u, NULL, NULL)) != RF_OK)
		return st;
	struct rf_gemm fc = { s->u, w->fc.w, w->fc.b, rf_clip_get_config(run->m)->act, NULL, s->hidden };
	if ((st = rf_op_gemm(ctx, &fc)) != RF_OK)
		return st;
	if (h && h->on_mlp_hidden && (st = h->on_mlp_hidden(h->user, run->m, run->layer, s->hidden)) != RF_OK)
		return st;
	if ((st = branch_into_stream(run, s, &w->proj, s->hidden, z, false)) != RF_OK)
		return st;
	if (h && h->on_resid_post)
		st = h->on_resid_post(h->user, run->m, run->layer, z);
	return st;
}
