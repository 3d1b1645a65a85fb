/*
** decompose_outputs.c: the decomposition's outputs: which slots each one is summed into
** and with which shares of ln_post's constants (planned once per decomposer), the slots
** of a run, and stacking the finished slots into the shapes of decompose.h.
** Compute layer (L5).
*/
#include "decompose_internal.h"
#include "context.h"
#include "status.h"
#include "tensor_ops.h"

#include <stdlib.h>
#include <string.h>

/* {===== plans */

int rf_decomp_slot_of_layer(const rf_decomposer *d, int layer)
{
	return d->reduce_layers ? 0 : layer;
}

static enum rf_status plan_init(const rf_decomposer *d, struct rf_slot_plan *p, int nslots, int64_t rows,
				bool bias)
{
	p->nslots = nslots;
	p->rows = rows;
	p->has_bias = bias;
	p->w = calloc((size_t)nslots ? (size_t)nslots : 1, sizeof *p->w);
	p->bias = calloc((size_t)(nslots ? nslots : 1) * (size_t)d->c, sizeof *p->bias);
	if (!p->w || !p->bias)
		return rf_error(RF_ERR_OOM_HOST, "decomposition slots");
	return RF_OK;
}

/* Records the constant shares of attention summands (l, m, h) for a slot that sums
** `tokens` source tokens and `heads` heads of layer l: each summand carries
** out_proj.bias / (N H) and weight 1 / (K N H). */
static void add_attention_share(const rf_decomposer *d, struct rf_slot_plan *p, int layer, int tokens,
				int heads)
{
	int slot = rf_decomp_slot_of_layer(d, layer);
	double frac = (double)tokens * heads / ((double)d->n * d->h);
	for (int c = 0; c < d->c; c++)
		p->bias[(size_t)slot * d->c + c] += frac * d->fold->cb[(size_t)layer * d->c + c];
	p->w[slot] += frac / d->k;
}

static enum rf_status plan_slots(rf_decomposer *d)
{
	int layer_slots = d->reduce_layers ? 1 : d->l;
	int heads = d->reduce_heads ? 1 : d->h, heads_summed = d->reduce_heads ? d->h : 1;
	struct rf_slot_plan *sp = &d->plan[RF_OUT_SPATIAL], *hp = &d->plan[RF_OUT_HEADS];
	struct rf_slot_plan *cp = &d->plan[RF_OUT_CLS], *mp = &d->plan[RF_OUT_MLPS];
	enum rf_status s;
	if ((s = plan_init(d, sp, d->opt.spatial ? layer_slots : 0, d->deferred ? 0 : heads, true)) != RF_OK ||
	    (s = plan_init(d, hp, layer_slots, heads, true)) != RF_OK ||
	    (s = plan_init(d, cp, layer_slots, 1, true)) != RF_OK ||
	    (s = plan_init(d, mp, d->reduce_layers ? 1 : d->l + 1, 1, false)) != RF_OK)
		return s;
	for (int l = 0; l < d->l; l++) {
		if (sp->nslots)
			add_attention_share(d, sp, l, d->reduce_tokens ? d->n : 1, heads_summed);
		add_attention_share(d, hp, l, d->n, heads_summed);
		add_attention_share(d, cp, l, 1, d->h);
	}
	for (int j = 0; j <= d->l; j++)
		mp->w[d->reduce_layers ? 0 : j] += 1.0 / d->k;
	return RF_OK;
}

/* The constants every finishing pass reads: bpP, g1P, then each slot's bias. */
static enum rf_status upload_consts(rf_decomposer *d)
{
	static const enum rf_decomp_output with_bias[] = { RF_OUT_SPATIAL, RF_OUT_HEADS, RF_OUT_CLS };
	int rows = 2;
	for (size_t i = 0; i < RF_ARRAY_LEN(with_bias); i++)
		rows += d->plan[with_bias[i]].nslots;
	float *host = malloc((size_t)rows * (size_t)d->c * sizeof *host);
	if (!host)
		return rf_error(RF_ERR_OOM_HOST, "decomposition constants");
	for (int c = 0; c < d->c; c++) {
		host[c] = (float)d->fold->bpp[c];
		host[d->c + c] = (float)d->fold->g1p[c];
	}
	int row = 2;
	for (size_t i = 0; i < RF_ARRAY_LEN(with_bias); i++) {
		struct rf_slot_plan *p = &d->plan[with_bias[i]];
		p->first_bias = (uint32_t)row;
		for (int j = 0; j < p->nslots; j++, row++)
			for (int c = 0; c < d->c; c++)
				host[(size_t)row * d->c + c] = (float)p->bias[(size_t)j * d->c + c];
	}
	struct rf_shape sc = rf_shape_of(2, (int64_t)rows, (int64_t)d->c);
	enum rf_status s = rf_tensor_create(d->m->ctx, RF_F32, &sc, &d->consts);
	if (s == RF_OK)
		s = rf_tensor_upload(d->consts, host, (uint64_t)rows * (uint64_t)d->c * sizeof *host);
	free(host);
	return s;
}

enum rf_status rf_decomp_plan(rf_decomposer *d)
{
	enum rf_status s = plan_slots(d);
	return s == RF_OK ? upload_consts(d) : s;
}

void rf_decomp_plan_fini(rf_decomposer *d)
{
	for (int i = 0; i < RF_OUT_COUNT; i++) {
		free(d->plan[i].w);
		free(d->plan[i].bias);
		memset(&d->plan[i], 0, sizeof d->plan[i]);
	}
	rf_tensor_destroy(d->consts);
	d->consts = NULL;
}

/* }===== */

/* {===== a run's slots */

enum rf_status rf_decomp_slots_create(struct rf_decomp_run *r)
{
	const rf_decomposer *d = r->d;
	enum rf_status s = RF_OK;
	for (int i = 0; i < RF_OUT_COUNT && s == RF_OK; i++) {
		const struct rf_slot_plan *p = &d->plan[i];
		r->slots[i] = calloc((size_t)(p->nslots ? p->nslots : 1), sizeof *r->slots[i]);
		if (!r->slots[i])
			return rf_error(RF_ERR_OOM_HOST, "decomposition slots");
		struct rf_shape shape = rf_shape_of(3, (int64_t)r->b, p->rows, (int64_t)d->c);
		for (int j = 0; j < p->nslots && p->rows > 0 && s == RF_OK; j++)
			s = rf_tensor_zeros(d->m->ctx, RF_F32, &shape, &r->slots[i][j]);
	}
	if (s == RF_OK && d->deferred && !(r->vscaled = calloc((size_t)d->l, sizeof *r->vscaled)))
		s = rf_error(RF_ERR_OOM_HOST, "decomposition slots");
	if (s == RF_OK && d->deferred) {
		struct rf_shape sf = rf_shape_of(5, (int64_t)r->b, (int64_t)d->plan[RF_OUT_SPATIAL].nslots,
						 (int64_t)d->n, (int64_t)(d->reduce_heads ? 1 : d->h),
						 (int64_t)d->c);
		s = rf_tensor_create(d->m->ctx, RF_F32, &sf, &r->spatial_all);
	}
	return s;
}

void rf_decomp_run_fini(struct rf_decomp_run *r)
{
	for (int i = 0; i < RF_OUT_COUNT; i++) {
		for (int j = 0; j < r->d->plan[i].nslots && r->slots[i]; j++)
			rf_tensor_destroy(r->slots[i][j]);
		free(r->slots[i]);
		r->slots[i] = NULL;
	}
	for (int l = 0; l < r->d->l && r->vscaled; l++)
		rf_tensor_destroy(r->vscaled[l]);
	free(r->vscaled);
	r->vscaled = NULL;
	rf_tensor_destroy(r->spatial_all);
	rf_tensor_destroy(r->mean);
	rf_tensor_destroy(r->std);
	rf_tensor_destroy(r->embeds);
	rf_tensor_destroy(r->norm);
	r->spatial_all = r->mean = r->std = r->embeds = r->norm = NULL;
}

/* }===== */

/* {===== assembling the outputs */

/* Stacks slots [B, rows, C] along a new axis 1 -> [B, nslots, rows, C] reshaped to
** `shape`; on the device when it fits one binding, else on the host. */
static enum rf_status stack(struct rf_decomp_run *r, enum rf_decomp_output which,
			    const struct rf_shape *shape, rf_tensor **out)
{
	rf_ctx *ctx = r->d->m->ctx;
	rf_tensor **slots = r->slots[which];
	int nslots = r->d->plan[which].nslots;
	if (nslots == 1) {
		*out = slots[0];
		slots[0] = NULL;
		return rf_tensor_reshape(*out, shape);
	}
	int64_t per = rf_tensor_numel(slots[0]) / r->b;
	uint64_t bytes = (uint64_t)rf_shape_numel(shape) * 4;
	enum rf_status s;
	if (bytes <= rf_ctx_caps(ctx)->max_storage_range) {
		if ((s = rf_tensor_create(ctx, RF_F32, shape, out)) != RF_OK)
			return s;
		for (int i = 0; i < nslots && s == RF_OK; i++) {
			struct rf_view src = { 2, { r->b, per }, 0, { per, 1 } };
			struct rf_view dst = { 2, { r->b, per }, (int64_t)i * per, { per * nslots, 1 } };
			s = rf_op_copy(ctx, slots[i], &src, *out, &dst);
		}
		return s;
	}
	if ((s = rf_tensor_create_host(RF_F32, shape, out)) != RF_OK)
		return s;
	float *tmp = malloc((size_t)(per * r->b) * sizeof *tmp);
	if (!tmp)
		return rf_error(RF_ERR_OOM_HOST, "assembling attn_spatial");
	for (int i = 0; i < nslots && s == RF_OK; i++) {
		s = rf_tensor_download(slots[i], tmp, (uint64_t)(per * r->b) * sizeof *tmp);
		for (int64_t b = 0; b < r->b && s == RF_OK; b++)
			memcpy((float *)(*out)->host + (b * nslots + i) * per, tmp + b * per,
			       (size_t)per * sizeof *tmp);
	}
	free(tmp);
	return s;
}

static struct rf_shape output_shape(const struct rf_decomp_run *r, bool layers, bool tokens, bool heads)
{
	const rf_decomposer *d = r->d;
	struct rf_shape s = { 0 };
	s.dim[s.ndim++] = r->b;
	if (layers)
		s.dim[s.ndim++] = d->l;
	if (tokens)
		s.dim[s.ndim++] = d->n;
	if (heads)
		s.dim[s.ndim++] = d->h;
	s.dim[s.ndim++] = d->c;
	return s;
}

enum rf_status rf_decomp_assemble(struct rf_decomp_run *r, struct rf_decomposition *out)
{
	const rf_decomposer *d = r->d;
	bool layers = !d->reduce_layers, heads = !d->reduce_heads;
	enum rf_status s = RF_OK;
	struct rf_shape shape;
	if (d->opt.spatial) {
		shape = output_shape(r, layers, !d->reduce_tokens, heads);
		if (d->deferred) {
			out->attn_spatial = r->spatial_all;
			r->spatial_all = NULL;
			s = rf_tensor_reshape(out->attn_spatial, &shape);
		} else {
			s = stack(r, RF_OUT_SPATIAL, &shape, &out->attn_spatial);
		}
	}
	if (s == RF_OK) {
		shape = output_shape(r, layers, false, heads);
		s = stack(r, RF_OUT_HEADS, &shape, &out->attn_heads);
	}
	if (s == RF_OK) {
		shape = output_shape(r, layers, false, false);
		s = stack(r, RF_OUT_CLS, &shape, &out->cls_attn);
	}
	if (s == RF_OK) {
		shape = output_shape(r, false, false, false);
		if (layers) {
			shape.ndim = 3;
			shape.dim[2] = d->c;
			shape.dim[1] = d->l + 1;
		}
		s = stack(r, RF_OUT_MLPS, &shape, &out->mlps);
	}
	out->ln_post_mean = r->mean;
	out->ln_post_std = r->std;
	out->image_embeds = r->embeds;
	r->mean = r->std = r->embeds = NULL;
	return s;
}

/* }===== */
