/*
** decompose.c: the decomposer's lifetime: the fold and the output plans made once at
** creation, scratch kept from batch to batch, and each run as one forward pass observed
** by the hooks of decompose_hooks.c. Compute layer (L5).
*/
#include "decompose_internal.h"
#include "context.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

/* {===== scratch */

static void scratch_fini(rf_decomposer *d)
{
	struct rf_decomp_scratch *sc = &d->scratch;
	rf_tensor_destroy(sc->t0);
	rf_tensor_destroy(sc->hidden_cls);
	rf_tensor_destroy(sc->mlp_cls);
	memset(sc, 0, sizeof *sc);
}

/* Scratch for batches of `batch` images: kept while the batch size stays the same. */
static enum rf_status scratch_for(rf_decomposer *d, int batch)
{
	struct rf_decomp_scratch *sc = &d->scratch;
	if (sc->batch == batch)
		return RF_OK;
	scratch_fini(d);
	rf_ctx *ctx = d->m->ctx;
	int64_t b = batch;
	struct rf_shape st0 = rf_shape_of(3, b, (int64_t)d->h, (int64_t)d->c);
	struct rf_shape shid = rf_shape_of(2, b, (int64_t)d->m->cfg.vision.mlp_width);
	struct rf_shape smlp = rf_shape_of(2, b, (int64_t)d->w);
	enum rf_status s;
	if ((s = rf_tensor_create(ctx, RF_F32, &st0, &sc->t0)) != RF_OK ||
	    (s = rf_tensor_create(ctx, RF_F32, &shid, &sc->hidden_cls)) != RF_OK ||
	    (s = rf_tensor_create(ctx, RF_F32, &smlp, &sc->mlp_cls)) != RF_OK) {
		scratch_fini(d);
		return s;
	}
	sc->batch = batch;
	d->stats.scratch_builds++;
	return RF_OK;
}

/* }===== */

/* Per image: the spatial output with the values kept for it (every layer's value rows
** scaled by the CLS attention, folded at the end), and the scratch of every token's head
** products (measured on tiny-gelu: 109 KB per image against 116 KB from this and
** rf_clip_image_bytes). `dim` is C, the width of the outputs. */
static void image_parts(const rf_clip *m, int64_t dim, bool spatial_out, uint32_t reduce,
			uint64_t *scratch, uint64_t *spatial)
{
	const struct rf_clip_config *c = &m->cfg;
	*scratch = (uint64_t)c->tokens * (uint64_t)c->vision.heads * (uint64_t)dim * 4;
	*spatial = 0;
	if (spatial_out) {
		*spatial = (uint64_t)dim * 4;
		if (!(reduce & RF_REDUCE_LAYERS)) *spatial *= (uint64_t)c->vision.layers;
		if (!(reduce & RF_REDUCE_TOKENS)) *spatial *= (uint64_t)c->tokens;
		if (!(reduce & RF_REDUCE_HEADS)) *spatial *= (uint64_t)c->vision.heads;
		if (!(reduce & RF_REDUCE_TOKENS))
			*spatial += (uint64_t)c->vision.layers * (uint64_t)c->tokens * (uint64_t)c->vision.heads *
				    (uint64_t)(c->vision.head_width + RF_FOLD_EXTRA) * 4;
	}
}

static int64_t output_dim(const rf_clip *m, const struct rf_decompose_options *opt)
{
	if (opt->project && opt->project->shape.ndim == 2)
		return opt->project->shape.dim[1];
	return m->cfg.embed_dim;
}

uint64_t rf_decompose_image_bytes(const rf_clip *m, const struct rf_decompose_options *opt)
{
	uint64_t scratch, spatial;
	image_parts(m, output_dim(m, opt), opt->spatial, opt->reduce, &scratch, &spatial);
	return rf_clip_image_bytes(m) + spatial + (opt->spatial ? scratch : 0);
}

/* The largest batch whose outputs, scratch and activations fit the device's binding range
** and what its budget has left beside the tensors in use (the weights, the fold). */
static int max_batch(const rf_decomposer *d)
{
	const struct rf_caps *caps = rf_ctx_caps(d->m->ctx);
	uint64_t scratch, spatial;
	image_parts(d->m, d->c, d->opt.spatial, d->opt.reduce, &scratch, &spatial);
	int batch = rf_clip_max_batch(d->m);
	if (d->opt.spatial && scratch && caps->max_storage_range / scratch < (uint64_t)batch)
		batch = (int)RF_MAX(1, caps->max_storage_range / scratch);
	uint64_t per_image = rf_clip_image_bytes(d->m) + spatial + (d->opt.spatial ? scratch : 0);
	uint64_t fit = rf_clip_free_bytes(d->m) / per_image;
	if (fit < (uint64_t)batch)
		batch = (int)RF_MAX(1, fit);
	return batch;
}

static enum rf_status check_options(const struct rf_decompose_options *opt)
{
	if (opt->reduce & ~(uint32_t)(RF_REDUCE_LAYERS | RF_REDUCE_TOKENS | RF_REDUCE_HEADS))
		return rf_error(RF_ERR_INVALID, "decompose: unknown reduce bits 0x%x (RF_REDUCE_LAYERS, "
				"RF_REDUCE_TOKENS, RF_REDUCE_HEADS)", (unsigned)opt->reduce);
	if (opt->centering != RF_CENTER_REFERENCE && opt->centering != RF_CENTER_EXACT)
		return rf_error(RF_ERR_INVALID, "decompose: unknown centering %d", (int)opt->centering);
	return RF_OK;
}

enum rf_status rf_decomposer_create(rf_clip *m, const struct rf_decompose_options *opt,
				    rf_decomposer **out)
{
	*out = NULL;
	struct rf_decompose_options none = { 0 };
	if (!opt)
		opt = &none;
	enum rf_status s = check_options(opt);
	if (s != RF_OK)
		return s;
	rf_decomposer *d = calloc(1, sizeof *d);
	if (!d)
		return rf_error(RF_ERR_OOM_HOST, "allocating a decomposer");
	const struct rf_clip_config *c = &m->cfg;
	d->m = m;
	d->opt = *opt;
	d->opt.project = NULL;
	d->l = c->vision.layers;
	d->n = c->tokens;
	d->h = c->vision.heads;
	d->dh = c->vision.head_width;
	d->w = c->vision.width;
	d->k = 2 * c->vision.layers + 1;
	d->reduce_layers = opt->reduce & RF_REDUCE_LAYERS;
	d->reduce_tokens = opt->reduce & RF_REDUCE_TOKENS;
	d->reduce_heads = opt->reduce & RF_REDUCE_HEADS;
	d->deferred = opt->spatial && !d->reduce_tokens;
	s = rf_fold_build(m, opt->project, opt->centering, &d->fold);
	if (s == RF_OK) {
		d->stats.fold_builds++;
		d->c = d->fold->dim;
		s = rf_decomp_plan(d);
	}
	if (s != RF_OK) {
		rf_decomposer_destroy(d);
		return s;
	}
	*out = d;
	return RF_OK;
}

void rf_decomposer_destroy(rf_decomposer *d)
{
	if (!d)
		return;
	/* Only what the decomposer made: the model may be gone already. */
	scratch_fini(d);
	rf_decomp_plan_fini(d);
	rf_fold_destroy(d->fold);
	free(d);
}

int rf_decomposer_max_batch(const rf_decomposer *d)
{
	/* Computed at each call: it follows what the budget has left. */
	return max_batch(d);
}

void rf_decomposer_get_stats(const rf_decomposer *d, struct rf_decomposer_stats *out)
{
	*out = d->stats;
}

static enum rf_status run(rf_decomposer *d, const rf_tensor *pixels, struct rf_decomposition *out)
{
	struct rf_decomp_run r = { .d = d, .b = (int)pixels->shape.dim[0] };
	enum rf_status s;
	if ((s = scratch_for(d, r.b)) != RF_OK || (s = rf_decomp_slots_create(&r)) != RF_OK)
		goto out;
	struct rf_vision_hooks hooks = rf_decomp_hooks(&r);
	rf_tensor *embeds = NULL;
	if ((s = rf_clip_forward_vision(d->m, pixels, &hooks, &embeds)) != RF_OK)
		goto out;
	rf_tensor_destroy(embeds);
	s = rf_decomp_assemble(&r, out);
out:
	rf_decomp_run_fini(&r);
	return s;
}

enum rf_status rf_decomposer_run(rf_decomposer *d, const rf_tensor *pixels, struct rf_decomposition *out)
{
	memset(out, 0, sizeof *out);
	/* The pixels' shape is checked before any slot is sized from it. */
	enum rf_status s = rf_clip_check_pixels(d->m, pixels);
	if (s == RF_OK)
		s = run(d, pixels, out);
	if (s != RF_OK) {
		rf_decomposition_fini(out);
		return s;
	}
	d->stats.runs++;
	return RF_OK;
}

enum rf_status rf_clip_decompose(rf_clip *m, const rf_tensor *pixels,
				 const struct rf_decompose_options *opt, struct rf_decomposition *out)
{
	memset(out, 0, sizeof *out);
	rf_decomposer *d = NULL;
	enum rf_status s = rf_decomposer_create(m, opt, &d);
	if (s == RF_OK)
		s = rf_decomposer_run(d, pixels, out);
	rf_decomposer_destroy(d);
	return s;
}

void rf_decomposition_fini(struct rf_decomposition *d)
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
