/*
** hf_export.c: rewriting open_clip data in Hugging Face's layout (see hf_export.h).
** A test tool: it uses the public naming of transformers' CLIPModel, not refract's
** loader tables, so that the loader is checked against an independent mapping.
*/
#include "hf_export.h"
#include "safetensors.h"
#include "safetensors_write.h"
#include "tensor.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* {===== tokenizer files */

size_t rf_test_byte_char(unsigned b, char *out)
{
	unsigned n = 0, cp = b;
	bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
	if (!printable) {
		for (unsigned c = 0; c < b; c++)
			n += !((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174);
		cp = 256 + n;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		out[1] = 0;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	out[2] = 0;
	return 2;
}

static char *read_gz_text(const char *path)
{
	gzFile f = gzopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 23, n = 0;
	char *buf = malloc(cap + 1);
	int got;
	while ((got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)got;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	gzclose(f);
	buf[n] = 0;
	return buf;
}

/* vocab.json: the bytes in the reference's order, the same with </w>, each merge's
** concatenation, then <|startoftext|> and <|endoftext|>; merges.txt: a #version line and
** the 48894 merges. */
bool rf_test_write_hf_vocab(const char *vocab_gz, const char *vocab_path, const char *merges_path)
{
	char *text = read_gz_text(vocab_gz);
	FILE *mf = fopen(merges_path, "w");
	json_t *vocab = json_object();
	if (!text || !mf || !vocab)
		return false;
	json_int_t id = 0;
	for (int end = 0; end < 2; end++) {
		for (int pass = 0; pass < 2; pass++) {
			for (unsigned b = 0; b < 256; b++) {
				bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
				if (printable != (pass == 0))
					continue;
				char s[16];
				rf_test_byte_char(b, s);
				if (end)
					strcat(s, "</w>");
				json_object_set_new(vocab, s, json_integer(id++));
			}
		}
	}
	fputs("#version: 0.2\n", mf);
	char *line = strchr(text, '\n') + 1;
	for (int i = 0; i < 48894; i++) {
		char *nl = strchr(line, '\n'), *sp = strchr(line, ' '), cat[256];
		*nl = 0;
		fprintf(mf, "%s\n", line);
		snprintf(cat, sizeof cat, "%.*s%s", (int)(sp - line), line, sp + 1);
		json_object_set_new(vocab, cat, json_integer(id++));
		line = nl + 1;
	}
	json_object_set_new(vocab, "<|startoftext|>", json_integer(id++));
	json_object_set_new(vocab, "<|endoftext|>", json_integer(id++));
	bool ok = fclose(mf) == 0 && json_dump_file(vocab, vocab_path, JSON_ENSURE_ASCII) == 0;
	json_decref(vocab);
	free(text);
	return ok;
}

/* }===== */

/* {===== model */

struct writer {
	struct rf_st_item *items;
	rf_tensor **owned;
	uint32_t n, cap;
	char **names;
};

static void add(struct writer *w, const char *name, rf_tensor *t)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->items = realloc(w->items, w->cap * sizeof *w->items);
		w->owned = realloc(w->owned, w->cap * sizeof *w->owned);
		w->names = realloc(w->names, w->cap * sizeof *w->names);
	}
	w->names[w->n] = strdup(name);
	w->owned[w->n] = t;
	w->items[w->n] = (struct rf_st_item){ w->names[w->n], t };
	w->n++;
}

static rf_tensor *copy_entry(const struct rf_st_entry *e)
{
	rf_tensor *t = NULL;
	rf_tensor_from_host_data(e->dtype, &e->shape, e->data, &t);
	return t;
}

/* Rows [first, first+count) of a 1-d or 2-d f32 entry. */
static rf_tensor *rows(const struct rf_st_entry *e, int64_t first, int64_t count)
{
	struct rf_shape s = e->shape;
	int64_t row = s.ndim == 2 ? s.dim[1] : 1;
	s.dim[0] = count;
	rf_tensor *t = NULL;
	rf_tensor_from_host_data(RF_F32, &s, (const float *)e->data + first * row, &t);
	return t;
}

static rf_tensor *transposed(const struct rf_st_entry *e)
{
	int64_t r = e->shape.dim[0], c = e->shape.dim[1];
	struct rf_shape s = rf_shape_of(2, c, r);
	rf_tensor *t = NULL;
	rf_tensor_create_host(RF_F32, &s, &t);
	for (int64_t i = 0; i < r; i++)
		for (int64_t j = 0; j < c; j++)
			((float *)t->host)[j * r + i] = ((const float *)e->data)[i * c + j];
	return t;
}

static const struct { const char *from, *to; } renames[] = {
	{ "ln_1.weight", "layer_norm1.weight" }, { "ln_1.bias", "layer_norm1.bias" },
	{ "ln_2.weight", "layer_norm2.weight" }, { "ln_2.bias", "layer_norm2.bias" },
	{ "attn.out_proj.weight", "self_attn.out_proj.weight" }, { "attn.out_proj.bias", "self_attn.out_proj.bias" },
	{ "mlp.c_fc.weight", "mlp.fc1.weight" }, { "mlp.c_fc.bias", "mlp.fc1.bias" },
	{ "mlp.c_proj.weight", "mlp.fc2.weight" }, { "mlp.c_proj.bias", "mlp.fc2.bias" },
};

/* One block tensor "<prefix>transformer.resblocks.L.<rest>" under HF names. */
static void convert_block(struct writer *w, const struct rf_st_entry *e, const char *hf_tower,
			  int layer, const char *rest)
{
	char name[512];
	if (!strcmp(rest, "attn.in_proj_weight") || !strcmp(rest, "attn.in_proj_bias")) {
		static const char *qkv[] = { "q_proj", "k_proj", "v_proj" };
		int64_t width = e->shape.dim[0] / 3;
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s.%s", hf_tower, layer, qkv[k],
				 strstr(rest, "weight") ? "weight" : "bias");
			add(w, name, rows(e, k * width, width));
		}
		return;
	}
	for (size_t i = 0; i < sizeof renames / sizeof renames[0]; i++)
		if (!strcmp(rest, renames[i].from)) {
			snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", hf_tower, layer, renames[i].to);
			add(w, name, copy_entry(e));
			return;
		}
}

static bool convert_tensor(struct writer *w, const struct rf_st_entry *e)
{
	static const struct { const char *from, *to; } top[] = {
		{ "visual.class_embedding", "vision_model.embeddings.class_embedding" },
		{ "visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight" },
		{ "visual.positional_embedding", "vision_model.embeddings.position_embedding.weight" },
		{ "visual.ln_pre.weight", "vision_model.pre_layrnorm.weight" },
		{ "visual.ln_pre.bias", "vision_model.pre_layrnorm.bias" },
		{ "visual.ln_post.weight", "vision_model.post_layernorm.weight" },
		{ "visual.ln_post.bias", "vision_model.post_layernorm.bias" },
		{ "token_embedding.weight", "text_model.embeddings.token_embedding.weight" },
		{ "positional_embedding", "text_model.embeddings.position_embedding.weight" },
		{ "ln_final.weight", "text_model.final_layer_norm.weight" },
		{ "ln_final.bias", "text_model.final_layer_norm.bias" },
		{ "logit_scale", "logit_scale" },
	};
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		if (!strcmp(e->name, top[i].from)) {
			add(w, top[i].to, copy_entry(e));
			return true;
		}
	/* Linear layers store [out, in]: open_clip's x @ proj becomes weight = projᵀ. */
	if (!strcmp(e->name, "visual.proj")) {
		add(w, "visual_projection.weight", transposed(e));
		return true;
	}
	if (!strcmp(e->name, "text_projection")) {
		add(w, "text_projection.weight", transposed(e));
		return true;
	}
	int layer, used = 0;
	if (sscanf(e->name, "visual.transformer.resblocks.%d.%n", &layer, &used) == 1 && used)
		convert_block(w, e, "vision_model", layer, e->name + used);
	else if (sscanf(e->name, "transformer.resblocks.%d.%n", &layer, &used) == 1 && used)
		convert_block(w, e, "text_model", layer, e->name + used);
	else
		return false;
	return true;
}

/* config.json in transformers' CLIPConfig schema from open_clip's config. */
static bool write_config(const char *src_dir, const char *dst_dir)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/open_clip_config.json", src_dir);
	json_t *root = json_load_file(path, 0, NULL);
	if (!root)
		return false;
	json_t *mc = json_object_get(root, "model_cfg");
	json_t *v = json_object_get(mc, "vision_cfg"), *t = json_object_get(mc, "text_cfg");
	const char *act = json_is_true(json_object_get(mc, "quick_gelu")) ? "quick_gelu" : "gelu";
	json_int_t vw = json_integer_value(json_object_get(v, "width"));
	json_int_t tw = json_integer_value(json_object_get(t, "width"));
	json_t *cfg = json_pack("{s:s, s:[s], s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:f}, "
				"s:{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:f, s:i}}",
		"model_type", "clip", "architectures", "CLIPModel",
		"projection_dim", json_integer_value(json_object_get(mc, "embed_dim")),
		"vision_config",
		"hidden_size", vw, "intermediate_size", vw * 4,
		"num_attention_heads", vw / json_integer_value(json_object_get(v, "head_width")),
		"num_hidden_layers", json_integer_value(json_object_get(v, "layers")),
		"image_size", json_integer_value(json_object_get(v, "image_size")),
		"patch_size", json_integer_value(json_object_get(v, "patch_size")),
		"hidden_act", act, "layer_norm_eps", 1e-5,
		"text_config",
		"hidden_size", tw, "intermediate_size", tw * 4,
		"num_attention_heads", json_integer_value(json_object_get(t, "heads")),
		"num_hidden_layers", json_integer_value(json_object_get(t, "layers")),
		"max_position_embeddings", json_integer_value(json_object_get(t, "context_length")),
		"vocab_size", json_integer_value(json_object_get(t, "vocab_size")),
		"hidden_act", act, "layer_norm_eps", 1e-5, "eos_token_id", 49407);
	snprintf(path, sizeof path, "%s/config.json", dst_dir);
	bool ok = cfg && json_dump_file(cfg, path, JSON_INDENT(2)) == 0;
	/* The preprocessing that open_clip keeps in its config. */
	json_t *pp = json_object_get(root, "preprocess_cfg");
	if (ok && json_is_object(pp) && json_object_get(pp, "mean")) {
		json_t *proc = json_pack("{s:O, s:O}", "image_mean", json_object_get(pp, "mean"),
					 "image_std", json_object_get(pp, "std"));
		snprintf(path, sizeof path, "%s/preprocessor_config.json", dst_dir);
		ok = proc && json_dump_file(proc, path, JSON_INDENT(2)) == 0;
		json_decref(proc);
	}
	json_decref(cfg);
	json_decref(root);
	return ok;
}

bool rf_test_write_hf_model(const char *src_dir, const char *vocab_gz, const char *dst_dir)
{
	char path[4200], vocab[4200], merges[4200];
	snprintf(path, sizeof path, "%s/open_clip_model.safetensors", src_dir);
	rf_safetensors *st;
	if (rf_safetensors_open(path, &st) != RF_OK)
		return false;
	struct writer w = { 0 };
	bool ok = true;
	for (uint32_t i = 0; i < rf_safetensors_count(st) && ok; i++) {
		const struct rf_st_entry *e = rf_safetensors_entry(st, i);
		ok = e->dtype == RF_F32 && convert_tensor(&w, e);
	}
	snprintf(path, sizeof path, "%s/model.safetensors", dst_dir);
	ok = ok && rf_safetensors_write(path, w.items, w.n, NULL) == RF_OK;
	for (uint32_t i = 0; i < w.n; i++) {
		rf_tensor_destroy(w.owned[i]);
		free(w.names[i]);
	}
	free(w.items);
	free(w.owned);
	free(w.names);
	rf_safetensors_close(st);
	snprintf(vocab, sizeof vocab, "%s/vocab.json", dst_dir);
	snprintf(merges, sizeof merges, "%s/merges.txt", dst_dir);
	return ok && write_config(src_dir, dst_dir) && rf_test_write_hf_vocab(vocab_gz, vocab, merges);
}

/* }===== */
