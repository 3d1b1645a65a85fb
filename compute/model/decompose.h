/*
** decompose.h: the direct contributions of every component of the vision tower to the
** normalised image embedding, computed on the device during the forward pass (the
** projected residual-stream decomposition of Gandelsman et al., exactly as their code
** defines it: see tests/data/tiny-gelu/README.md, item 3).
**
** For one image, with ln_post's mean mu and std sigma frozen and e the embedding:
**   attn_spatial[l, m, h]  head h of layer l reading source token m (out_proj bias split
**                          evenly over the N*H summands of its layer)
**   attn_heads[l, h]       = sum over m of attn_spatial[l, m, h]
**   mlps[0]                the embedding term (ln_pre output at CLS)
**   mlps[l + 1]            the MLP of block l at CLS
**   cls_attn[l]            = sum over h of attn_spatial[l, 0, h]
** each mapped through the frozen ln_post and proj (weights 1/(K N H) per attention summand
** and 1/K per MLP summand, K = 2L + 1) and divided by ||e||; everything sums to e/||e||.
**
** Nothing of size N x N x H x width is ever formed: each head's out_proj slice is folded
** with ln_post's gamma, proj and an optional projection P [D, C] into one [dh, C] matrix
** per head, once per model and P, so a contribution costs dh*C. Reductions over layers,
** tokens and heads are summed as they are produced. Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_DECOMPOSE_H
#define RF_COMPUTE_MODEL_DECOMPOSE_H

#include "clip.h"

enum rf_centering {
	/* The reference's: ln_post's mean is split over the summands with the same weights
	** as beta (so each summand carries w * mu). */
	RF_CENTER_REFERENCE,
	/* Exact per-summand centring: each summand minus its own mean over the width
	** features, so a summand's image no longer depends on how mu is split. The sum is
	** e/||e|| as well (the means add up to mu). beta is split as in the reference. */
	RF_CENTER_EXACT,
};

/* Axes of the attention contributions that may be summed away. */
enum {
	RF_REDUCE_LAYERS = 1u << 0,
	RF_REDUCE_TOKENS = 1u << 1,
	RF_REDUCE_HEADS = 1u << 2,
};

struct rf_decompose_options {
	bool spatial;                 /* produce per-source-token contributions ("attn_spatial") */
	uint32_t reduce;              /* RF_REDUCE_* summed in attn_spatial (and layers in mlps) */
	const rf_tensor *project;     /* [D, C] f32 (host or device) or NULL (C = D) */
	enum rf_centering centering;
};

/* The outputs; absent ones are NULL. Device f32 tensors, except attn_spatial when it is
** larger than one storage binding of the device: then it is a host f32 tensor. Reduced axes
** are dropped from the shapes (e.g. spatial with RF_REDUCE_LAYERS|RF_REDUCE_HEADS gives
** [B, N, C]); C = D without a projection. */
struct rf_decomposition {
	rf_tensor *attn_spatial;      /* [B, L, N, H, C] minus reduced axes (spatial only) */
	rf_tensor *attn_heads;        /* [B, L, H, C] (layers/heads reduction applies) */
	rf_tensor *mlps;              /* [B, L+1, C] ([B, C] with RF_REDUCE_LAYERS) */
	rf_tensor *cls_attn;          /* [B, L, C] ([B, C] with RF_REDUCE_LAYERS) */
	rf_tensor *ln_post_mean;      /* [B, 1] */
	rf_tensor *ln_post_std;       /* [B, 1] */
	rf_tensor *image_embeds;      /* [B, D] */
};

/* Decomposes a batch of preprocessed pixels [B, 3, S, S]. */
enum rf_status rf_clip_decompose(rf_clip *m, const rf_tensor *pixels,
				 const struct rf_decompose_options *opt, struct rf_decomposition *out);
void rf_decomposition_free(struct rf_decomposition *d);

/* The largest batch whose decomposition (outputs and activations) fits the device beside
** what is in use (the weights); at least 1. */
int rf_decompose_max_batch(const rf_clip *m, const struct rf_decompose_options *opt);
/* Device bytes one image's decomposition holds at its peak (outputs and activations). */
uint64_t rf_decompose_image_bytes(const rf_clip *m, const struct rf_decompose_options *opt);

/* Drops the folded matrices cached in the model (they are rebuilt on demand). */
void rf_clip_drop_folds(rf_clip *m);

#endif
