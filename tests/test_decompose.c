/*
** test_decompose.c: the decomposition (decompose.h) and its kernels (decomp.h).
**   - the four kernels against double-precision references, and their argument checks;
**   - the tiny-gelu golden through the C API: attn_spatial, attn_heads, mlps, ln_post_*,
**     the sum identity in both centring modes, cls_attn against attn_spatial, reductions
**     with a projection, the dataset components of item 4, the Hugging Face layout;
**   - a decomposer over the batches of a dataset: the fold is built once, every batch
**     matches the golden and a fresh one-shot decomposition, the projection is copied at
**     creation, the scratch is remade only when the batch size changes;
**   - misuse: bad options, bad pixels, a model destroyed before its decomposer.
*/
#include "harness.h"
#include "golden.h"
#include "hf_export.h"
#include "clip.h"
#include "context.h"
#include "decomp.h"
#include "decompose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static rf_clip *load_tiny(rf_ctx *ctx)
{
	struct rf_clip_options opt = { .vision_only = true };
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
	return rf_test_download(t);
}

static float *random_floats(size_t n, double lo, double hi)
{
	float *x = malloc(n * sizeof *x);
	rf_rand_fill(x, n, lo, hi);
	return x;
}

/* {===== kernels */

static void test_accumulate(rf_ctx *ctx)
{
	enum { B = 2, M = 3, H = 4, C = 5, PAD = 7, AN = 6, M0 = 2 };
	const uint32_t t_batch = M * H * C + PAD;
	float *t = random_floats((size_t)B * t_batch, -1, 1), *alpha = random_floats(B * H * AN, 0, 1);
	struct rf_shape st = rf_shape_of(1, (int64_t)B * t_batch), sa = rf_shape_of(3, (int64_t)B, (int64_t)H, (int64_t)AN);
	rf_tensor *td = rf_test_tensor(ctx, &st, t), *ad = rf_test_tensor(ctx, &sa, alpha);
	for (int variant = 0; variant < 8; variant++) {
		bool sum_tokens = variant & 1, sum_heads = variant & 2, weighted = variant & 4;
		int mo = sum_tokens ? 1 : M, ho = sum_heads ? 1 : H;
		size_t n = (size_t)B * mo * ho * C;
		float *init = random_floats(n, -1, 1);
		struct rf_shape ss = rf_shape_of(4, (int64_t)B, (int64_t)mo, (int64_t)ho, (int64_t)C);
		rf_tensor *slot = rf_test_tensor(ctx, &ss, init);
		struct rf_decomp_accumulate a = {
			.t = td, .alpha = weighted ? ad : NULL, .slot = slot, .batch = B, .tokens = M,
			.heads = H, .dim = C, .t_batch = t_batch, .alpha_n = AN, .alpha_m0 = M0,
			.sum_tokens = sum_tokens, .sum_heads = sum_heads,
		};
		CHECK_OK(rf_op_decomp_accumulate(ctx, &a));
		double *ref = malloc(n * sizeof *ref);
		for (size_t i = 0; i < n; i++)
			ref[i] = init[i];
		for (int b = 0; b < B; b++)
			for (int m = 0; m < M; m++)
				for (int h = 0; h < H; h++)
					for (int c = 0; c < C; c++) {
						double v = t[(size_t)b * t_batch + ((size_t)m * H + h) * C + (size_t)c];
						if (weighted)
							v *= alpha[((size_t)b * H + h) * AN + (size_t)(m + M0)];
						size_t o = (((size_t)b * mo + (sum_tokens ? 0 : m)) * ho +
							    (sum_heads ? 0 : h)) * C + (size_t)c;
						ref[o] += v;
					}
		float *got = rf_test_download(slot);
		char label[64];
		snprintf(label, sizeof label, "accumulate%s%s%s", sum_tokens ? " sum-tokens" : "",
			 sum_heads ? " sum-heads" : "", weighted ? " weighted" : "");
		rf_compare(label, got, ref, n, 1e-6, 1e-6);
		free(got);
		free(ref);
		free(init);
		rf_tensor_destroy(slot);
	}
	free(t);
	free(alpha);
	rf_tensor_destroy(td);
	rf_tensor_destroy(ad);
}

static void test_scale_values(rf_ctx *ctx)
{
	enum { B = 2, N = 3, H = 2, DH = 3, W = H * DH, EXT = DH + 4, SENTINEL = 7 };
	float *qkv = random_floats(B * N * 3 * W, -1, 1), *probs = random_floats(B * H * N, 0, 1);
	float out0[B * N * H * EXT];
	for (size_t i = 0; i < RF_ARRAY_LEN(out0); i++)
		out0[i] = SENTINEL;
	struct rf_shape sq = rf_shape_of(2, (int64_t)(B * N), (int64_t)(3 * W));
	struct rf_shape sp = rf_shape_of(3, (int64_t)B, (int64_t)H, (int64_t)N);
	struct rf_shape so = rf_shape_of(2, (int64_t)(B * N), (int64_t)(H * EXT));
	rf_tensor *q = rf_test_tensor(ctx, &sq, qkv), *p = rf_test_tensor(ctx, &sp, probs);
	rf_tensor *out = rf_test_tensor(ctx, &so, out0);
	CHECK_OK(rf_op_decomp_scale_values(ctx, q, p, B, N, H, DH, out));
	double ref[B * N * H * EXT];
	for (int row = 0; row < B * N; row++)
		for (int h = 0; h < H; h++)
			for (int j = 0; j < EXT; j++) {
				int b = row / N, m = row % N;
				ref[(row * H + h) * EXT + j] = j < DH ? (double)qkv[row * 3 * W + 2 * W + h * DH + j] *
									probs[(b * H + h) * N + m]
								      : SENTINEL;   /* left for decomp_extra */
			}
	float *got = rf_test_download(out);
	rf_compare("scale_values", got, ref, RF_ARRAY_LEN(ref), 1e-7, 1e-6);
	/* A wrong geometry is a message, not a read past qkv. */
	CHECK_FAILS(rf_op_decomp_scale_values(ctx, q, p, B, N + 1, H, DH, out), RF_ERR_INVALID,
		    "decomp_scale_values: qkv has 108 elements, expected 144");
	free(got);
	free(qkv);
	free(probs);
	rf_tensor_destroy(q);
	rf_tensor_destroy(p);
	rf_tensor_destroy(out);
}

static void test_extra(rf_ctx *ctx)
{
	enum { B = 2, N = 3, H = 2, DH = 3, EXT = DH + 4 };
	const float w = 0.125f;
	float *v = random_floats(B * N * H * EXT, -1, 1), *mean = random_floats(B, -1, 1);
	float *sd = random_floats(B, 0.5, 2), *norm = random_floats(B, 0.5, 2);
	struct rf_shape sv = rf_shape_of(2, (int64_t)(B * N * H), (int64_t)EXT), sb = rf_shape_of(2, (int64_t)B, (int64_t)1);
	rf_tensor *vd = rf_test_tensor(ctx, &sv, v), *md = rf_test_tensor(ctx, &sb, mean);
	rf_tensor *sdd = rf_test_tensor(ctx, &sb, sd), *nd = rf_test_tensor(ctx, &sb, norm);
	CHECK_OK(rf_op_decomp_extra(ctx, md, sdd, nd, N, H, DH, w, vd));
	double ref[B * N * H * EXT];
	for (int i = 0; i < B * N * H; i++) {
		int b = i / (N * H);
		double s = 1.0 / ((double)sd[b] * norm[b]);
		for (int j = 0; j < DH; j++)
			ref[i * EXT + j] = v[i * EXT + j] * s;
		ref[i * EXT + DH] = s;
		ref[i * EXT + DH + 1] = w * sd[b] * s;
		ref[i * EXT + DH + 2] = -w * mean[b] * s;
		ref[i * EXT + DH + 3] = 0;
	}
	float *got = rf_test_download(vd);
	rf_compare("extra", got, ref, RF_ARRAY_LEN(ref), 1e-7, 1e-5);
	CHECK_FAILS(rf_op_decomp_extra(ctx, md, sdd, nd, N, H, DH + 1, w, vd), RF_ERR_INVALID,
		    "decomp_extra: v has 84 elements, expected 96");
	free(got);
	free(v), free(mean), free(sd), free(norm);
	rf_tensor_destroy(vd), rf_tensor_destroy(md), rf_tensor_destroy(sdd), rf_tensor_destroy(nd);
}

static void test_finish(rf_ctx *ctx)
{
	enum { B = 2, R = 3, C = 5, ROWS = 4 };
	float *mean = random_floats(B, -1, 1), *sd = random_floats(B, 0.5, 2), *norm = random_floats(B, 0.5, 2);
	float *consts = random_floats(ROWS * C, -1, 1);
	struct rf_shape sb = rf_shape_of(1, (int64_t)B), sc = rf_shape_of(2, (int64_t)ROWS, (int64_t)C);
	struct rf_shape ss = rf_shape_of(3, (int64_t)B, (int64_t)R, (int64_t)C);
	rf_tensor *md = rf_test_tensor(ctx, &sb, mean), *sdd = rf_test_tensor(ctx, &sb, sd);
	rf_tensor *nd = rf_test_tensor(ctx, &sb, norm), *cd = rf_test_tensor(ctx, &sc, consts);
	for (int with_bias = 0; with_bias < 2; with_bias++) {
		const float w = 0.3f;
		uint32_t bias_row = with_bias ? 3 : RF_DECOMP_NO_BIAS;
		float *raw = random_floats(B * R * C, -1, 1);
		rf_tensor *slot = rf_test_tensor(ctx, &ss, raw);
		CHECK_OK(rf_op_decomp_finish(ctx, slot, cd, bias_row, w, md, sdd, nd));
		double ref[B * R * C];
		for (int i = 0; i < B * R * C; i++) {
			int b = i / (R * C), c = i % C;
			double bias = with_bias ? consts[3 * C + c] : 0.0;
			ref[i] = (((double)raw[i] + bias) / sd[b] + w * (consts[c] - (double)mean[b] * consts[C + c] / sd[b])) /
				 norm[b];
		}
		float *got = rf_test_download(slot);
		rf_compare(with_bias ? "finish with bias" : "finish", got, ref, RF_ARRAY_LEN(ref), 1e-6, 1e-5);
		free(got);
		free(raw);
		if (with_bias)
			CHECK_FAILS(rf_op_decomp_finish(ctx, slot, cd, ROWS, w, md, sdd, nd), RF_ERR_INVALID,
				    "decomp_finish: consts has 4 rows; it needs bpp, g1p and the bias row");
		rf_tensor_destroy(slot);
	}
	free(mean), free(sd), free(norm), free(consts);
	rf_tensor_destroy(md), rf_tensor_destroy(sdd), rf_tensor_destroy(nd), rf_tensor_destroy(cd);
}

static void test_kernel_misuse(rf_ctx *ctx)
{
	struct rf_shape s12 = rf_shape_of(1, (int64_t)12), s10 = rf_shape_of(1, (int64_t)10);
	rf_tensor *t = rf_test_tensor(ctx, &s12, NULL), *slot = rf_test_tensor(ctx, &s10, NULL);
	struct rf_decomp_accumulate a = {
		.t = t, .slot = slot, .batch = 1, .tokens = 1, .heads = 3, .dim = 4, .t_batch = 12,
		.alpha_n = 3,
	};
	CHECK_FAILS(rf_op_decomp_accumulate(ctx, &a), RF_ERR_INVALID,
		    "decomp_accumulate: slot has 10 elements, expected 12");
	a.slot = t;
	a.t = slot;
	CHECK_FAILS(rf_op_decomp_accumulate(ctx, &a), RF_ERR_INVALID,
		    "decomp_accumulate: t has 10 elements, expected at least 12");
	a.t = t;
	a.alpha = t;
	a.alpha_m0 = 3;
	CHECK_FAILS(rf_op_decomp_accumulate(ctx, &a), RF_ERR_INVALID, "tokens 1 from 3 pass alpha's 3");
	rf_tensor *host = NULL;
	CHECK_OK(rf_tensor_create_host(RF_F32, &s12, &host));
	a.alpha = NULL;
	a.alpha_m0 = 0;
	a.t = host;
	CHECK_FAILS(rf_op_decomp_accumulate(ctx, &a), RF_ERR_INVALID, "t must be a device tensor");
	rf_tensor_destroy(host);
	rf_tensor_destroy(t);
	rf_tensor_destroy(slot);
}

/* }===== */

/* {===== the golden */

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

/* The same weights in Hugging Face's layout decompose bit-identically: the fold reads
** proj and out_proj through the layout's names and orientation. */
static void test_hf_layout(rf_ctx *ctx, rf_clip *m, const rf_tensor *pixels)
{
	char *dir = rf_temp_dir();
	const char *gz = rf_test_data("../../scripts/data/bpe_simple_vocab_16e6.txt.gz");
	CHECK(rf_test_write_hf_model(rf_test_data("tiny-gelu/model"), gz, dir));
	rf_clip *hf = NULL;
	struct rf_clip_options opt = { .vision_only = true };
	CHECK_OK(rf_clip_load(ctx, dir, &opt, &hf));
	if (hf) {
		struct rf_decompose_options dopt = { .spatial = true };
		struct rf_decomposition d1, d2;
		CHECK_OK(rf_clip_decompose(m, pixels, &dopt, &d1));
		CHECK_OK(rf_clip_decompose(hf, pixels, &dopt, &d2));
		float *x = host_values(d1.attn_spatial), *y = host_values(d2.attn_spatial);
		bool same = memcmp(x, y, rf_tensor_nbytes(d1.attn_spatial)) == 0;
		printf("%-40s %s\n", "HF layout attn_spatial", same ? "bit-identical" : "differ");
		CHECK(same);
		free(x), free(y);
		rf_decomposition_fini(&d1), rf_decomposition_fini(&d2);
		rf_clip_destroy(hf);
	}
	rf_temp_dir_remove(dir);
}

/* }===== */

/* {===== a decomposer over a dataset */

/* Rows [first, first + count) of a golden host tensor, as a host tensor. */
static rf_tensor *golden_rows(const rf_tensor *g, int64_t first, int64_t count)
{
	struct rf_shape s = g->shape;
	s.dim[0] = count;
	uint64_t row = rf_tensor_nbytes(g) / (uint64_t)g->shape.dim[0];
	rf_tensor *out = NULL;
	CHECK_OK(rf_tensor_from_host_data(RF_F32, &s, (const char *)g->host + (uint64_t)first * row, &out));
	return out;
}

/* Whether two results hold the same bytes (both absent counts as the same). */
static bool same_tensor(const rf_tensor *a, const rf_tensor *b)
{
	if (!a || !b)
		return !a && !b;
	if (!rf_shape_equal(&a->shape, &b->shape))
		return false;
	float *x = host_values(a), *y = host_values(b);
	bool same = memcmp(x, y, rf_tensor_nbytes(a)) == 0;
	free(x);
	free(y);
	return same;
}

static bool same_decomposition(const struct rf_decomposition *a, const struct rf_decomposition *b)
{
	return same_tensor(a->attn_spatial, b->attn_spatial) && same_tensor(a->attn_heads, b->attn_heads) &&
	       same_tensor(a->mlps, b->mlps) && same_tensor(a->cls_attn, b->cls_attn) &&
	       same_tensor(a->ln_post_mean, b->ln_post_mean) && same_tensor(a->ln_post_std, b->ln_post_std) &&
	       same_tensor(a->image_embeds, b->image_embeds);
}

/* 96 images in batches of 40, 40 and 16 through one decomposer: each batch matches the
** golden rows, the fold was built once and the scratch twice (one per batch size). */
static void test_dataset_batches(rf_clip *m, const char *textspan)
{
	rf_ctx *ctx = rf_clip_ctx(m);
	rf_tensor *pixels = rf_golden_read(textspan, "dataset_pixels");
	rf_tensor *heads = rf_golden_read(textspan, "dataset_attn_heads");
	rf_tensor *mlps = rf_golden_read(textspan, "dataset_mlps");
	rf_tensor *cls = rf_golden_read(textspan, "dataset_cls_attn");
	struct rf_decompose_options opt = { 0 };
	rf_decomposer *dec = NULL;
	CHECK_OK(rf_decomposer_create(m, &opt, &dec));
	if (!dec)
		exit(rf_test_finish());
	CHECK(rf_decomposer_max_batch(dec) >= 1);
	static const int64_t sizes[] = { 40, 40, 16 };
	int64_t first = 0;
	for (size_t i = 0; i < RF_ARRAY_LEN(sizes); i++) {
		rf_tensor *part = NULL;
		CHECK_OK(rf_tensor_rows(ctx, pixels, first, sizes[i], &part));
		struct rf_decomposition d;
		CHECK_OK(rf_decomposer_run(dec, part, &d));
		char label[64];
		rf_tensor *want[] = { golden_rows(heads, first, sizes[i]), golden_rows(mlps, first, sizes[i]),
				      golden_rows(cls, first, sizes[i]) };
		snprintf(label, sizeof label, "batch %zu: dataset_attn_heads", i + 1);
		rf_golden_compare(label, d.attn_heads, want[0], 1e-6);
		snprintf(label, sizeof label, "batch %zu: dataset_mlps", i + 1);
		rf_golden_compare(label, d.mlps, want[1], 5e-6);
		snprintf(label, sizeof label, "batch %zu: dataset_cls_attn", i + 1);
		rf_golden_compare(label, d.cls_attn, want[2], 1e-6);
		for (size_t k = 0; k < RF_ARRAY_LEN(want); k++)
			rf_tensor_destroy(want[k]);
		rf_decomposition_fini(&d);
		rf_tensor_destroy(part);
		first += sizes[i];
	}
	struct rf_decomposer_stats st;
	rf_decomposer_get_stats(dec, &st);
	printf("%-40s runs %llu, fold builds %llu, scratch builds %llu\n", "decomposer over 3 batches",
	       (unsigned long long)st.runs, (unsigned long long)st.fold_builds,
	       (unsigned long long)st.scratch_builds);
	CHECK(st.runs == 3 && st.fold_builds == 1 && st.scratch_builds == 2);
	rf_decomposer_destroy(dec);
	rf_tensor_destroy(pixels), rf_tensor_destroy(heads), rf_tensor_destroy(mlps), rf_tensor_destroy(cls);
}

/* With a projection on the device: the fold is built once for every batch, the
** decomposer keeps its own copy (the caller's tensor may go at once), and the second
** batch equals a fresh one-shot decomposition of the same pixels, bit for bit. */
static void test_projected_batches(rf_clip *m, const char *textspan)
{
	rf_ctx *ctx = rf_clip_ctx(m);
	rf_tensor *pixels = rf_golden_read(textspan, "dataset_pixels");
	rf_tensor *classifier = rf_golden_read(textspan, "classifier"), *project = NULL;
	CHECK_OK(rf_tensor_to_device(ctx, classifier, &project));
	struct rf_decompose_options opt = { .spatial = true, .reduce = RF_REDUCE_LAYERS | RF_REDUCE_HEADS,
					    .project = project, .centering = RF_CENTER_EXACT };
	rf_decomposer *dec = NULL;
	CHECK_OK(rf_decomposer_create(m, &opt, &dec));
	if (!dec)
		exit(rf_test_finish());
	rf_tensor_destroy(project);   /* the decomposer must not need it any more */
	struct rf_decomposition second = { 0 };
	for (int i = 0; i < 4; i++) {
		rf_tensor *part = NULL;
		CHECK_OK(rf_tensor_rows(ctx, pixels, 8 * i, 8, &part));
		struct rf_decomposition d;
		CHECK_OK(rf_decomposer_run(dec, part, &d));
		CHECK(d.attn_spatial && d.attn_spatial->shape.ndim == 3 && d.attn_spatial->shape.dim[2] == 6);
		if (i == 1)
			second = d;
		else
			rf_decomposition_fini(&d);
		rf_tensor_destroy(part);
	}
	struct rf_decomposer_stats st;
	rf_decomposer_get_stats(dec, &st);
	printf("%-40s runs %llu, fold builds %llu, scratch builds %llu\n", "projected decomposer, 4 batches",
	       (unsigned long long)st.runs, (unsigned long long)st.fold_builds,
	       (unsigned long long)st.scratch_builds);
	CHECK(st.runs == 4 && st.fold_builds == 1 && st.scratch_builds == 1);
	rf_decomposer_destroy(dec);

	rf_tensor *part = NULL;
	struct rf_decomposition fresh;
	opt.project = classifier;     /* host this time: the same values */
	CHECK_OK(rf_tensor_rows(ctx, pixels, 8, 8, &part));
	CHECK_OK(rf_clip_decompose(m, part, &opt, &fresh));
	bool same = same_decomposition(&second, &fresh);
	printf("%-40s %s\n", "batch 2 vs a one-shot decomposition", same ? "bit-identical" : "differ");
	CHECK(same);
	rf_decomposition_fini(&fresh);
	rf_decomposition_fini(&second);
	rf_tensor_destroy(part);
	rf_tensor_destroy(pixels);
	rf_tensor_destroy(classifier);
}

/* }===== */

/* {===== misuse */

static void test_misuse(rf_ctx *ctx, rf_clip *m, const rf_tensor *pixels)
{
	rf_decomposer *dec = (rf_decomposer *)(uintptr_t)1;   /* must come back NULL */
	struct rf_shape s = rf_shape_of(2, (int64_t)31, (int64_t)6);
	rf_tensor *bad = rf_test_tensor(ctx, &s, NULL);
	struct rf_decompose_options opt = { .project = bad };
	CHECK_FAILS(rf_decomposer_create(m, &opt, &dec), RF_ERR_INVALID,
		    "the projection must be f32 [32, C] (embedding dim x directions), got F32 [31, 6]");
	CHECK(dec == NULL);
	opt = (struct rf_decompose_options){ .reduce = 1u << 5 };
	CHECK_FAILS(rf_decomposer_create(m, &opt, &dec), RF_ERR_INVALID, "unknown reduce bits 0x20");
	opt = (struct rf_decompose_options){ .centering = (enum rf_centering)7 };
	CHECK_FAILS(rf_decomposer_create(m, &opt, &dec), RF_ERR_INVALID, "unknown centering 7");
	rf_tensor_destroy(bad);

	CHECK_OK(rf_decomposer_create(m, NULL, &dec));
	struct rf_shape sp = rf_shape_of(4, (int64_t)2, (int64_t)3, (int64_t)16, (int64_t)16);
	rf_tensor *small = rf_test_tensor(ctx, &sp, NULL);
	struct rf_decomposition d;
	memset(&d, 0xff, sizeof d);
	CHECK_FAILS(rf_decomposer_run(dec, small, &d), RF_ERR_INVALID,
		    "pixels must be f32 [B, 3, 32, 32], got F32 [2, 3, 16, 16]");
	CHECK(!d.attn_heads && !d.mlps && !d.image_embeds);
	struct rf_decomposer_stats st;
	rf_decomposer_get_stats(dec, &st);
	CHECK(st.runs == 0 && st.scratch_builds == 0);
	rf_tensor_destroy(small);
	rf_decomposer_destroy(dec);
	rf_decomposer_destroy(NULL);
	rf_decomposition_fini(&d);   /* zeroed: fine */

	/* A decomposer may outlive its model (it touches only what it made). */
	rf_clip *other = load_tiny(ctx);
	CHECK_OK(rf_decomposer_create(other, NULL, &dec));
	CHECK_OK(rf_decomposer_run(dec, pixels, &d));
	rf_decomposition_fini(&d);
	rf_clip_destroy(other);
	rf_decomposer_destroy(dec);
}

/* }===== */

int main(void)
{
	rf_ctx *ctx = rf_test_ctx();
	rf_rand_seed(20240907);
	const char *ref = rf_test_data("tiny-gelu/reference.safetensors");
	const char *textspan = rf_test_data("tiny-gelu/textspan.safetensors");
	test_accumulate(ctx);
	test_scale_values(ctx);
	test_extra(ctx);
	test_finish(ctx);
	test_kernel_misuse(ctx);
	rf_clip *m = load_tiny(ctx);
	rf_tensor *pixels = rf_golden_read(ref, "pixels");
	test_decomposition(m, pixels, ref);
	test_reductions(m, pixels, textspan);
	test_dataset_components(m, textspan);
	test_hf_layout(ctx, m, pixels);
	test_dataset_batches(m, textspan);
	test_projected_batches(m, textspan);
	test_misuse(ctx, m, pixels);
	rf_tensor_destroy(pixels);
	rf_clip_destroy(m);
	return rf_test_finish();
}
