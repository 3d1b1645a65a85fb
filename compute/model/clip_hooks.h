/*
** clip_hooks.h: the points of the vision forward pass where observers (the decomposition,
** taps) and editors (interventions) see or change intermediate device tensors. Each hook
** runs while the pass is being recorded: it may record its own dispatches that read the
** tensors (they are ordered by the automatic barriers) or write them in place (an edit).
** Tensors are [B*N, ...] row-major with token n of image b at row b*N + n.
** Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_CLIP_HOOKS_H
#define RF_COMPUTE_MODEL_CLIP_HOOKS_H

#include "tensor.h"

struct rf_clip;

struct rf_vision_hooks {
	void *user;
	/* What the pass must produce for the hooks. */
	bool want_cls_probs;     /* attention probabilities of the CLS query: [B, H, N] */
	bool want_probs;         /* every attention probability: [B, H, N, N] */
	bool separate_branches;  /* compute each branch's output apart from the residual add,
				    so on_attention_out / on_mlp_out see (and may edit) it */

	/* z0 = ln_pre(embeddings) [B*N, W], the stream entering block 0. */
	enum rf_status (*on_embed)(void *user, struct rf_clip *m, rf_tensor *z0);
	/* Block `layer`, the q/k/v projections [B*N, 3W] (q, k, v column blocks, each with
	** heads side by side) before attention reads them (editable). */
	enum rf_status (*on_qkv)(void *user, struct rf_clip *m, int layer, rf_tensor *qkv);
	/* Block `layer`, after attention and before out_proj: qkv [B*N, 3W], heads
	** concatenated output attn [B*N, W] (editable), cls_probs/probs when asked for. */
	enum rf_status (*on_attention)(void *user, struct rf_clip *m, int layer, rf_tensor *qkv,
				       rf_tensor *attn, const rf_tensor *cls_probs,
				       const rf_tensor *probs);
	/* After out_proj (with bias): the attention branch output [B*N, W] (editable), before
	** it is added to the stream (only with separate_branches). */
	enum rf_status (*on_attention_out)(void *user, struct rf_clip *m, int layer, rf_tensor *out);
	/* The MLP hidden activations [B*N, mlp] after the activation function (editable). */
	enum rf_status (*on_mlp_hidden)(void *user, struct rf_clip *m, int layer, rf_tensor *hidden);
	/* The MLP branch output [B*N, W] with c_proj bias (editable; separate_branches). */
	enum rf_status (*on_mlp_out)(void *user, struct rf_clip *m, int layer, rf_tensor *out);
	/* The residual stream [B*N, W] before block `layer` (resid_pre) and after it. */
	enum rf_status (*on_resid_pre)(void *user, struct rf_clip *m, int layer, rf_tensor *z);
	enum rf_status (*on_resid_post)(void *user, struct rf_clip *m, int layer, rf_tensor *z);
	/* The end: CLS stream r [B, W], ln_post's mean and std [B] (sigma includes eps) and
	** the image embeddings [B, D]. */
	enum rf_status (*on_final)(void *user, struct rf_clip *m, const rf_tensor *r,
				   const rf_tensor *mean, const rf_tensor *std, const rf_tensor *embeds);
};

#endif
