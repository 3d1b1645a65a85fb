/*
** clip.h: a CLIP model on the device: loading a checkpoint directory (open_clip or Hugging
** Face layout, f32/f16/bf16 weights, stored on the device as f32 or f16), encoding images
** and texts. The forward passes take hooks (clip_hooks.h) through which the decomposition,
** interventions and taps observe or edit intermediate tensors. Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_CLIP_H
#define RF_COMPUTE_MODEL_CLIP_H

#include "clip_config.h"
#include "tensor.h"
#include "tokenizer.h"

typedef struct rf_clip rf_clip;
struct rf_vision_hooks;

struct rf_clip_options {
	enum rf_dtype storage;    /* RF_F32 (default when 0-initialised) or RF_F16 */
	bool vision_only;         /* skip the text tower even if the checkpoint has one */
	const char *vocab_path;   /* open_clip BPE .gz if the model directory has no vocab.json */
};

/* Loads the model in `dir`: config, weights (every tensor checked against the config:
** a missing tensor or a wrong shape is an error naming the tensor, the expected and the
** found shape), tokenizer (vocab.json + merges.txt from the directory, else
** options->vocab_path). The model holds a context reference. */
enum rf_status rf_clip_load(rf_ctx *ctx, const char *dir, const struct rf_clip_options *opt,
			    rf_clip **out);
void rf_clip_destroy(rf_clip *m);

const struct rf_clip_config *rf_clip_get_config(const rf_clip *m);
const rf_tokenizer *rf_clip_get_tokenizer(const rf_clip *m);   /* NULL without a text tower */
rf_ctx *rf_clip_ctx(const rf_clip *m);
enum rf_dtype rf_clip_storage(const rf_clip *m);
/* Device bytes held by the weights. */
uint64_t rf_clip_weight_bytes(const rf_clip *m);

/* image_embeds [B, D] (not normalised) of preprocessed pixels [B, 3, S, S] (f32, host
** or device). `embeds` receives a new device tensor. Batches of any size (the work is
** split internally so that activations stay within the device's limits). */
enum rf_status rf_clip_encode_images(rf_clip *m, const rf_tensor *pixels, rf_tensor **embeds);

/* The same with hooks (NULL: plain). Processes the whole batch in one pass. */
enum rf_status rf_clip_forward_vision(rf_clip *m, const rf_tensor *pixels,
				      const struct rf_vision_hooks *hooks, rf_tensor **embeds);

/* Token ids [T, context] (host i64) of T UTF-8 strings. */
enum rf_status rf_clip_tokenize(const rf_clip *m, const char *const *texts, int count,
				rf_tensor **tokens);
/* text_embeds [T, D] (not normalised) of token ids [T, context] (host i64); pooled at
** each row's first end-of-text token (the largest id). */
enum rf_status rf_clip_encode_tokens(rf_clip *m, const rf_tensor *tokens, rf_tensor **embeds);

/* The largest batch whose activations fit the device's binding range and what its memory
** budget has left beside the tensors in use (the weights); at least 1. */
int rf_clip_max_batch(const rf_clip *m);
/* Device bytes one image's vision forward pass holds at its peak (activations). */
uint64_t rf_clip_image_bytes(const rf_clip *m);
/* Device bytes a batch may still take: four fifths of the budget less what is in use. */
uint64_t rf_clip_free_bytes(const rf_clip *m);
/* RF_ERR_OOM_DEVICE with a message saying what is needed and what is free when not even
** one image's `per_image` bytes fit beside what is in use ("what" starts the message). */
enum rf_status rf_clip_check_room(const rf_clip *m, const char *what, uint64_t per_image);

#endif
