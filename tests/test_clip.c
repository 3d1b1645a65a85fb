/*
** test_clip.c: the tiny-gelu golden through the C API: image and text embeddings,
** tokens, f16 weights, and the Hugging Face layout (the decomposition is
** test_decompose.c's).
*/
#include "harness.h"
#include "golden.h"
#include "hf_export.h"
#include "clip.h"
#include "context.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rf_clip *load_tiny(rf_ctx *ctx, enum rf_dtype storage)
{
	struct rf_clip_options opt = { .storage = storage, .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	rf_clip *m = NULL;
	CHECK_OK(rf_clip_load(ctx, rf_test_data("tiny-gelu/model"), &opt, &m));
	if (!m)
		exit(rf_test_finish());
	return m;
}

/* The values of a result, or exit (after reporting) when an earlier step failed. */
static float *host_values(const rf_tensor *t)
{
	if (!t) {
		fprintf(stderr, "a result is missing; stopping\n");
		rf_test_failures++;
		exit(rf_test_finish());
	}
	float *v = malloc(rf_tensor_nbytes(t) + 4);
	CHECK_OK(rf_tensor_download(t, v, rf_tensor_nbytes(t)));
	return v;
}

static void test_image_embeds(rf_clip *m, const rf_tensor *pixels, const char *ref)
{
	rf_tensor *e = NULL, *want = rf_golden_read(ref, "image_embeds");
	CHECK_OK(rf_clip_encode_images(m, pixels, &e));
	rf_golden_compare("image_embeds", e, want, 2e-5);
	rf_tensor_destroy(e);
	rf_tensor_destroy(want);
}

static void test_texts(rf_clip *m, const char *ref)
{
	rf_tensor *tokens = rf_golden_read(ref, "text_tokens");
	rf_tensor *want = rf_golden_read(ref, "text_embeds"), *e = NULL;
	CHECK_OK(rf_clip_encode_tokens(m, tokens, &e));
	rf_golden_compare("text_embeds", e, want, 5e-5);
	rf_tensor_destroy(e);
	rf_tensor_destroy(want);
	rf_tensor_destroy(tokens);
}

static void test_f16(rf_ctx *ctx, const rf_tensor *pixels, const char *ref)
{
	rf_clip *m = load_tiny(ctx, RF_F16);
	rf_tensor *e = NULL, *want = rf_golden_read(ref, "image_embeds");
	CHECK_OK(rf_clip_encode_images(m, pixels, &e));
	rf_golden_compare("image_embeds, f16 weights", e, want, 5e-3);
	rf_tensor_destroy(e);
	rf_tensor_destroy(want);
	rf_clip_destroy(m);
}

/* The same weights in Hugging Face's layout (q/k/v split, Linear projections) give
** bit-identical embeddings: the loader rebuilds exactly the same device weights. */
static void test_hf_layout(rf_ctx *ctx, rf_clip *m, const rf_tensor *pixels, const char *ref)
{
	char *dir = rf_temp_dir();
	const char *gz = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz");
	CHECK(rf_test_write_hf_model(rf_test_data("tiny-gelu/model"), gz, dir));
	rf_clip *hf = NULL;
	struct rf_clip_options opt = { 0 };
	CHECK_OK(rf_clip_load(ctx, dir, &opt, &hf));
	if (hf) {
		CHECK(rf_clip_get_config(hf)->layout == RF_LAYOUT_HF);
		/* The random model keeps open_clip's initial logit scale, ln(1 / 0.07), in both
		** layouts' `logit_scale` tensor (not in their configs). */
		const struct rf_clip_config *c1 = rf_clip_get_config(m), *c2 = rf_clip_get_config(hf);
		CHECK(c1->has_logit_scale && fabs(c1->logit_scale - log(1 / 0.07)) < 1e-6);
		CHECK(c2->has_logit_scale && c2->logit_scale == c1->logit_scale);
		rf_tensor *a = NULL, *b = NULL, *tokens = rf_golden_read(ref, "text_tokens");
		CHECK_OK(rf_clip_encode_images(m, pixels, &a));
		CHECK_OK(rf_clip_encode_images(hf, pixels, &b));
		float *x = host_values(a), *y = host_values(b);
		CHECK(memcmp(x, y, rf_tensor_nbytes(a)) == 0);
		printf("%-40s %s\n", "HF layout image_embeds", memcmp(x, y, rf_tensor_nbytes(a)) ? "differ" : "bit-identical");
		free(x), free(y);
		rf_tensor_destroy(a), rf_tensor_destroy(b);
		const char *texts[] = { "a photo of a cat", "salt &amp; pepper" };
		rf_tensor *t1 = NULL, *t2 = NULL;
		CHECK_OK(rf_clip_tokenize(m, texts, 2, &t1));
		CHECK_OK(rf_clip_tokenize(hf, texts, 2, &t2));
		CHECK(t1 && t2 && memcmp(t1->host, t2->host, rf_tensor_nbytes(t1)) == 0);
		rf_tensor_destroy(t1), rf_tensor_destroy(t2);
		CHECK_OK(rf_clip_encode_tokens(m, tokens, &a));
		CHECK_OK(rf_clip_encode_tokens(hf, tokens, &b));
		x = host_values(a), y = host_values(b);
		CHECK(memcmp(x, y, rf_tensor_nbytes(a)) == 0);
		printf("%-40s %s\n", "HF layout text_embeds", memcmp(x, y, rf_tensor_nbytes(a)) ? "differ" : "bit-identical");
		free(x), free(y);
		rf_tensor_destroy(a), rf_tensor_destroy(b), rf_tensor_destroy(tokens);
		rf_clip_destroy(hf);
	}
	rf_temp_dir_remove(dir);
}

/* Image embeddings of the model in `dir` for `pixels`, as host values (NULL if it fails to load). */
static float *embeds_of(rf_ctx *ctx, const char *dir, const rf_tensor *pixels, size_t *bytes)
{
	rf_clip *m = NULL;
	struct rf_clip_options opt = { .vocab_path = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz") };
	CHECK_OK(rf_clip_load(ctx, dir, &opt, &m));
	if (!m)
		return NULL;
	rf_tensor *e = NULL;
	CHECK_OK(rf_clip_encode_images(m, pixels, &e));
	float *v = host_values(e);
	*bytes = rf_tensor_nbytes(e);
	rf_tensor_destroy(e);
	rf_clip_destroy(m);
	return v;
}

/* Writes `root` (stolen) as `dir`/`name`. */
static void dump_json(json_t *root, const char *dir, const char *name)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK(root && json_dump_file(root, path, JSON_INDENT(2)) == 0);
	json_decref(root);
}

/* Legal spellings of the same architecture load as the same model: open_clip's image and
** patch sizes as [h, w] pairs, an explicit norm_kwargs eps of 1e-5 and empty act_kwargs;
** an old transformers config whose vision_config_dict / text_config_dict win over stale
** plain objects (as transformers reads them), with CLIPImageProcessor's full
** preprocessor_config.json. Each was refused, or read from the stale object. A norm_kwargs
** eps of 1e-3 is used, not ignored. */
static void test_config_spellings(rf_ctx *ctx, const rf_tensor *pixels)
{
	size_t bytes = 0, got_bytes = 0;
	float *want = embeds_of(ctx, rf_test_data("tiny-gelu/model"), pixels, &bytes);
	char *dir = rf_temp_dir(), cmd[8600];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s/'", rf_test_data("tiny-gelu/model/open_clip_model.safetensors"), dir);
	CHECK(system(cmd) == 0);
	char path[4200];
	snprintf(path, sizeof path, "%s", rf_test_data("tiny-gelu/model/open_clip_config.json"));
	for (int variant = 0; variant < 2; variant++) {
		json_t *root = json_load_file(path, 0, NULL);
		json_t *mc = json_object_get(root, "model_cfg");
		json_t *v = json_object_get(mc, "vision_cfg"), *t = json_object_get(mc, "text_cfg");
		json_object_set_new(v, "image_size", json_pack("[i, i]", 32, 32));
		json_object_set_new(v, "patch_size", json_pack("[i, i]", 8, 8));
		json_object_set_new(v, "act_kwargs", json_object());
		json_object_set_new(v, "norm_kwargs", json_pack("{s:f}", "eps", variant ? 1e-3 : 1e-5));
		json_object_set_new(t, "norm_kwargs", json_pack("{s:f}", "eps", 1e-5));
		dump_json(root, dir, "open_clip_config.json");
		float *got = embeds_of(ctx, dir, pixels, &got_bytes);
		bool same = want && got && got_bytes == bytes && memcmp(want, got, bytes) == 0;
		CHECK(variant ? !same : same);
		printf("%-40s %s\n", variant ? "open_clip norm_kwargs eps 1e-3" : "open_clip [h, w] sizes, eps 1e-5",
		       same ? "bit-identical" : "differ");
		free(got);
	}
	rf_temp_dir_remove(dir);

	dir = rf_temp_dir();
	CHECK(rf_test_write_hf_model(rf_test_data("tiny-gelu/model"),
				     rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz"), dir));
	snprintf(path, sizeof path, "%s/config.json", dir);
	json_t *root = json_load_file(path, 0, NULL);
	static const char *const towers[] = { "vision_config", "text_config" };
	for (int i = 0; i < 2; i++) {
		char key[32];
		snprintf(key, sizeof key, "%s_dict", towers[i]);
		json_object_set(root, key, json_object_get(root, towers[i]));
		json_object_set_new(root, towers[i], json_pack("{s:s, s:i}", "hidden_act", "gelu_new", "hidden_size", 7));
	}
	dump_json(root, dir, "config.json");
	snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
	root = json_load_file(path, 0, NULL);
	json_t *extra = json_pack("{s:b, s:b, s:b, s:b, s:i, s:f, s:{s:i}, s:{s:i, s:i}}", "do_resize", 1,
				  "do_center_crop", 1, "do_rescale", 1, "do_normalize", 1, "resample", 3,
				  "rescale_factor", 0.00392156862745098, "size", "shortest_edge", 32, "crop_size",
				  "height", 32, "width", 32);
	json_object_update(root, extra);
	json_decref(extra);
	dump_json(root, dir, "preprocessor_config.json");
	float *got = embeds_of(ctx, dir, pixels, &got_bytes);
	bool same = want && got && got_bytes == bytes && memcmp(want, got, bytes) == 0;
	CHECK(same);
	printf("%-40s %s\n", "HF *_config_dict, full preprocessor", same ? "bit-identical" : "differ");
	free(got);
	free(want);
	rf_temp_dir_remove(dir);
}

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	const char *ref = rf_test_data("tiny-gelu/reference.safetensors");
	rf_clip *m = load_tiny(ctx, RF_F32);
	rf_tensor *pixels = rf_golden_read(ref, "pixels");
	test_image_embeds(m, pixels, ref);
	test_texts(m, ref);
	test_f16(ctx, pixels, ref);
	test_hf_layout(ctx, m, pixels, ref);
	test_config_spellings(ctx, pixels);
	rf_tensor_destroy(pixels);
	rf_clip_destroy(m);
	return rf_test_finish();
}
