/*
** intervene.c: edits and taps as hooks on the vision forward pass (see intervene.h).
** Every edit is one strided copy into the component's rows and columns, from a zero
** scalar, a broadcast mean or a per-image replacement. Compute layer (L5).
*/
#include "intervene.h"
#include "clip_hooks.h"
#include "clip_internal.h"
#include "context.h"
#include "status.h"
#include "tensor_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tap_names[] = {
	[RF_TAP_EMBED] = "embed", [RF_TAP_RESID_PRE] = "resid_pre", [RF_TAP_RESID_POST] = "resid_post",
	[RF_TAP_Q] = "q", [RF_TAP_K] = "k", [RF_TAP_V] = "v", [RF_TAP_PROBS] = "probs",
	[RF_TAP_HEADS] = "heads", [RF_TAP_ATTN_OUT] = "attn_out", [RF_TAP_MLP_HIDDEN] = "mlp_hidden",
	[RF_TAP_MLP_OUT] = "mlp_out",
};

bool rf_tap_site_parse(const char *name, enum rf_tap_site *out)
{
	for (size_t i = 0; i < RF_ARRAY_LEN(tap_names); i++)
		if (!strcmp(name, tap_names[i])) {
			*out = (enum rf_tap_site)i;
			return true;
		}
	return false;
}

const char *rf_tap_site_name(enum rf_tap_site site)
{
	return (size_t)site < RF_ARRAY_LEN(tap_names) ? tap_names[site] : "?";
}

struct run {
	rf_clip *m;
	const struct rf_edit *edits;
	int nedits;
	struct rf_tap *taps;
	int ntaps;
	rf_tensor **values;   /* each edit's value on the device (NULL for ZERO) */
	rf_tensor *zero;      /* one f32 zero, broadcast by ZERO edits */
	int b, n, w, h, dh;
};

/* {===== validation */

static const char *const site_phrases[] = {
	[RF_SITE_HEAD] = "a head", [RF_SITE_ATTN] = "the attention branch",
	[RF_SITE_MLP] = "the MLP branch", [RF_SITE_TOKEN] = "a token",
};
static const char *const kind_names[] = {
	[RF_EDIT_ZERO] = "zero", [RF_EDIT_MEAN] = "mean", [RF_EDIT_REPLACE] = "replace",
};

/* The value shapes a mean or replace edit of `e` accepts (see intervene.h); returns how
** many (the first is the full one, the second a broadcast row). */
static int allowed_shapes(const struct run *r, const struct rf_edit *e, struct rf_shape out[2])
{
	int64_t b = r->b, n = r->n, width = e->site == RF_SITE_HEAD ? r->dh : r->w;
	if (e->site == RF_SITE_TOKEN) {
		out[0] = e->kind == RF_EDIT_MEAN ? rf_shape_of(1, width) : rf_shape_of(2, b, width);
		return 1;
	}
	if (e->kind == RF_EDIT_REPLACE) {
		out[0] = rf_shape_of(3, b, n, width);
		return 1;
	}
	out[0] = rf_shape_of(2, n, width);
	out[1] = rf_shape_of(1, width);
	return 2;
}

/* A NaN or an infinity in an edit's value would reach the embedding without a word:
** refused, naming the edit and the element (read back from the device). */
static enum rf_status check_finite_value(int i, const struct rf_edit *e)
{
	size_t n = (size_t)rf_tensor_numel(e->value), at;
	const float *v = e->value->host;
	float *down = NULL;
	if (rf_tensor_on_device(e->value)) {
		if (!(down = malloc((n ? n : 1) * sizeof *down)))
			return rf_error(RF_ERR_OOM_HOST, "edit %d: checking the value", i + 1);
		enum rf_status s = rf_tensor_download(e->value, down, n * sizeof *down);
		if (s != RF_OK) {
			free(down);
			return s;
		}
		v = down;
	}
	bool bad = rf_find_nonfinite(RF_F32, v, n, &at);
	float value = bad ? v[at] : 0;
	free(down);
	if (!bad)
		return RF_OK;
	return rf_error(RF_ERR_INVALID, "edit %d: the value of a %s edit holds %s at element %zu "
			"(counting from 1, row-major): it must be finite", i + 1, kind_names[e->kind],
			isnan(value) ? "NaN" : "infinity", at + 1);
}

/* A mean or replace value must be f32 and have one of the allowed shapes; the message
** names the edit, what it takes and what came, e.g. "edit 2: a mean edit of a head takes a
** value of shape [17, 16] or [16], not [4]". */
static enum rf_status check_value(const struct run *r, int i, const struct rf_edit *e)
{
	if (e->kind == RF_EDIT_ZERO)
		return RF_OK;
	if (!e->value)
		return rf_error(RF_ERR_INVALID, "edit %d: a %s edit needs a value tensor", i + 1,
				kind_names[e->kind]);
	if (e->value->dtype != RF_F32)
		return rf_error(RF_ERR_INVALID, "edit %d: the value of a %s edit must be f32, not %s",
				i + 1, kind_names[e->kind], rf_dtype_name(e->value->dtype));
	struct rf_shape allowed[2];
	int count = allowed_shapes(r, e, allowed);
	for (int k = 0; k < count; k++)
		if (rf_shape_equal(&e->value->shape, &allowed[k]))
			return check_finite_value(i, e);
	char want0[96], want1[96], got[96];
	rf_shape_str(&allowed[0], want0, sizeof want0);
	rf_shape_str(&allowed[count - 1], want1, sizeof want1);
	return rf_error(RF_ERR_INVALID, "edit %d: a %s edit of %s takes a value of shape %s%s%s, not %s",
			i + 1, kind_names[e->kind], site_phrases[e->site], want0, count > 1 ? " or " : "",
			count > 1 ? want1 : "", rf_shape_str(&e->value->shape, got, sizeof got));
}

/* "<what> <v> is out of range (0..<count - 1>)" unless 0 <= v < count. */
static enum rf_status check_index(const char *owner, int i, const char *what, int v, int count)
{
	if (v >= 0 && v < count)
		return RF_OK;
	return rf_error(RF_ERR_INVALID, "%s %d: %s %d is out of range (0..%d)", owner, i + 1, what, v,
			count - 1);
}

static enum rf_status check_edit(const struct run *r, int i, const struct rf_edit *e)
{
	int layers = r->m->cfg.vision.layers;
	enum rf_status s;
	if ((unsigned)e->site > RF_SITE_TOKEN)
		return rf_error(RF_ERR_INVALID, "edit %d: unknown site %d", i + 1, (int)e->site);
	if ((unsigned)e->kind > RF_EDIT_REPLACE)
		return rf_error(RF_ERR_INVALID, "edit %d: unknown kind %d", i + 1, (int)e->kind);
	if ((s = check_index("edit", i, "layer", e->layer, layers)) != RF_OK)
		return s;
	if (e->site == RF_SITE_HEAD && (s = check_index("edit", i, "head", e->index, r->h)) != RF_OK)
		return s;
	if (e->site == RF_SITE_TOKEN && (s = check_index("edit", i, "token", e->index, r->n)) != RF_OK)
		return s;
	return check_value(r, i, e);
}

static enum rf_status check_request(const struct run *r)
{
	enum rf_status s;
	if (r->nedits < 0 || r->ntaps < 0 || (r->nedits && !r->edits) || (r->ntaps && !r->taps))
		return rf_error(RF_ERR_INVALID, "intervene: negative counts or missing edit/tap arrays");
	for (int i = 0; i < r->nedits; i++)
		if ((s = check_edit(r, i, &r->edits[i])) != RF_OK)
			return s;
	for (int i = 0; i < r->ntaps; i++) {
		const struct rf_tap *t = &r->taps[i];
		if ((unsigned)t->site > RF_TAP_MLP_OUT)
			return rf_error(RF_ERR_INVALID, "tap %d: unknown site %d", i + 1, (int)t->site);
		if (t->site != RF_TAP_EMBED &&
		    (s = check_index("tap", i, "layer", t->layer, r->m->cfg.vision.layers)) != RF_OK)
			return s;
	}
	return RF_OK;
}

/* }===== */

/* {===== edits */

/* Writes edit e into `target` whose component occupies view `dst`. */
static enum rf_status apply(struct run *r, int i, rf_tensor *target, const struct rf_view *dst)
{
	const struct rf_edit *e = &r->edits[i];
	struct rf_view src = *dst;
	src.offset = 0;
	const rf_tensor *value = r->values[i];
	if (e->kind == RF_EDIT_ZERO) {
		value = r->zero;
		for (int d = 0; d < src.ndim; d++)
			src.stride[d] = 0;
	} else {
		/* Contiguous value, aligned to the view's trailing axes; missing leading axes
		** (the batch, or batch and tokens for a mean) are broadcast. */
		int vd = value->shape.ndim;
		int64_t stride = 1;
		for (int d = src.ndim - 1; d >= 0; d--) {
			int k = vd - (src.ndim - d);
			src.stride[d] = k >= 0 ? stride : 0;
			if (k >= 0)
				stride *= value->shape.dim[k];
		}
	}
	return rf_op_copy(r->m->ctx, value, &src, target, dst);
}

/* Edits of `site` at `layer` applied to their tensor. */
static enum rf_status apply_site(struct run *r, enum rf_edit_site site, int layer, rf_tensor *t)
{
	int64_t b = r->b, n = r->n, w = r->w;
	for (int i = 0; i < r->nedits; i++) {
		const struct rf_edit *e = &r->edits[i];
		if (e->site != site || e->layer != layer)
			continue;
		struct rf_view v;
		if (site == RF_SITE_HEAD)
			v = (struct rf_view){ 3, { b, n, r->dh }, (int64_t)e->index * r->dh, { n * w, w, 1 } };
		else if (site == RF_SITE_TOKEN)   /* value rows of qkv: columns [2W, 3W) */
			v = (struct rf_view){ 2, { b, w }, (int64_t)e->index * 3 * w + 2 * w, { n * 3 * w, 1 } };
		else
			v = (struct rf_view){ 3, { b, n, w }, 0, { n * w, w, 1 } };
		enum rf_status s = apply(r, i, t, &v);
		if (s != RF_OK)
			return s;
	}
	return RF_OK;
}

/* }===== */

/* {===== taps */

static enum rf_status record(struct run *r, enum rf_tap_site site, int layer, const rf_tensor *t,
			     const struct rf_view *src, const struct rf_shape *shape)
{
	for (int i = 0; i < r->ntaps; i++) {
		struct rf_tap *tap = &r->taps[i];
		if (tap->site != site || (site != RF_TAP_EMBED && tap->layer != layer))
			continue;
		rf_tensor_destroy(tap->out);
		tap->out = NULL;
		enum rf_status s = rf_tensor_create(r->m->ctx, RF_F32, shape, &tap->out);
		if (s == RF_OK) {
			struct rf_view whole = src ? *src : rf_view_contiguous(t);
			struct rf_view dst = rf_view_contiguous(tap->out);
			dst.ndim = whole.ndim;
			for (int d = 0; d < whole.ndim; d++)
				dst.shape[d] = whole.shape[d];
			int64_t stride = 1;
			for (int d = whole.ndim - 1; d >= 0; d--) {
				dst.stride[d] = stride;
				stride *= whole.shape[d];
			}
			s = rf_op_copy(r->m->ctx, t, &whole, tap->out, &dst);
		}
		if (s != RF_OK)
			return s;
	}
	return RF_OK;
}

static enum rf_status record_whole(struct run *r, enum rf_tap_site site, int layer, const rf_tensor *t)
{
	return record(r, site, layer, t, NULL, &t->shape);
}

/* }===== */

/* {===== hooks */

static enum rf_status on_embed(void *user, struct rf_clip *m, rf_tensor *z0)
{
	return record_whole(user, RF_TAP_EMBED, 0, z0);
}

static enum rf_status on_resid_pre(void *user, struct rf_clip *m, int layer, rf_tensor *z)
{
	return record_whole(user, RF_TAP_RESID_PRE, layer, z);
}

static enum rf_status on_resid_post(void *user, struct rf_clip *m, int layer, rf_tensor *z)
{
	return record_whole(user, RF_TAP_RESID_POST, layer, z);
}

static enum rf_status on_qkv(void *user, struct rf_clip *m, int layer, rf_tensor *qkv)
{
	struct run *r = user;
	enum rf_status s = apply_site(r, RF_SITE_TOKEN, layer, qkv);
	int64_t b = r->b, n = r->n, w = r->w;
	struct rf_shape shape = rf_shape_of(3, b, n, w);
	static const enum rf_tap_site sites[] = { RF_TAP_Q, RF_TAP_K, RF_TAP_V };
	for (int k = 0; k < 3 && s == RF_OK; k++) {
		struct rf_view v = { 3, { b, n, w }, k * w, { n * 3 * w, 3 * w, 1 } };
		s = record(r, sites[k], layer, qkv, &v, &shape);
	}
	return s;
}

static enum rf_status on_attention(void *user, struct rf_clip *m, int layer, rf_tensor *qkv,
				   rf_tensor *attn, const rf_tensor *cls_probs, const rf_tensor *probs)
{
	struct run *r = user;
	enum rf_status s = apply_site(r, RF_SITE_HEAD, layer, attn);
	if (s == RF_OK)
		s = record_whole(r, RF_TAP_HEADS, layer, attn);
	if (s == RF_OK && probs)
		s = record_whole(r, RF_TAP_PROBS, layer, probs);
	return s;
}

static enum rf_status on_attention_out(void *user, struct rf_clip *m, int layer, rf_tensor *out)
{
	struct run *r = user;
	enum rf_status s = apply_site(r, RF_SITE_ATTN, layer, out);
	return s == RF_OK ? record_whole(r, RF_TAP_ATTN_OUT, layer, out) : s;
}

static enum rf_status on_mlp_hidden(void *user, struct rf_clip *m, int layer, rf_tensor *hidden)
{
	return record_whole(user, RF_TAP_MLP_HIDDEN, layer, hidden);
}

static enum rf_status on_mlp_out(void *user, struct rf_clip *m, int layer, rf_tensor *out)
{
	struct run *r = user;
	enum rf_status s = apply_site(r, RF_SITE_MLP, layer, out);
	return s == RF_OK ? record_whole(r, RF_TAP_MLP_OUT, layer, out) : s;
}

/* }===== */

static bool needs_branches(const struct run *r)
{
	for (int i = 0; i < r->nedits; i++)
		if (r->edits[i].site == RF_SITE_ATTN || r->edits[i].site == RF_SITE_MLP)
			return true;
	for (int i = 0; i < r->ntaps; i++)
		if (r->taps[i].site == RF_TAP_ATTN_OUT || r->taps[i].site == RF_TAP_MLP_OUT)
			return true;
	return false;
}

static bool needs_probs(const struct run *r)
{
	for (int i = 0; i < r->ntaps; i++)
		if (r->taps[i].site == RF_TAP_PROBS)
			return true;
	return false;
}

static enum rf_status prepare_values(struct run *r)
{
	struct rf_shape one = rf_shape_of(0);
	enum rf_status s = rf_tensor_zeros(r->m->ctx, RF_F32, &one, &r->zero);
	r->values = calloc((size_t)(r->nedits ? r->nedits : 1), sizeof *r->values);
	if (!r->values)
		return rf_error(RF_ERR_OOM_HOST, "edits");
	for (int i = 0; i < r->nedits && s == RF_OK; i++)
		if (r->edits[i].kind != RF_EDIT_ZERO)
			s = rf_tensor_to_device(r->m->ctx, r->edits[i].value, &r->values[i]);
	return s;
}

enum rf_status rf_clip_intervene(rf_clip *m, const rf_tensor *pixels, const struct rf_edit *edits,
				 int nedits, struct rf_tap *taps, int ntaps, rf_tensor **embeds)
{
	*embeds = NULL;
	const struct rf_clip_config *c = &m->cfg;
	for (int i = 0; i < ntaps && taps; i++)
		taps[i].out = NULL;
	/* The pixels first: the batch size they give is part of the value shapes. */
	enum rf_status s = rf_clip_check_pixels(m, pixels);
	if (s != RF_OK)
		return s;
	struct run r = {
		.m = m, .edits = edits, .nedits = nedits, .taps = taps, .ntaps = ntaps,
		.b = (int)pixels->shape.dim[0], .n = c->tokens,
		.w = c->vision.width, .h = c->vision.heads, .dh = c->vision.head_width,
	};
	s = check_request(&r);
	if (s == RF_OK)
		s = prepare_values(&r);
	if (s == RF_OK) {
		struct rf_vision_hooks hooks = {
			.user = &r, .want_probs = needs_probs(&r), .separate_branches = needs_branches(&r),
			.on_embed = on_embed, .on_qkv = on_qkv, .on_attention = on_attention,
			.on_attention_out = on_attention_out, .on_mlp_hidden = on_mlp_hidden,
			.on_mlp_out = on_mlp_out, .on_resid_pre = on_resid_pre, .on_resid_post = on_resid_post,
		};
		s = rf_clip_forward_vision(m, pixels, &hooks, embeds);
	}
	for (int i = 0; i < nedits && r.values; i++)
		rf_tensor_destroy(r.values[i]);
	free(r.values);
	rf_tensor_destroy(r.zero);
	if (s != RF_OK)
		for (int i = 0; i < ntaps && taps; i++) {
			rf_tensor_destroy(taps[i].out);
			taps[i].out = NULL;
		}
	return s;
}
