/*
** clip_internal.h: the layout of rf_clip shared by the files that implement it
** (loading, the two forward passes) and by the observers that read its weights (the
** decomposition's fold and hooks). Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_CLIP_INTERNAL_H
#define RF_COMPUTE_MODEL_CLIP_INTERNAL_H

#include "clip.h"
#include "gemm.h"
#include "safetensors.h"

struct rf_linear {
	rf_gemm_weights *w;
	rf_tensor *b;            /* [n] f32 device, or NULL */
};

struct rf_norm {
	rf_tensor *w, *b;        /* [width] f32 device */
};

struct rf_block_weights {
	struct rf_norm ln1, ln2;
	struct rf_linear qkv, out, fc, proj;
};

struct rf_tower {
	struct rf_block_weights *blocks;
	int layers;
};

struct rf_clip {
	rf_ctx *ctx;
	struct rf_clip_config cfg;
	enum rf_dtype storage;
	rf_safetensors *st;          /* mapped while loading, then read through the file: token
	                              * rows and folding read from it (rf_safetensors_unmap) */
	uint64_t weight_bytes;

	/* vision tower */
	rf_gemm_weights *patch;      /* conv1 as [W, 3*p*p] */
	rf_tensor *class_emb;        /* [W] */
	rf_tensor *vis_pos;          /* [N, W] */
	struct rf_norm ln_pre, ln_post;
	struct rf_tower vision;
	rf_gemm_weights *vis_proj;   /* [D, W] */

	/* text tower */
	bool has_text;
	const struct rf_st_entry *tok_emb;   /* [vocab, Wt] in the checkpoint */
	rf_tensor *text_pos;         /* [ctx, Wt] */
	struct rf_tower text;
	struct rf_norm ln_final;
	rf_gemm_weights *text_proj;  /* [D, Wt] */
	rf_tokenizer *tokenizer;
};

/* clip.c: pixels must be f32 [B, 3, S, S] with B >= 1 (RF_ERR_INVALID naming what came). */
enum rf_status rf_clip_check_pixels(const rf_clip *m, const rf_tensor *pixels);

/* clip_weights.c: naming and loading. */
enum rf_status rf_clip_load_weights(rf_clip *m);
void rf_clip_weights_fini(rf_clip *m);

/* The file's name of a logical tensor, e.g. ("vision", 3, "ln_1.weight"). */
const char *rf_clip_tensor_name(const rf_clip *m, const char *logical, int layer, char *buf,
				size_t size);
/* Reads a tensor of the checkpoint as f32 on the host into `out` (numel floats), checking
** its shape against `shape`. */
enum rf_status rf_clip_read_f32(const rf_clip *m, const char *name, const struct rf_shape *shape,
				float *out);

/* clip_block.c: one pre-LN residual block on [B*N, W] activations. */
struct rf_block_run {
	rf_clip *m;
	const struct rf_tower_config *cfg;
	const struct rf_block_weights *w;
	int layer;
	int batch, tokens;
	bool causal;
	const struct rf_vision_hooks *hooks;   /* vision only; NULL for text */
};

/* Scratch activations shared by the blocks of one forward pass. */
struct rf_block_scratch {
	rf_tensor *u;       /* [B*N, W]  LayerNorm output */
	rf_tensor *qkv;     /* [B*N, 3W] */
	rf_tensor *attn;    /* [B*N, W]  heads concatenated, before out_proj */
	rf_tensor *hidden;  /* [B*N, mlp] */
	rf_tensor *branch;  /* [B*N, W]  a branch's output when hooks need it apart */
	rf_tensor *cls_probs; /* [B, H, N] when hooks ask for it */
	rf_tensor *probs;   /* [B, H, N, N] when hooks ask for it */
};

enum rf_status rf_block_scratch_init(rf_ctx *ctx, const struct rf_tower_config *cfg, int batch,
				     int tokens, const struct rf_vision_hooks *hooks,
				     struct rf_block_scratch *s);
void rf_block_scratch_fini(struct rf_block_scratch *s);
enum rf_status rf_block_forward(const struct rf_block_run *run, struct rf_block_scratch *s,
				rf_tensor *z);

/* A device tensor of f32 values read from the checkpoint (shape checked). */
enum rf_status rf_clip_upload_f32(rf_clip *m, const char *name, const struct rf_shape *shape,
				  rf_tensor **out);

#endif
