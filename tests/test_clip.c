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

#include <math.h>
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
	rf_tensor_destroy(pixels);
	rf_clip_destroy(m);
	return rf_test_finish();
}
