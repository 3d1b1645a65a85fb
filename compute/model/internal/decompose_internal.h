/*
** decompose_internal.h: the decomposer's layout, shared by the files that implement it:
** decompose.c (lifetime, scratch, runs), decompose_outputs.c (the slots every output is
** summed into, the constants that finish them, assembling the results) and
** decompose_hooks.c (what runs inside the vision forward pass). Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_DECOMPOSE_INTERNAL_H
#define RF_COMPUTE_MODEL_DECOMPOSE_INTERNAL_H

#include "clip_hooks.h"
#include "clip_internal.h"
#include "decompose.h"
#include "fold.h"

/* The outputs summed into slots, in the order they are finished. */
enum rf_decomp_output {
	RF_OUT_SPATIAL,
	RF_OUT_HEADS,
	RF_OUT_CLS,
	RF_OUT_MLPS,
	RF_OUT_COUNT,
};

/* One output's slots (one per entry of it that is not summed away) and what finishing
** each needs; fixed by the options, whatever the batch. */
struct rf_slot_plan {
	int nslots;            /* 0: the output is not asked for */
	int64_t rows;          /* rows of C per image in each slot; 0: no slot tensors (attn_spatial
				  per token is written whole at the end) */
	bool has_bias;
	double *w;             /* [nslots]: the slot's share of ln_post's mu and beta */
	double *bias;          /* [nslots][C]: its share of the out_proj biases */
	uint32_t first_bias;   /* row of the constants holding slot 0's bias */
};

/* Scratch for batches of `batch` images, kept for the next batch of that size. (The
** per-token spatial buffers are not kept: they are as large as the output, and a run frees
** them as soon as attn_spatial is made, so a run's peak and an idle decomposer stay small.) */
struct rf_decomp_scratch {
	int batch;             /* 0: not made yet */
	rf_tensor *t0;         /* [B, H, C]: CLS products */
	rf_tensor *hidden_cls; /* [B, mlp]: the CLS rows of an MLP's hidden layer */
	rf_tensor *mlp_cls;    /* [B, W]: the MLP's output at CLS */
};

struct rf_decomposer {
	rf_clip *m;
	struct rf_decompose_options opt;   /* `project` cleared: the fold holds the projection */
	struct rf_fold *fold;
	int l, n, h, dh, w, c, k;          /* layers, tokens, heads, head width, width, C, 2L + 1 */
	bool reduce_layers, reduce_tokens, reduce_heads;
	bool deferred;                     /* attn_spatial per token: made from vscaled at the end */
	struct rf_slot_plan plan[RF_OUT_COUNT];
	rf_tensor *consts;                 /* [2 + bias rows, C]: bpP, g1P, then every slot's bias */
	struct rf_decomp_scratch scratch;
	struct rf_decomposer_stats stats;
};

/* One batch on its way through the forward pass. */
struct rf_decomp_run {
	rf_decomposer *d;
	int b;
	rf_tensor **slots[RF_OUT_COUNT];   /* [nslots] device tensors [B, rows, C] (NULL when deferred) */
	rf_tensor *spatial_all;            /* [B, L', N, H', C] when deferred */
	rf_tensor **vscaled;               /* when deferred, per layer [B*N, H*(dh+4)]: value rows
					      weighted by the CLS query's attention, each head's
					      followed by 4 entries for the fold's constant rows;
					      times the folds once ln_post's constants are known */
	rf_tensor *mean, *std, *embeds;    /* copies of the forward's final values */
	rf_tensor *norm;                   /* [B, 1]: ||e|| */
};

/* decompose_outputs.c */
int rf_decomp_slot_of_layer(const rf_decomposer *d, int layer);
/* The slot plans and the device constants (needs the fold). */
enum rf_status rf_decomp_plan(rf_decomposer *d);
void rf_decomp_plan_fini(rf_decomposer *d);
/* Zeroed slots for a run of r->b images (and attn_spatial's tensor when deferred). */
enum rf_status rf_decomp_slots_create(struct rf_decomp_run *r);
/* Frees what the run still holds (after rf_decomp_assemble: what was not handed out). */
void rf_decomp_run_fini(struct rf_decomp_run *r);
/* Moves the finished slots into `out`, stacked and shaped as decompose.h says. */
enum rf_status rf_decomp_assemble(struct rf_decomp_run *r, struct rf_decomposition *out);

/* decompose_hooks.c: the hooks that sum the contributions of a run as the pass goes. */
struct rf_vision_hooks rf_decomp_hooks(struct rf_decomp_run *r);

#endif
