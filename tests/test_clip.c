/*
** test_clip.c: the tiny-gelu golden through the C API: image and text embeddings,
** tokens, and the decomposition (attn_spatial, attn_heads, mlps, cls_attn, ln_post_*),
** the sum identity in both centring modes, reductions and projections, the dataset
** components of item 4, and f16 weights.
*/
#include "harness.h"
#include "golden.h"
#include "hf_export.h"
#include "clip.h"
#include "context.h"
#include "decompose.h"

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

/* Sum over every attention summand and every MLP term equals e/||e||. */
static void check_identity(const char *label, const struct rf_decomposition *d, int b, int l, int n,
			   int h, int dim)
{
	float *sp = host_values(d->attn_spatial), *ml = host_values(d->mlps), *e = host_values(d->image_embeds);
	double worst = 0;
	for (int i = 0; i < b; i++) {
		double norm = 0;
		for (int c = 0; c < dim; c++)
			norm += (double)e[i * dim + c] * e[i * dim + c];
		norm = sqrt(norm);
		for (int c = 0; c < dim; c++) {
			double sum = 0;
			for (int k = 0; k < l * n * h; k++)
				sum += sp[((size_t)i * l * n * h + (size_t)k) * dim + c];
			for (int k = 0; k <= l; k++)
				sum += ml[((size_t)i * (l + 1) + (size_t)k) * dim + c];
			worst = fmax(worst, fabs(sum - e[i * dim + c] / norm));
		}
	}
	printf("%-40s sum identity max |error| = %.3e\n", label, worst);
	CHECK(worst <= 1e-5);
	free(sp);
	free(ml);
	free(e);
}

static void test_decomposition(rf_clip *m, const rf_tensor *pixels, const char *ref)
{
	struct rf_decompose_options opt = { .spatial = true };
	struct rf_decomposition d;
	CHECK_OK(rf_clip_decompose(m, pixels, &opt, &d));
	static const struct { const char *name; double atol; } items[] = {
		{ "attn_spatial", 1e-6 }, { "attn_heads", 1e-6 }, { "mlps", 5e-6 },
		{ "ln_post_mean", 2e-6 }, { "ln_post_std", 2e-6 }, { "image_embeds", 2e-5 },
	};
	rf_tensor *got[] = { d.attn_spatial, d.attn_heads, d.mlps, d.ln_post_mean, d.ln_post_std, d.image_embeds };
	for (size_t i = 0; i < RF_ARRAY_LEN(items); i++) {
		rf_tensor *want = rf_golden_read(ref, items[i].name);
		rf_golden_compare(items[i].name, got[i], want, items[i].atol);
		rf_tensor_destroy(want);
	}
	const struct rf_clip_config *c = rf_clip_get_config(m);
	check_identity("reference centring", &d, 8, c->vision.layers, c->tokens, c->vision.heads, c->embed_dim);
	/* cls_attn = sum over heads of the CLS source token's terms */
	float *sp = host_values(d.attn_spatial), *cls = host_values(d.cls_attn);
	int l = c->vision.layers, n = c->tokens, h = c->vision.heads, dim = c->embed_dim;
	double worst = 0;
	for (int b = 0; b < 8; b++)
		for (int k = 0; k < l; k++)
			for (int j = 0; j < dim; j++) {
				double s = 0;
				for (int hh = 0; hh < h; hh++)
					s += sp[((((size_t)b * l + k) * n + 0) * h + hh) * dim + j];
				worst = fmax(worst, fabs(s - cls[((size_t)b * l + k) * dim + j]));
			}
	printf("%-40s max |error| = %.3e\n", "cls_attn vs attn_spatial", worst);
	CHECK(worst <= 1e-6);
	free(sp);
	free(cls);
	rf_decomposition_fini(&d);

	opt.centering = RF_CENTER_EXACT;
	CHECK_OK(rf_clip_decompose(m, pixels, &opt, &d));
	check_identity("exact centring", &d, 8, l, n, h, dim);
	rf_decomposition_fini(&d);
}

/* Reductions and a projection equal the host reduction of the full output. */
static void test_reductions(rf_clip *m, const rf_tensor *pixels, const char *textspan)
{
	const struct rf_clip_config *c = rf_clip_get_config(m);
	int l = c->vision.layers, n = c->tokens, h = c->vision.heads, dim = c->embed_dim;
	rf_tensor *classifier = rf_golden_read(textspan, "classifier");
	struct rf_decompose_options full = { .spatial = true }, red = { .spatial = true,
		.reduce = RF_REDUCE_LAYERS | RF_REDUCE_HEADS, .project = classifier };
	struct rf_decomposition a, b;
	CHECK_OK(rf_clip_decompose(m, pixels, &full, &a));
	CHECK_OK(rf_clip_decompose(m, pixels, &red, &b));
	CHECK(b.attn_spatial && b.attn_spatial->shape.ndim == 3 && b.attn_spatial->shape.dim[1] == n &&
	      b.attn_spatial->shape.dim[2] == 6);
	float *sp = host_values(a.attn_spatial), *cl = classifier->host;
	double *ref = calloc((size_t)8 * n * 6, sizeof *ref);
	for (int bb = 0; bb < 8; bb++)
		for (int k = 0; k < l; k++)
			for (int m2 = 0; m2 < n; m2++)
				for (int hh = 0; hh < h; hh++)
					for (int j = 0; j < dim; j++) {
						double v = sp[((((size_t)bb * l + k) * n + m2) * h + hh) * dim + j];
						for (int cc = 0; cc < 6; cc++)
							ref[((size_t)bb * n + m2) * 6 + cc] += v * cl[j * 6 + cc];
					}
	float *got = host_values(b.attn_spatial);
	rf_compare("spatial, layers+heads summed, projected", got, ref, (size_t)8 * n * 6, 1e-6, 0);
	free(sp);
	free(got);
	free(ref);
	rf_decomposition_fini(&a);
	rf_decomposition_fini(&b);
	rf_tensor_destroy(classifier);
}

static void test_dataset_components(rf_clip *m, const char *textspan)
{
	rf_tensor *pixels = rf_golden_read(textspan, "dataset_pixels");
	struct rf_decompose_options opt = { 0 };
	struct rf_decomposition d;
	CHECK_OK(rf_clip_decompose(m, pixels, &opt, &d));
	rf_tensor *want = rf_golden_read(textspan, "dataset_attn_heads");
	rf_golden_compare("dataset_attn_heads", d.attn_heads, want, 1e-6);
	rf_tensor_destroy(want);
	want = rf_golden_read(textspan, "dataset_mlps");
	rf_golden_compare("dataset_mlps", d.mlps, want, 5e-6);
	rf_tensor_destroy(want);
	want = rf_golden_read(textspan, "dataset_cls_attn");
	rf_golden_compare("dataset_cls_attn", d.cls_attn, want, 1e-6);
	rf_tensor_destroy(want);
	rf_decomposition_fini(&d);
	rf_tensor_destroy(pixels);
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
		struct rf_decompose_options opt2 = { .spatial = true };
		struct rf_decomposition d1, d2;
		CHECK_OK(rf_clip_decompose(m, pixels, &opt2, &d1));
		CHECK_OK(rf_clip_decompose(hf, pixels, &opt2, &d2));
		x = host_values(d1.attn_spatial), y = host_values(d2.attn_spatial);
		CHECK(memcmp(x, y, rf_tensor_nbytes(d1.attn_spatial)) == 0);
		free(x), free(y);
		rf_decomposition_fini(&d1), rf_decomposition_fini(&d2);
		rf_clip_destroy(hf);
	}
	rf_temp_dir_remove(dir);
}

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	const char *ref = rf_test_data("tiny-gelu/reference.safetensors");
	const char *textspan = rf_test_data("tiny-gelu/textspan.safetensors");
	rf_clip *m = load_tiny(ctx, RF_F32);
	rf_tensor *pixels = rf_golden_read(ref, "pixels");
	test_image_embeds(m, pixels, ref);
	test_texts(m, ref);
	test_decomposition(m, pixels, ref);
	test_reductions(m, pixels, textspan);
	test_dataset_components(m, textspan);
	test_f16(ctx, pixels, ref);
	test_hf_layout(ctx, m, pixels, ref);
	rf_tensor_destroy(pixels);
	rf_clip_destroy(m);
	return rf_test_finish();
}
