/*
** clip.c: loading a CLIP model and the vision forward pass (patch embedding, class token,
** positions, ln_pre, blocks, ln_post on CLS, projection). Compute layer (L5).
*/
#include "clip_internal.h"
#include "clip_hooks.h"
#include "context.h"
#include "elementwise.h"
#include "file_in.h"
#include "nn.h"
#include "status.h"
#include "tensor_ops.h"
#include "transfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* {===== loading */

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static enum rf_status load_tokenizer(rf_clip *m, const struct rf_clip_options *opt)
{
	char *vocab = rf_path_join(m->cfg.dir, "vocab.json");
	char *merges = rf_path_join(m->cfg.dir, "merges.txt");
	enum rf_status s;
	if (!vocab || !merges)
		s = rf_error(RF_ERR_OOM_HOST, "%s: loading the tokenizer", m->cfg.dir);
	else if (exists(vocab) && exists(merges))
		s = rf_tokenizer_load_hf(vocab, merges, &m->tokenizer);
	else if (opt && opt->vocab_path)
		s = rf_tokenizer_load_bpe_gz(opt->vocab_path, &m->tokenizer);
	else
		s = rf_error(RF_ERR_IO, "%s: no vocab.json and merges.txt for the text tower, and no "
			     "open_clip vocabulary given", m->cfg.dir);
	free(vocab);
	free(merges);
	return s;
}

enum rf_status rf_clip_load(rf_ctx *ctx, const char *dir, const struct rf_clip_options *opt,
			    rf_clip **out)
{
	*out = NULL;
	rf_clip *m = calloc(1, sizeof *m);
	if (!m)
		return rf_error(RF_ERR_OOM_HOST, "allocating a model");
	m->ctx = rf_ctx_retain(ctx);
	m->storage = opt && opt->storage == RF_F16 ? RF_F16 : RF_F32;
	if (opt && opt->storage != RF_F32 && opt->storage != RF_F16) {
		rf_clip_destroy(m);
		return rf_error(RF_ERR_INVALID, "weights can be stored as f32 or f16, not %s",
				rf_dtype_name(opt->storage));
	}
	enum rf_status s = rf_clip_config_load(dir, &m->cfg);
	m->has_text = m->cfg.has_text && !(opt && opt->vision_only);
	if (s == RF_OK)
		s = rf_clip_load_weights(m);
	if (s == RF_OK && m->has_text)
		s = load_tokenizer(m, opt);
	if (s == RF_OK)
		s = rf_ctx_finish(ctx);
	if (s != RF_OK) {
		rf_clip_destroy(m);
		return s;
	}
	/* What is read later (token rows, folding) goes through the file from now on: a
	** mapping kept past loading turns a checkpoint truncated by someone else into a
	** SIGBUS; a read fails with a message instead. */
	rf_safetensors_unmap(m->st);
	*out = m;
	return RF_OK;
}

void rf_clip_destroy(rf_clip *m)
{
	if (!m)
		return;
	rf_clip_weights_fini(m);
	rf_tokenizer_destroy(m->tokenizer);
	rf_clip_config_free(&m->cfg);
	rf_ctx_release(m->ctx);
	free(m);
}

const struct rf_clip_config *rf_clip_get_config(const rf_clip *m)
{
	return &m->cfg;
}

const rf_tokenizer *rf_clip_get_tokenizer(const rf_clip *m)
{
	return m->tokenizer;
}

rf_ctx *rf_clip_ctx(const rf_clip *m)
{
	return m->ctx;
}

enum rf_dtype rf_clip_storage(const rf_clip *m)
{
	return m->storage;
}

uint64_t rf_clip_weight_bytes(const rf_clip *m)
{
	return m->weight_bytes;
}

uint64_t rf_clip_image_bytes(const rf_clip *m)
{
	/* The residual stream and the block's scratch: LayerNorm output, qkv, the heads, a
	** branch kept apart for hooks, the MLP's hidden layer and the GEMM's packed copy of
	** it (measured on tiny-gelu: 62 KB per image against 65 KB from this). */
	const struct rf_clip_config *c = &m->cfg;
	return (uint64_t)c->tokens * (7 * (uint64_t)c->vision.width + 2 * (uint64_t)c->vision.mlp_width) * 4;
}

uint64_t rf_clip_free_bytes(const rf_clip *m)
{
	struct rf_mem_stats st;
	rf_ctx_memory_stats(m->ctx, &st);
	uint64_t budget = rf_ctx_caps(m->ctx)->heap_budget;
	/* A fifth is left for the short-lived copies around the blocks (patches, the CLS
	** rows) and for the space that the blocks' suballocation leaves between tensors
	** (measured up to a fifth with small budgets). */
	return budget > st.in_use ? (budget - st.in_use) / 5 * 4 : 0;
}

int rf_clip_max_batch(const rf_clip *m)
{
	/* The widest activation row of a batch is the MLP hidden layer (or the attention
	** probabilities); keep it inside one storage binding, and the batch's activations
	** inside what the device's budget has left beside the weights. */
	const struct rf_clip_config *c = &m->cfg;
	uint64_t per_image = (uint64_t)c->tokens * (uint64_t)RF_MAX(c->vision.mlp_width, 3 * c->vision.width) * 4;
	uint64_t probs = (uint64_t)c->vision.heads * (uint64_t)c->tokens * (uint64_t)c->tokens * 4;
	per_image = RF_MAX(per_image, probs);
	uint64_t limit = rf_ctx_caps(m->ctx)->max_storage_range / per_image;
	limit = RF_MIN(limit, rf_clip_free_bytes(m) / rf_clip_image_bytes(m));
	return (int)RF_MAX(1, RF_MIN(limit, 64));
}

enum rf_status rf_clip_check_room(const rf_clip *m, const char *what, uint64_t per_image)
{
	struct rf_mem_stats st;
	rf_ctx_memory_stats(m->ctx, &st);
	const struct rf_caps *caps = rf_ctx_caps(m->ctx);
	uint64_t free = caps->heap_budget > st.in_use ? caps->heap_budget - st.in_use : 0;
	if (per_image <= free)
		return RF_OK;
	return rf_error(RF_ERR_OOM_DEVICE, "%s: one image needs about %.1f MiB of device memory, and "
			"%.1f MiB of the %.1f MiB that refract uses on %s are free beside the %.1f MiB "
			"in use (the weights%s): nothing fits; %s",
			what, per_image / 1048576.0, free / 1048576.0, caps->heap_budget / 1048576.0,
			caps->name, st.in_use / 1048576.0, m->weight_bytes < st.in_use ? " and other tensors" : "",
			m->storage == RF_F32 ? "store the weights as f16 or free tensors"
					     : "free tensors, or use a device with more memory");
}

/* }===== */

/* {===== vision forward */

/* NaN or infinity in the pixels would run through the model into every output without a
** word: refused here, naming the image and the place (read back from the device). */
static enum rf_status check_finite_pixels(const rf_tensor *pixels)
{
	size_t n = (size_t)rf_tensor_numel(pixels);
	const float *v = pixels->host;
	float *down = NULL;
	if (rf_tensor_on_device(pixels)) {
		if (!(down = malloc(n * sizeof *down)))
			return rf_error(RF_ERR_OOM_HOST, "pixels: checking the values");
		enum rf_status s = rf_tensor_download(pixels, down, n * sizeof *down);
		if (s != RF_OK) {
			free(down);
			return s;
		}
		v = down;
	}
	size_t at;
	bool bad = rf_find_nonfinite(RF_F32, v, n, &at);
	float value = bad ? v[at] : 0;
	free(down);
	if (!bad)
		return RF_OK;
	const int64_t *d = pixels->shape.dim;
	size_t plane = (size_t)(d[2] * d[3]), image = 3 * plane;
	return rf_error(RF_ERR_INVALID, "pixels: image %zu of the batch holds %s at channel %zu, "
			"row %zu, column %zu (every pixel must be finite)", at / image + 1,
			isnan(value) ? "NaN" : value > 0 ? "infinity" : "-infinity",
			at % image / plane + 1, at % plane / (size_t)d[3] + 1, at % (size_t)d[3] + 1);
}

enum rf_status rf_clip_check_pixels(const rf_clip *m, const rf_tensor *pixels)
{
	const struct rf_clip_config *c = &m->cfg;
	char got[96];
	if (pixels->dtype != RF_F32 || pixels->shape.ndim != 4 || pixels->shape.dim[1] != 3 ||
	    pixels->shape.dim[2] != c->image_size || pixels->shape.dim[3] != c->image_size)
		return rf_error(RF_ERR_INVALID, "pixels must be f32 [B, 3, %d, %d], got %s %s",
				c->image_size, c->image_size, rf_dtype_name(pixels->dtype),
				rf_shape_str(&pixels->shape, got, sizeof got));
	if (pixels->shape.dim[0] < 1)
		return rf_error(RF_ERR_INVALID, "pixels: the batch is empty");
	return check_finite_pixels(pixels);
}

/* z [B, N, W] = [class | patches] + positions. */
static enum rf_status embed_tokens(rf_clip *m, const rf_tensor *pixels, rf_tensor *z)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t b = pixels->shape.dim[0], g2 = (int64_t)c->grid * c->grid, w = c->vision.width;
	int64_t n = c->tokens, k = 3 * (int64_t)c->patch_size * c->patch_size;
	rf_tensor *patches = NULL, *pe = NULL;
	struct rf_shape sp = rf_shape_of(2, b * g2, k), spe = rf_shape_of(2, b * g2, w);
	enum rf_status s;
	if ((s = rf_tensor_create(m->ctx, RF_F32, &sp, &patches)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &spe, &pe)) != RF_OK ||
	    (s = rf_op_patchify(m->ctx, pixels, c->patch_size, patches)) != RF_OK)
		goto out;
	struct rf_gemm g = { patches, m->patch, NULL, RF_ACT_NONE, NULL, pe };
	if ((s = rf_op_gemm(m->ctx, &g)) != RF_OK)
		goto out;
	struct rf_view cls_src = { 2, { b, w }, 0, { 0, 1 } };
	struct rf_view cls_dst = { 2, { b, w }, 0, { n * w, 1 } };
	struct rf_view pe_src = { 3, { b, g2, w }, 0, { g2 * w, w, 1 } };
	struct rf_view pe_dst = { 3, { b, g2, w }, w, { n * w, w, 1 } };
	if ((s = rf_op_copy(m->ctx, m->class_emb, &cls_src, z, &cls_dst)) != RF_OK ||
	    (s = rf_op_copy(m->ctx, pe, &pe_src, z, &pe_dst)) != RF_OK)
		goto out;
	s = rf_op_binary(m->ctx, RF_BIN_ADD, z, m->vis_pos, z);
out:
	rf_tensor_destroy(patches);
	rf_tensor_destroy(pe);
	return s;
}

/* The CLS rows through ln_post and the projection; calls on_final. */
static enum rf_status head(rf_clip *m, const rf_tensor *z, const struct rf_vision_hooks *hooks,
			   rf_tensor **embeds)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t b = z->shape.dim[0], n = c->tokens, w = c->vision.width;
	rf_tensor *r = NULL, *rn = NULL, *mean = NULL, *std = NULL;
	struct rf_shape sr = rf_shape_of(2, b, w), sb = rf_shape_of(1, b), se = rf_shape_of(2, b, (int64_t)c->embed_dim);
	enum rf_status s;
	if ((s = rf_tensor_create(m->ctx, RF_F32, &sr, &r)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &sr, &rn)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &sb, &mean)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &sb, &std)) != RF_OK ||
	    (s = rf_tensor_create(m->ctx, RF_F32, &se, embeds)) != RF_OK)
		goto out;
	struct rf_view src = { 2, { b, w }, 0, { n * w, 1 } };
	struct rf_view dst = rf_view_contiguous(r);
	if ((s = rf_op_copy(m->ctx, z, &src, r, &dst)) != RF_OK ||
	    (s = rf_op_layernorm(m->ctx, r, m->ln_post.w, m->ln_post.b, c->vision.ln_eps, rn, mean, std)) != RF_OK)
		goto out;
	struct rf_gemm g = { rn, m->vis_proj, NULL, RF_ACT_NONE, NULL, *embeds };
	if ((s = rf_op_gemm(m->ctx, &g)) != RF_OK)
		goto out;
	if (hooks && hooks->on_final)
		s = hooks->on_final(hooks->user, m, r, mean, std, *embeds);
out:
	rf_tensor_destroy(r);
	rf_tensor_destroy(rn);
	rf_tensor_destroy(mean);
	rf_tensor_destroy(std);
	if (s != RF_OK) {
		rf_tensor_destroy(*embeds);
		*embeds = NULL;
	}
	return s;
}

/* Finite pixels can still overflow float32 inside the model (values of 1e30 from a hostile
** file): the embeddings [b, D] are read back and a NaN or an infinity is an error naming the
** image (`first` is the batch index of row 0), not a result. */
static enum rf_status check_finite_embeds(const rf_tensor *embeds, int64_t first)
{
	size_t n = (size_t)rf_tensor_numel(embeds), at;
	float *v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		return rf_error(RF_ERR_OOM_HOST, "checking the image embeddings");
	enum rf_status s = rf_tensor_download(embeds, v, n * sizeof *v);
	if (s == RF_OK && rf_find_nonfinite(RF_F32, v, n, &at))
		s = rf_error(RF_ERR_INVALID, "pixels: the embedding of image %lld of the batch is %s: its "
			     "pixel values overflow float32 inside the model (normalised pixels are a "
			     "few units at most)", (long long)(first + (int64_t)(at / (size_t)embeds->shape.dim[1]) + 1),
			     isnan(v[at]) ? "NaN" : "infinite");
	free(v);
	return s;
}

static enum rf_status run_vision(rf_clip *m, const rf_tensor *pixels, const struct rf_vision_hooks *hooks,
				 int64_t first, rf_tensor **embeds)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t b = pixels->shape.dim[0];
	struct rf_shape sz = rf_shape_of(3, b, (int64_t)c->tokens, (int64_t)c->vision.width);
	rf_tensor *z = NULL;
	struct rf_block_scratch scratch = { 0 };
	enum rf_status s;
	if ((s = rf_tensor_create(m->ctx, RF_F32, &sz, &z)) != RF_OK ||
	    (s = embed_tokens(m, pixels, z)) != RF_OK ||
	    (s = rf_op_layernorm(m->ctx, z, m->ln_pre.w, m->ln_pre.b, c->vision.ln_eps, z, NULL, NULL)) != RF_OK)
		goto out;
	if (hooks && hooks->on_embed && (s = hooks->on_embed(hooks->user, m, z)) != RF_OK)
		goto out;
	if ((s = rf_block_scratch_init(m->ctx, &c->vision, (int)b, c->tokens, hooks, &scratch)) != RF_OK)
		goto out;
	for (int l = 0; l < c->vision.layers; l++) {
		struct rf_block_run run = { m, &c->vision, &m->vision.blocks[l], l, (int)b, c->tokens, false, hooks };
		if ((s = rf_block_forward(&run, &scratch, z)) != RF_OK)
			goto out;
	}
	s = head(m, z, hooks, embeds);
	if (s == RF_OK && (s = check_finite_embeds(*embeds, first)) != RF_OK) {
		rf_tensor_destroy(*embeds);
		*embeds = NULL;
	}
out:
	rf_block_scratch_fini(&scratch);
	rf_tensor_destroy(z);
	return s;
}

enum rf_status rf_clip_forward_vision(rf_clip *m, const rf_tensor *pixels,
				      const struct rf_vision_hooks *hooks, rf_tensor **embeds)
{
	*embeds = NULL;
	enum rf_status s = rf_clip_check_pixels(m, pixels);
	if (s != RF_OK)
		return s;
	if (rf_tensor_on_device(pixels))
		return run_vision(m, pixels, hooks, 0, embeds);
	rf_tensor *dev;
	if ((s = rf_tensor_to_device(m->ctx, pixels, &dev)) != RF_OK)
		return s;
	s = run_vision(m, dev, hooks, 0, embeds);
	rf_tensor_destroy(dev);
	return s;
}

enum rf_status rf_clip_encode_images(rf_clip *m, const rf_tensor *pixels, rf_tensor **embeds)
{
	*embeds = NULL;
	enum rf_status s = rf_clip_check_pixels(m, pixels);
	if (s != RF_OK)
		return s;
	if ((s = rf_clip_check_room(m, "encode", rf_clip_image_bytes(m))) != RF_OK)
		return s;
	int64_t total = pixels->shape.dim[0], chunk = rf_clip_max_batch(m);
	if (total <= chunk)
		return rf_clip_forward_vision(m, pixels, NULL, embeds);
	struct rf_shape se = rf_shape_of(2, total, (int64_t)m->cfg.embed_dim);
	if ((s = rf_tensor_create(m->ctx, RF_F32, &se, embeds)) != RF_OK)
		return s;
	uint64_t row = (uint64_t)m->cfg.embed_dim * 4;
	for (int64_t first = 0; first < total && s == RF_OK; first += chunk) {
		int64_t count = RF_MIN(chunk, total - first);
		rf_tensor *part = NULL, *e = NULL;
		s = rf_tensor_rows(m->ctx, pixels, first, count, &part);
		if (s == RF_OK)
			s = run_vision(m, part, NULL, first, &e);
		if (s == RF_OK)
			s = rf_mem_copy(m->ctx, &e->mem, 0, &(*embeds)->mem, (uint64_t)first * row,
					(uint64_t)count * row);
		rf_tensor_destroy(part);
		rf_tensor_destroy(e);
	}
	if (s != RF_OK) {
		rf_tensor_destroy(*embeds);
		*embeds = NULL;
	}
	return s;
}

/* }===== */
