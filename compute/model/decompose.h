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
** per head, once per decomposer (model, P, centring), so a contribution costs dh*C.
** Reductions over layers, tokens and heads are summed as they are produced. The forward
** pass knows nothing of this: the decomposer observes it through its hooks (clip_hooks.h).
** Compute layer (L5).
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

typedef struct rf_decomposer rf_decomposer;

/* Prepares decompositions of `m` with `opt`: folds ln_post, proj, the projection and each
** layer's out_proj into the per-head matrices (once, in double precision on the host; a
** device projection is downloaded this once) and uploads the constants that finish the
** outputs. Keeps none of opt's pointers. `m` must outlive every rf_decomposer_run (the
** decomposer may be destroyed after it). RF_ERR_INVALID for a projection that is not f32
** [D, C]. */
enum rf_status rf_decomposer_create(rf_clip *m, const struct rf_decompose_options *opt,
				    rf_decomposer **out);
/* Decomposes a batch of preprocessed pixels [B, 3, S, S] (f32, host or device) into new
** tensors the caller owns (rf_decomposition_fini). The scratch is kept for the next batch
** of the same size, so a dataset loop builds nothing but its outputs per batch. */
enum rf_status rf_decomposer_run(rf_decomposer *dec, const rf_tensor *pixels,
				 struct rf_decomposition *out);
/* The largest batch whose decomposition (outputs and activations) fits the device beside
** what is in use now (the weights, the fold); at least 1. */
int rf_decomposer_max_batch(const rf_decomposer *dec);
/* Device bytes one image's decomposition with `opt` holds at its peak (outputs and
** activations): what rf_clip_check_room is asked for when a batch does not fit. */
uint64_t rf_decompose_image_bytes(const rf_clip *m, const struct rf_decompose_options *opt);
void rf_decomposer_destroy(rf_decomposer *dec);

/* What a decomposer has done, for tests and benchmarks. */
struct rf_decomposer_stats {
	uint64_t runs;             /* batches decomposed */
	uint64_t fold_builds;      /* folds built (1: the one made by rf_decomposer_create) */
	uint64_t scratch_builds;   /* scratch (re)made: the first batch and each change of size */
};
void rf_decomposer_get_stats(const rf_decomposer *dec, struct rf_decomposer_stats *out);

/* One batch in one call: create, run, destroy (so the fold is built for this batch alone;
** a loop over a dataset keeps one decomposer instead). */
enum rf_status rf_clip_decompose(rf_clip *m, const rf_tensor *pixels,
				 const struct rf_decompose_options *opt, struct rf_decomposition *out);
/* Destroys the tensors of `d` and zeroes it; a zeroed struct is fine. */
void rf_decomposition_fini(struct rf_decomposition *d);

#endif
