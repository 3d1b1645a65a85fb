/*
** clip_config.h: a CLIP architecture as refract needs it, read from a model directory in
** either published layout: open_clip (open_clip_config.json) or Hugging Face transformers
** (config.json, optional preprocessor_config.json). Compute layer (L5; host only).
*/
#ifndef RF_COMPUTE_MODEL_CLIP_CONFIG_H
#define RF_COMPUTE_MODEL_CLIP_CONFIG_H

#include "rf_base.h"
#include "gemm.h"
#include "image.h"

enum rf_clip_layout { RF_LAYOUT_OPEN_CLIP, RF_LAYOUT_HF };

struct rf_tower_config {
	int width;          /* residual stream width */
	int layers;
	int heads;
	int head_width;     /* width / heads */
	int mlp_width;
	float ln_eps;
};

struct rf_clip_config {
	enum rf_clip_layout layout;
	char *dir;                        /* malloc'd, as long as given (rf_clip_config_free) */
	char *weights_path;               /* malloc'd */
	int embed_dim;
	enum rf_activation act;           /* GELU or QuickGELU, both towers */
	/* vision */
	int image_size, patch_size;
	int grid;                         /* image_size / patch_size */
	int tokens;                       /* 1 + grid^2 */
	struct rf_tower_config vision;
	/* text (has_text false when the checkpoint has no text tower) */
	bool has_text;
	int context_length, vocab_size;
	struct rf_tower_config text;
	int64_t eot_id;                   /* pooling token; the largest id in CLIP's vocabulary */
	/* preprocessing */
	struct rf_preprocess preprocess;
	/* The natural log of the factor CLIP multiplies cosine similarities by before the
	** softmax (logits = exp(logit_scale) * cos): the checkpoint's `logit_scale` tensor
	** (set by rf_clip_load), else the config's initial value (open_clip's
	** model_cfg.init_logit_scale, transformers' logit_scale_init_value); has_logit_scale
	** is false when neither says. */
	bool has_logit_scale;
	float logit_scale;
};

/* Reads the configuration of the model directory `dir`. Missing files, malformed JSON,
** missing or inconsistent fields (e.g. width not divisible by heads, image size not a
** multiple of the patch size) and unsupported architectures (timm or HF-text towers,
** attentional pooling, ...) are errors naming the file and the field. A pickled
** checkpoint (.bin/.pt/.pth) without a safetensors file is refused with advice.
** Sizes are bounded so that every product of them fits: integers in 1..10^7, at most
** RF_CLIP_MAX_TOKENS image tokens and a context of RF_CLIP_MAX_CONTEXT; ratios and
** epsilons finite; mean and std finite (std positive). On failure nothing needs freeing;
** on success rf_clip_config_free releases the paths. */
enum rf_status rf_clip_config_load(const char *dir, struct rf_clip_config *out);
void rf_clip_config_free(struct rf_clip_config *c);

#define RF_CLIP_MAX_TOKENS 65537     /* 1 + grid^2 with grid <= 256 */
#define RF_CLIP_MAX_CONTEXT 65536

/* One line describing the architecture, e.g. "ViT 224/16 width 768 x 12 layers ...". */
void rf_clip_config_describe(const struct rf_clip_config *c, char *buf, size_t size);

#endif
