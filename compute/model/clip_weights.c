/*
** clip_weights.c: the names of CLIP's tensors in the open_clip and Hugging Face layouts,
** and loading them onto the device with every shape checked against the config.
** Compute layer (L5).
*/
#include "clip_internal.h"
#include "context.h"
#include "status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {===== names */

struct name_pair {
	const char *logical;
	const char *open_clip;   /* %s = tower prefix, %d = layer */
	const char *hf;
};

/* Tower-level tensors. The open_clip vision prefix is "visual.", text has none; HF uses
** "vision_model." and "text_model.". */
static const struct name_pair tower_names[] = {
	{ "patch", "%sconv1.weight", "%sembeddings.patch_embedding.weight" },
	{ "class", "%sclass_embedding", "%sembeddings.class_embedding" },
	{ "pos", "%spositional_embedding", "%sembeddings.position_embedding.weight" },
	{ "tok", "%stoken_embedding.weight", "%sembeddings.token_embedding.weight" },
	{ "ln_pre.w", "%sln_pre.weight", "%spre_layrnorm.weight" },
	{ "ln_pre.b", "%sln_pre.bias", "%spre_layrnorm.bias" },
	{ "ln_post.w", "%sln_post.weight", "%spost_layernorm.weight" },
	{ "ln_post.b", "%sln_post.bias", "%spost_layernorm.bias" },
	{ "ln_final.w", "%sln_final.weight", "%sfinal_layer_norm.weight" },
	{ "ln_final.b", "%sln_final.bias", "%sfinal_layer_norm.bias" },
};

static const struct name_pair block_names[] = {
	{ "ln1.w", "%stransformer.resblocks.%d.ln_1.weight", "%sencoder.layers.%d.layer_norm1.weight" },
	{ "ln1.b", "%stransformer.resblocks.%d.ln_1.bias", "%sencoder.layers.%d.layer_norm1.bias" },
	{ "qkv.w", "%stransformer.resblocks.%d.attn.in_proj_weight", NULL },
	{ "qkv.b", "%stransformer.resblocks.%d.attn.in_proj_bias", NULL },
	{ "q.w", NULL, "%sencoder.layers.%d.self_attn.q_proj.weight" },
	{ "k.w", NULL, "%sencoder.layers.%d.self_attn.k_proj.weight" },
	{ "v.w", NULL, "%sencoder.layers.%d.self_attn.v_proj.weight" },
	{ "q.b", NULL, "%sencoder.layers.%d.self_attn.q_proj.bias" },
	{ "k.b", NULL, "%sencoder.layers.%d.self_attn.k_proj.bias" },
	{ "v.b", NULL, "%sencoder.layers.%d.self_attn.v_proj.bias" },
	{ "out.w", "%stransformer.resblocks.%d.attn.out_proj.weight", "%sencoder.layers.%d.self_attn.out_proj.weight" },
	{ "out.b", "%stransformer.resblocks.%d.attn.out_proj.bias", "%sencoder.layers.%d.self_attn.out_proj.bias" },
	{ "ln2.w", "%stransformer.resblocks.%d.ln_2.weight", "%sencoder.layers.%d.layer_norm2.weight" },
	{ "ln2.b", "%stransformer.resblocks.%d.ln_2.bias", "%sencoder.layers.%d.layer_norm2.bias" },
	{ "fc.w", "%stransformer.resblocks.%d.mlp.c_fc.weight", "%sencoder.layers.%d.mlp.fc1.weight" },
	{ "fc.b", "%stransformer.resblocks.%d.mlp.c_fc.bias", "%sencoder.layers.%d.mlp.fc1.bias" },
	{ "proj.w", "%stransformer.resblocks.%d.mlp.c_proj.weight", "%sencoder.layers.%d.mlp.fc2.weight" },
	{ "proj.b", "%stransformer.resblocks.%d.mlp.c_proj.bias", "%sencoder.layers.%d.mlp.fc2.bias" },
};

static const char *tower_prefix(const rf_clip *m, const char *tower)
{
	bool vision = !strcmp(tower, "vision");
	if (m->cfg.layout == RF_LAYOUT_OPEN_CLIP)
		return vision ? "visual." : "";
	return vision ? "vision_model." : "text_model.";
}

/* Logical names: "vision.patch", "text.ln_final.w", "vision.block.qkv.w" (with layer),
** and the projections "vision.proj" / "text.proj". */
const char *rf_clip_tensor_name(const rf_clip *m, const char *logical, int layer, char *buf,
				size_t size)
{
	bool hf = m->cfg.layout == RF_LAYOUT_HF;
	const char *dot = strchr(logical, '.');
	char tower[16];
	snprintf(tower, sizeof tower, "%.*s", dot ? (int)(dot - logical) : 0, logical);
	const char *key = dot ? dot + 1 : logical;
	const char *prefix = tower_prefix(m, tower);
	if (!strcmp(key, "proj")) {
		bool vision = !strcmp(tower, "vision");
		snprintf(buf, size, "%s", hf ? (vision ? "visual_projection.weight" : "text_projection.weight")
					      : (vision ? "visual.proj" : "text_projection"));
		return buf;
	}
	if (!strncmp(key, "block.", 6)) {
		for (size_t i = 0; i < RF_ARRAY_LEN(block_names); i++)
			if (!strcmp(block_names[i].logical, key + 6)) {
				const char *fmt = hf ? block_names[i].hf : block_names[i].open_clip;
				if (!fmt)
					return NULL;
				snprintf(buf, size, fmt, prefix, layer);
				return buf;
			}
		return NULL;
	}
	for (size_t i = 0; i < RF_ARRAY_LEN(tower_names); i++)
		if (!strcmp(tower_names[i].logical, key)) {
			snprintf(buf, size, hf ? tower_names[i].hf : tower_names[i].open_clip, prefix);
			return buf;
		}
	return NULL;
}

/* }===== */

/* {===== tensors the config does not describe */

/* Tensors a checkpoint may hold beside the weights: buffers and training-time scalars,
** which change nothing the towers compute. */
static bool harmless_extra(const char *name)
{
	static const char *const names[] = { "logit_scale", "logit_bias", "attn_mask", "input_resolution",
					     "context_length", "vocab_size" };
	for (size_t i = 0; i < RF_ARRAY_LEN(names); i++)
		if (!strcmp(name, names[i]))
			return true;
	size_t n = strlen(name);
	return n >= 12 && !strcmp(name + n - 12, "position_ids");
}

/* The tower ("vision" or "text") a tensor belongs to by its name's prefix, or NULL. */
static const char *tower_of(const rf_clip *m, const char *name)
{
	if (m->cfg.layout == RF_LAYOUT_OPEN_CLIP)
		return strncmp(name, "visual.", 7) ? "text" : "vision";
	if (!strncmp(name, "vision_model.", 13) || !strncmp(name, "visual_projection.", 18))
		return "vision";
	if (!strncmp(name, "text_model.", 11) || !strncmp(name, "text_projection.", 16))
		return "text";
	return NULL;
}

/* The layer number in a block tensor's name (the first ".<digits>."), or -1. */
static long layer_in_name(const char *name)
{
	for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
		char *end;
		if (p[1] >= '0' && p[1] <= '9') {
			long l = strtol(p + 1, &end, 10);
			if (*end == '.')
				return l;
		}
	}
	return -1;
}

/* Whether refract reads `name` as a weight of `tower` with `layers` blocks. */
static bool is_read(const rf_clip *m, const char *tower, int layers, const char *name)
{
	char logical[64], buf[256];
	long l = layer_in_name(name);
	if (l >= 0 && l < layers)
		for (size_t i = 0; i < RF_ARRAY_LEN(block_names); i++) {
			snprintf(logical, sizeof logical, "%s.block.%s", tower, block_names[i].logical);
			if (rf_clip_tensor_name(m, logical, (int)l, buf, sizeof buf) && !strcmp(buf, name))
				return true;
		}
	for (size_t i = 0; i <= RF_ARRAY_LEN(tower_names); i++) {
		snprintf(logical, sizeof logical, "%s.%s", tower,
			 i < RF_ARRAY_LEN(tower_names) ? tower_names[i].logical : "proj");
		if (rf_clip_tensor_name(m, logical, 0, buf, sizeof buf) && !strcmp(buf, name))
			return true;
	}
	return false;
}

/* A tensor of a loaded tower that refract would not read belongs to another architecture
** (layer scale's ls_1.gamma, an attention pooler, a patch LayerNorm): running without it
** would give that model's embeddings wrong without a word. */
static enum rf_status refuse_unread(const rf_clip *m)
{
	for (uint32_t i = 0; i < rf_safetensors_count(m->st); i++) {
		const char *name = rf_safetensors_entry(m->st, i)->name;
		const char *tower = tower_of(m, name);
		if (!tower || harmless_extra(name) || (!strcmp(tower, "text") && !m->has_text))
			continue;
		const struct rf_tower_config *t = !strcmp(tower, "vision") ? &m->cfg.vision : &m->cfg.text;
		if (layer_in_name(name) >= t->layers)
			return rf_error(RF_ERR_FORMAT, "%s: holds tensor '%s' of a layer beyond the %d %s layers "
					"the config gives: the config does not describe this checkpoint",
					m->cfg.weights_path, name, t->layers, tower);
		if (!is_read(m, tower, t->layers, name))
			return rf_error(RF_ERR_UNSUPPORTED, "%s: holds tensor '%s', which the %s tower of this "
					"config does not have: the checkpoint is of another architecture (layer "
					"scale, attention pooling, ...) or another config", m->cfg.weights_path,
					name, tower);
	}
	return RF_OK;
}

/* }===== */

/* {===== checked access */

static enum rf_status find_checked(const rf_clip *m, const char *name, const struct rf_shape *want,
				   const struct rf_st_entry **out)
{
	const struct rf_st_entry *e = rf_safetensors_find(m->st, name);
	char a[96], b[96];
	if (!e)
		return rf_error(RF_ERR_FORMAT, "%s: missing tensor '%s' (expected shape %s)",
				m->cfg.weights_path, name, rf_shape_str(want, a, sizeof a));
	if (!rf_shape_equal(&e->shape, want))
		return rf_error(RF_ERR_FORMAT, "%s: tensor '%s' has shape %s, but the config implies %s",
				m->cfg.weights_path, name, rf_shape_str(&e->shape, a, sizeof a),
				rf_shape_str(want, b, sizeof b));
	if (e->dtype != RF_F32 && e->dtype != RF_F16 && e->dtype != RF_BF16)
		return rf_error(RF_ERR_FORMAT, "%s: tensor '%s' is %s; weights must be F32, F16 or BF16",
				m->cfg.weights_path, name, rf_dtype_name(e->dtype));
	/* While loading (the file is mapped), every weight is checked once: a NaN or an
	** infinity would reach every output without a word. */
	size_t at;
	if (e->data && rf_find_nonfinite(e->dtype, e->data, (size_t)rf_shape_numel(want), &at)) {
		float v;
		rf_convert_to_f32(e->dtype, (const uint8_t *)e->data + at * rf_dtype_size(e->dtype), &v, 1);
		return rf_error(RF_ERR_FORMAT, "%s: tensor '%s' holds %s at element %zu (of %lld): weights "
				"must be finite", m->cfg.weights_path, name, isnan(v) ? "NaN" : "infinity", at,
				(long long)rf_shape_numel(want));
	}
	*out = e;
	return RF_OK;
}

enum rf_status rf_clip_read_f32(const rf_clip *m, const char *name, const struct rf_shape *shape,
				float *out)
{
	const struct rf_st_entry *e;
	enum rf_status s = find_checked(m, name, shape, &e);
	if (s != RF_OK)
		return s;
	size_t n = (size_t)rf_shape_numel(shape);
	if (e->data) {
		rf_convert_to_f32(e->dtype, e->data, out, n);
		return RF_OK;
	}
	/* After loading: read through the file (see rf_safetensors_unmap). */
	if (e->dtype == RF_F32)
		return rf_safetensors_read_bytes(m->st, e, 0, e->nbytes, out);
	void *raw = malloc(e->nbytes ? e->nbytes : 1);
	if (!raw)
		return rf_error(RF_ERR_OOM_HOST, "reading %s", name);
	s = rf_safetensors_read_bytes(m->st, e, 0, e->nbytes, raw);
	if (s == RF_OK)
		rf_convert_to_f32(e->dtype, raw, out, n);
	free(raw);
	return s;
}

enum rf_status rf_clip_upload_f32(rf_clip *m, const char *name, const struct rf_shape *shape,
				  rf_tensor **out)
{
	*out = NULL;
	size_t n = (size_t)rf_shape_numel(shape);
	float *host = malloc((n ? n : 1) * sizeof *host);
	if (!host)
		return rf_error(RF_ERR_OOM_HOST, "reading %s", name);
	enum rf_status s = rf_clip_read_f32(m, name, shape, host);
	if (s == RF_OK)
		s = rf_tensor_create(m->ctx, RF_F32, shape, out);
	if (s == RF_OK) {
		s = rf_tensor_upload(*out, host, n * sizeof *host);
		m->weight_bytes += n * sizeof *host;
	}
	free(host);
	if (s != RF_OK) {
		rf_tensor_destroy(*out);
		*out = NULL;
	}
	return s;
}

static enum rf_status upload_logical(rf_clip *m, const char *logical, int layer,
				     const struct rf_shape *shape, rf_tensor **out)
{
	char name[256];
	if (!rf_clip_tensor_name(m, logical, layer, name, sizeof name))
		return rf_error(RF_ERR_INVALID, "no tensor name for %s", logical);
	return rf_clip_upload_f32(m, name, shape, out);
}

static enum rf_status gemm_from_entry(rf_clip *m, const struct rf_st_entry *e, int64_t n, int64_t k,
				      bool transposed, rf_gemm_weights **out)
{
	struct rf_weight_source src = { e->data, e->dtype, n, k, transposed };
	enum rf_status s = rf_gemm_weights_create(m->ctx, &src, m->storage, out);
	if (s != RF_OK)
		return rf_error_wrap(s, "%s: uploading '%s'", m->cfg.weights_path, e->name);
	m->weight_bytes += rf_gemm_weights_bytes(*out);
	return RF_OK;
}

/* A weight [n, k] (or [k, n] stored transposed), under a logical name. */
static enum rf_status load_gemm(rf_clip *m, const char *logical, int layer, int64_t n, int64_t k,
				bool transposed, rf_gemm_weights **out)
{
	char name[256];
	if (!rf_clip_tensor_name(m, logical, layer, name, sizeof name))
		return rf_error(RF_ERR_INVALID, "no tensor name for %s", logical);
	struct rf_shape want = transposed ? rf_shape_of(2, k, n) : rf_shape_of(2, n, k);
	const struct rf_st_entry *e;
	enum rf_status s = find_checked(m, name, &want, &e);
	return s == RF_OK ? gemm_from_entry(m, e, n, k, transposed, out) : s;
}

/* }===== */

/* {===== blocks */

/* HF stores q, k and v apart: concatenate their rows (and biases) into one [3W, W]. */
static enum rf_status load_hf_qkv(rf_clip *m, const char *tower, int layer, int width,
				  struct rf_linear *qkv)
{
	const struct rf_st_entry *parts[3];
	static const char *wkeys[] = { "block.q.w", "block.k.w", "block.v.w" };
	static const char *bkeys[] = { "block.q.b", "block.k.b", "block.v.b" };
	struct rf_shape ws = rf_shape_of(2, (int64_t)width, (int64_t)width), bs = rf_shape_of(1, (int64_t)width);
	char logical[64], name[256];
	enum rf_status s = RF_OK;
	for (int i = 0; i < 3 && s == RF_OK; i++) {
		snprintf(logical, sizeof logical, "%s.%s", tower, wkeys[i]);
		rf_clip_tensor_name(m, logical, layer, name, sizeof name);
		s = find_checked(m, name, &ws, &parts[i]);
		if (s == RF_OK && parts[i]->dtype != parts[0]->dtype)
			s = rf_error(RF_ERR_FORMAT, "%s: q/k/v of layer %d have different dtypes",
				     m->cfg.weights_path, layer);
	}
	if (s != RF_OK)
		return s;
	size_t bytes = parts[0]->nbytes;
	uint8_t *joined = malloc(3 * bytes);
	float *bias = malloc(3 * (size_t)width * sizeof *bias);
	if (!joined || !bias) {
		free(joined);
		free(bias);
		return rf_error(RF_ERR_OOM_HOST, "joining q/k/v of layer %d", layer);
	}
	for (int i = 0; i < 3; i++)
		memcpy(joined + (size_t)i * bytes, parts[i]->data, bytes);
	struct rf_st_entry e = *parts[0];
	e.data = joined;
	e.name = name;
	s = gemm_from_entry(m, &e, 3 * (int64_t)width, width, false, &qkv->w);
	for (int i = 0; i < 3 && s == RF_OK; i++) {
		snprintf(logical, sizeof logical, "%s.%s", tower, bkeys[i]);
		rf_clip_tensor_name(m, logical, layer, name, sizeof name);
		s = rf_clip_read_f32(m, name, &bs, bias + (size_t)i * (size_t)width);
	}
	struct rf_shape b3 = rf_shape_of(1, 3 * (int64_t)width);
	if (s == RF_OK)
		s = rf_tensor_create(m->ctx, RF_F32, &b3, &qkv->b);
	if (s == RF_OK)
		s = rf_tensor_upload(qkv->b, bias, 3 * (size_t)width * sizeof *bias);
	free(joined);
	free(bias);
	return s;
}

static enum rf_status load_block(rf_clip *m, const char *tower, const struct rf_tower_config *t,
				 int layer, struct rf_block_weights *b)
{
	char key[64];
	int64_t w = t->width, h = t->mlp_width;
	struct rf_shape sw = rf_shape_of(1, w), s3w = rf_shape_of(1, 3 * w), sh = rf_shape_of(1, h);
	enum rf_status s;
#define LOGICAL(k) (snprintf(key, sizeof key, "%s.block.%s", tower, k), key)
	if ((s = upload_logical(m, LOGICAL("ln1.w"), layer, &sw, &b->ln1.w)) != RF_OK ||
	    (s = upload_logical(m, LOGICAL("ln1.b"), layer, &sw, &b->ln1.b)) != RF_OK ||
	    (s = upload_logical(m, LOGICAL("ln2.w"), layer, &sw, &b->ln2.w)) != RF_OK ||
	    (s = upload_logical(m, LOGICAL("ln2.b"), layer, &sw, &b->ln2.b)) != RF_OK)
		return s;
	if (m->cfg.layout == RF_LAYOUT_HF)
		s = load_hf_qkv(m, tower, layer, t->width, &b->qkv);
	else if ((s = load_gemm(m, LOGICAL("qkv.w"), layer, 3 * w, w, false, &b->qkv.w)) == RF_OK)
		s = upload_logical(m, LOGICAL("qkv.b"), layer, &s3w, &b->qkv.b);
	if (s != RF_OK ||
	    (s = load_gemm(m, LOGICAL("out.w"), layer, w, w, false, &b->out.w)) != RF_OK ||
	    (s = upload_logical(m, LOGICAL("out.b"), layer, &sw, &b->out.b)) != RF_OK ||
	    (s = load_gemm(m, LOGICAL("fc.w"), layer, h, w, false, &b->fc.w)) != RF_OK ||
	    (s = upload_logical(m, LOGICAL("fc.b"), layer, &sh, &b->fc.b)) != RF_OK ||
	    (s = load_gemm(m, LOGICAL("proj.w"), layer, w, h, false, &b->proj.w)) != RF_OK ||
	    (s = upload_logical(m, LOGICAL("proj.b"), layer, &sw, &b->proj.b)) != RF_OK)
		return s;
#undef LOGICAL
	return RF_OK;
}

/* A checkpoint with more blocks than the config names is another model: running its first
** layers only would give wrong embeddings without a word. */
static enum rf_status refuse_extra_block(const rf_clip *m, const char *tower, int layers)
{
	char logical[64], name[256];
	snprintf(logical, sizeof logical, "%s.block.ln1.w", tower);
	if (!rf_clip_tensor_name(m, logical, layers, name, sizeof name) || !rf_safetensors_find(m->st, name))
		return RF_OK;
	return rf_error(RF_ERR_FORMAT, "%s: holds tensor '%s' of a layer beyond the %d %s layers the "
			"config gives: the config does not describe this checkpoint", m->cfg.weights_path,
			name, layers, tower);
}

static enum rf_status load_tower(rf_clip *m, const char *name, const struct rf_tower_config *t,
				 struct rf_tower *out)
{
	enum rf_status s;
	out->blocks = calloc((size_t)t->layers, sizeof *out->blocks);
	if (!out->blocks)
		return rf_error(RF_ERR_OOM_HOST, "allocating %d blocks", t->layers);
	out->layers = t->layers;
	for (int l = 0; l < t->layers; l++) {
		s = load_block(m, name, t, l, &out->blocks[l]);
		if (s != RF_OK)
			return s;
	}
	return RF_OK;
}

static void free_linear(struct rf_linear *l)
{
	rf_gemm_weights_destroy(l->w);
	rf_tensor_destroy(l->b);
}

static void free_norm(struct rf_norm *n)
{
	rf_tensor_destroy(n->w);
	rf_tensor_destroy(n->b);
}

static void free_tower(struct rf_tower *t)
{
	for (int l = 0; l < t->layers && t->blocks; l++) {
		struct rf_block_weights *b = &t->blocks[l];
		free_norm(&b->ln1);
		free_norm(&b->ln2);
		free_linear(&b->qkv);
		free_linear(&b->out);
		free_linear(&b->fc);
		free_linear(&b->proj);
	}
	free(t->blocks);
	t->blocks = NULL;
	t->layers = 0;
}

/* }===== */

/* {===== towers */

static enum rf_status load_vision(rf_clip *m)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t w = c->vision.width, p = c->patch_size;
	struct rf_shape sw = rf_shape_of(1, w), spos = rf_shape_of(2, (int64_t)c->tokens, w);
	struct rf_shape sconv = rf_shape_of(4, w, (int64_t)3, p, p);
	char name[256];
	const struct rf_st_entry *e;
	enum rf_status s;
	rf_clip_tensor_name(m, "vision.patch", 0, name, sizeof name);
	if ((s = find_checked(m, name, &sconv, &e)) != RF_OK ||
	    (s = gemm_from_entry(m, e, w, 3 * p * p, false, &m->patch)) != RF_OK)
		return s;
	/* HF keeps the class embedding as [W]; both layouts agree. */
	if ((s = upload_logical(m, "vision.class", 0, &sw, &m->class_emb)) != RF_OK ||
	    (s = upload_logical(m, "vision.pos", 0, &spos, &m->vis_pos)) != RF_OK ||
	    (s = upload_logical(m, "vision.ln_pre.w", 0, &sw, &m->ln_pre.w)) != RF_OK ||
	    (s = upload_logical(m, "vision.ln_pre.b", 0, &sw, &m->ln_pre.b)) != RF_OK ||
	    (s = upload_logical(m, "vision.ln_post.w", 0, &sw, &m->ln_post.w)) != RF_OK ||
	    (s = upload_logical(m, "vision.ln_post.b", 0, &sw, &m->ln_post.b)) != RF_OK)
		return s;
	bool transposed = c->layout == RF_LAYOUT_OPEN_CLIP;   /* open_clip: x @ proj, proj [W, D] */
	if ((s = load_gemm(m, "vision.proj", 0, c->embed_dim, w, transposed, &m->vis_proj)) != RF_OK)
		return s;
	return load_tower(m, "vision", &c->vision, &m->vision);
}

static enum rf_status load_text(rf_clip *m)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t w = c->text.width;
	struct rf_shape sw = rf_shape_of(1, w), spos = rf_shape_of(2, (int64_t)c->context_length, w);
	struct rf_shape stok = rf_shape_of(2, (int64_t)c->vocab_size, w);
	char name[256];
	enum rf_status s;
	/* The token table stays in the file: rows are read and gathered on the host, so a
	** 200 MB table (ViT-H's text tower) never needs a device binding. */
	rf_clip_tensor_name(m, "text.tok", 0, name, sizeof name);
	if ((s = find_checked(m, name, &stok, &m->tok_emb)) != RF_OK ||
	    (s = upload_logical(m, "text.pos", 0, &spos, &m->text_pos)) != RF_OK ||
	    (s = upload_logical(m, "text.ln_final.w", 0, &sw, &m->ln_final.w)) != RF_OK ||
	    (s = upload_logical(m, "text.ln_final.b", 0, &sw, &m->ln_final.b)) != RF_OK)
		return s;
	bool transposed = c->layout == RF_LAYOUT_OPEN_CLIP;
	if ((s = load_gemm(m, "text.proj", 0, c->embed_dim, w, transposed, &m->text_proj)) != RF_OK)
		return s;
	return load_tower(m, "text", &c->text, &m->text);
}

/* {===== fitting the device */

/* Device bytes of one tower's blocks: matrices in `esize` bytes, vectors in f32. */
static uint64_t tower_bytes(const struct rf_tower_config *t, uint64_t esize)
{
	uint64_t w = (uint64_t)t->width, h = (uint64_t)t->mlp_width;
	uint64_t matrices = 3 * w * w + w * w + 2 * w * h;
	uint64_t vectors = 4 * w + 3 * w + w + h + w;   /* LayerNorms, qkv, out, fc, proj biases */
	return (uint64_t)t->layers * (matrices * esize + vectors * 4);
}

/* Device bytes the weights of a model take with matrices stored as `storage` (the panels'
** padding aside, so a lower bound). */
static uint64_t weights_bytes(const struct rf_clip_config *c, bool text, enum rf_dtype storage)
{
	uint64_t esize = rf_dtype_size(storage), w = (uint64_t)c->vision.width, d = (uint64_t)c->embed_dim;
	uint64_t p = (uint64_t)c->patch_size;
	uint64_t bytes = tower_bytes(&c->vision, esize) + (w * 3 * p * p + d * w) * esize +
			 ((uint64_t)c->tokens * w + 5 * w) * 4;
	if (text) {
		uint64_t wt = (uint64_t)c->text.width;
		bytes += tower_bytes(&c->text, esize) + d * wt * esize +
			 ((uint64_t)c->context_length * wt + 2 * wt) * 4;
	}
	return bytes;
}

/* Refuses, before uploading anything, weights that cannot fit the device's budget,
** saying how much they need and whether f16 storage would fit. */
static enum rf_status check_weights_fit(const rf_clip *m)
{
	const struct rf_caps *caps = rf_ctx_caps(m->ctx);
	struct rf_mem_stats st;
	rf_ctx_memory_stats(m->ctx, &st);
	uint64_t free = caps->heap_budget > st.in_use ? caps->heap_budget - st.in_use : 0;
	uint64_t need = weights_bytes(&m->cfg, m->has_text, m->storage);
	if (need <= free)
		return RF_OK;
	char advice[160] = "";
	uint64_t half = weights_bytes(&m->cfg, m->has_text, RF_F16);
	if (m->storage == RF_F32 && half <= free)
		snprintf(advice, sizeof advice, "; as f16 they take %.1f MiB: load them with dtype f16 (--dtype f16)",
			 half / 1048576.0);
	else if (m->has_text && weights_bytes(&m->cfg, false, m->storage) <= free)
		snprintf(advice, sizeof advice, "; the vision tower alone fits (vision_only)");
	return rf_error(RF_ERR_OOM_DEVICE, "%s: the weights take %.1f MiB on the device as %s, more than the "
			"%.1f MiB free of the %.1f MiB that refract uses on %s%s", m->cfg.weights_path,
			need / 1048576.0, rf_dtype_name(m->storage), free / 1048576.0,
			caps->heap_budget / 1048576.0, caps->name, advice);
}

/* }===== */

/* The learned logit scale, when the checkpoint has it (one number, any float dtype),
** replaces the config's initial value. */
static enum rf_status read_logit_scale(rf_clip *m)
{
	const struct rf_st_entry *e = rf_safetensors_find(m->st, "logit_scale");
	if (!e)
		return RF_OK;
	char a[96];
	if (rf_shape_numel(&e->shape) != 1 || (e->dtype != RF_F32 && e->dtype != RF_F16 && e->dtype != RF_BF16))
		return rf_error(RF_ERR_FORMAT, "%s: tensor 'logit_scale' is %s %s; expected one float number",
				m->cfg.weights_path, rf_dtype_name(e->dtype), rf_shape_str(&e->shape, a, sizeof a));
	float v;
	rf_convert_to_f32(e->dtype, e->data, &v, 1);
	if (!isfinite(v))
		return rf_error(RF_ERR_FORMAT, "%s: tensor 'logit_scale' is not finite", m->cfg.weights_path);
	m->cfg.logit_scale = v;
	m->cfg.has_logit_scale = true;
	return RF_OK;
}

enum rf_status rf_clip_load_weights(rf_clip *m)
{
	enum rf_status s = check_weights_fit(m);
	if (s != RF_OK)
		return s;
	if ((s = rf_safetensors_open(m->cfg.weights_path, &m->st)) != RF_OK)
		return s;
	if ((s = read_logit_scale(m)) != RF_OK)
		return s;
	/* Before anything is uploaded: the first layer past the config's by its own message. */
	if ((s = refuse_extra_block(m, "vision", m->cfg.vision.layers)) != RF_OK ||
	    (m->has_text && (s = refuse_extra_block(m, "text", m->cfg.text.layers)) != RF_OK) ||
	    (s = refuse_unread(m)) != RF_OK)
		return s;
	if ((s = load_vision(m)) != RF_OK)
		return s;
	if (m->has_text)
		s = load_text(m);
	return s;
}

void rf_clip_weights_fini(rf_clip *m)
{
	rf_gemm_weights_destroy(m->patch);
	rf_tensor_destroy(m->class_emb);
	rf_tensor_destroy(m->vis_pos);
	free_norm(&m->ln_pre);
	free_norm(&m->ln_post);
	free_tower(&m->vision);
	rf_gemm_weights_destroy(m->vis_proj);
	rf_tensor_destroy(m->text_pos);
	free_norm(&m->ln_final);
	free_tower(&m->text);
	rf_gemm_weights_destroy(m->text_proj);
	rf_safetensors_close(m->st);
	m->st = NULL;
}

/* }===== */
