/*
** test_intervene.c: edits and taps of the vision forward (intervene.h) on the tiny-gelu
** model: every tap's shape and an independent host recomputation of each step from the
** previous tap; edits that write back what was there leave the embeddings bit-identical
** to rf_clip_encode_images; zero, mean and replace edits put exactly their values where
** the taps see them, in order; zero-ablating a last-layer head moves the CLS stream by
** exactly that head's direct contribution as rf_clip_decompose reports it. (Misuse:
** test_intervene_errors.c.)
*/
#include "harness.h"
#include "golden.h"
#include "intervene_fixture.h"
#include "context.h"
#include "decompose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LayerNorm's epsilon as the golden's definition of the forward pass states it
** (tests/data/tiny-gelu/README.md, "Model": sqrt(var + 1e-5)), not as the model under
** test reads it from its config, so that the host steps below stay independent of it. */
static const double LN_EPS = 1e-5;

static float *e0;              /* the golden images' rf_clip_encode_images embeddings */

/* {===== helpers */

static float *host(const rf_tensor *t)
{
	if (!t) {
		fprintf(stderr, "a result is missing; stopping\n");
		rf_test_failures++;
		exit(rf_test_finish());
	}
	return rf_test_download(t);
}

/* A weight of the checkpoint as malloc'd floats ("%d" in `fmt` is the layer). */
static float *weight(const char *fmt, int layer)
{
	char name[160];
	snprintf(name, sizeof name, fmt, layer);
	rf_tensor *t = rf_golden_read(model_file, name);
	if (!t)
		exit(rf_test_finish());
	float *v = malloc(rf_tensor_nbytes(t));
	memcpy(v, t->host, rf_tensor_nbytes(t));
	rf_tensor_destroy(t);
	return v;
}

static bool same_bits(const char *label, const float *a, const float *b, size_t n)
{
	bool same = memcmp(a, b, n * sizeof *a) == 0;
	printf("%-48s %s\n", label, same ? "bit-identical" : "DIFFER");
	if (!same)
		rf_test_failures++;
	return same;
}

/* Checks every element of `x` (count n) equals the matching one of `want`, where the
** want index is i % period (a value broadcast over the leading axes). */
static void check_broadcast(const char *label, const float *x, size_t n, const float *want, size_t period)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += memcmp(&x[i], &want[i % period], sizeof *x) != 0;
	printf("%-48s %s\n", label, bad ? "DIFFER" : "exact");
	if (bad)
		rf_test_failures++;
}

/* A host f32 tensor holding a copy of `data`. */
static rf_tensor *host_tensor(const struct rf_shape *s, const float *data)
{
	rf_tensor *t = NULL;
	CHECK_OK(rf_tensor_from_host_data(RF_F32, s, data, &t));
	if (!t)
		exit(rf_test_finish());
	return t;
}

/* Columns [c0, c0 + width) of a [rows, cols] matrix as a new malloc'd [rows, width] one. */
static float *columns(const float *x, size_t rows, size_t cols, size_t c0, size_t width)
{
	float *out = malloc(rows * width * sizeof *out);
	for (size_t r = 0; r < rows; r++)
		memcpy(out + r * width, x + r * cols + c0, width * sizeof *out);
	return out;
}

/* }===== */

/* {===== host reference steps (double accumulation) */

static void layernorm(const float *x, size_t rows, size_t cols, const float *g, const float *b, double *out)
{
	for (size_t r = 0; r < rows; r++) {
		const float *row = x + r * cols;
		double mean = 0, var = 0;
		for (size_t c = 0; c < cols; c++)
			mean += row[c];
		mean /= (double)cols;
		for (size_t c = 0; c < cols; c++)
			var += (row[c] - mean) * (row[c] - mean);
		double inv = 1.0 / sqrt(var / (double)cols + LN_EPS);
		for (size_t c = 0; c < cols; c++)
			out[r * cols + c] = (row[c] - mean) * inv * g[c] + b[c];
	}
}

/* y = x·wᵀ + b with w [out, in] (PyTorch's Linear layout). */
static void linear(const double *x, size_t rows, size_t in, const float *w, const float *b, size_t outc,
		   double *y)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t o = 0; o < outc; o++) {
			double acc = b ? b[o] : 0;
			for (size_t i = 0; i < in; i++)
				acc += x[r * in + i] * w[o * in + i];
			y[r * outc + o] = acc;
		}
}

static double *widen(const float *x, size_t n)
{
	double *y = malloc(n * sizeof *y);
	for (size_t i = 0; i < n; i++)
		y[i] = x[i];
	return y;
}

/* e = ln_post(stream[b, CLS]) · proj for every image of a [B, N, W] stream. */
static void embed_from_stream(const float *stream, double *e)
{
	float *g = weight("visual.ln_post.weight", 0), *bt = weight("visual.ln_post.bias", 0);
	float *proj = weight("visual.proj", 0);
	float *cls = malloc((size_t)W * sizeof *cls);
	double *u = malloc((size_t)W * sizeof *u);
	for (int b = 0; b < B; b++) {
		memcpy(cls, stream + (size_t)b * N * W, (size_t)W * sizeof *cls);
		layernorm(cls, 1, (size_t)W, g, bt, u);
		for (int d = 0; d < D; d++) {
			double acc = 0;
			for (int j = 0; j < W; j++)
				acc += u[j] * proj[(size_t)j * D + d];
			e[(size_t)b * D + d] = acc;
		}
	}
	free(g), free(bt), free(proj), free(cls), free(u);
}

/* }===== */

/* {===== taps of a plain run */

/* Every tap of every layer: EMBED at 0, then layer l's sites at 1 + l*10 + (site - 1). */
static int tap_slot(enum rf_tap_site site, int layer)
{
	return site == RF_TAP_EMBED ? 0 : 1 + layer * 10 + ((int)site - 1);
}

static struct rf_tap *all_taps(int *count)
{
	*count = 1 + 10 * L;
	struct rf_tap *t = calloc((size_t)*count, sizeof *t);
	t[0].site = RF_TAP_EMBED;
	for (int l = 0; l < L; l++)
		for (int s = RF_TAP_RESID_PRE; s <= RF_TAP_MLP_OUT; s++)
			t[tap_slot(s, l)] = (struct rf_tap){ .site = s, .layer = l };
	return t;
}

static void check_shapes(const struct rf_tap *taps, int count)
{
	bool ok = true;
	for (int i = 0; i < count; i++) {
		const rf_tensor *t = taps[i].out;
		struct rf_shape want;
		switch (taps[i].site) {
		case RF_TAP_PROBS: want = rf_shape_of(4, (int64_t)B, (int64_t)H, (int64_t)N, (int64_t)N); break;
		case RF_TAP_MLP_HIDDEN: want = rf_shape_of(3, (int64_t)B, (int64_t)N, (int64_t)MLP); break;
		default: want = rf_shape_of(3, (int64_t)B, (int64_t)N, (int64_t)W);
		}
		if (!t || t->dtype != RF_F32 || !rf_tensor_on_device(t) || !rf_shape_equal(&t->shape, &want)) {
			char got[96] = "none", exp[96];
			if (t)
				rf_shape_str(&t->shape, got, sizeof got);
			fprintf(stderr, "tap %s.%d: shape %s, want f32 device %s\n", rf_tap_site_name(taps[i].site),
				taps[i].layer, got, rf_shape_str(&want, exp, sizeof exp));
			ok = false;
		}
	}
	printf("%-48s %s\n", "tap shapes as documented", ok ? "ok" : "FAIL");
	if (!ok)
		exit(rf_test_finish());
}

/* q, k, v = ln_1(resid_pre)·in_projᵀ + b. */
static void check_qkv(int l, const float *pre, const float *q, const float *k, const float *v)
{
	size_t rows = (size_t)B * N;
	float *g = weight("visual.transformer.resblocks.%d.ln_1.weight", l);
	float *bt = weight("visual.transformer.resblocks.%d.ln_1.bias", l);
	float *w = weight("visual.transformer.resblocks.%d.attn.in_proj_weight", l);
	float *bias = weight("visual.transformer.resblocks.%d.attn.in_proj_bias", l);
	double *u = malloc(rows * W * sizeof *u), *qkv = malloc(rows * 3 * W * sizeof *qkv);
	double *ref = malloc(rows * W * sizeof *ref);
	layernorm(pre, rows, (size_t)W, g, bt, u);
	linear(u, rows, (size_t)W, w, bias, (size_t)3 * W, qkv);
	const float *got[3] = { q, k, v };
	static const char *names[3] = { "q", "k", "v" };
	for (int part = 0; part < 3; part++) {
		for (size_t r = 0; r < rows; r++)
			for (int c = 0; c < W; c++)
				ref[r * W + c] = qkv[r * 3 * W + (size_t)part * W + c];
		char label[64];
		snprintf(label, sizeof label, "tap %s.%d vs host", names[part], l);
		rf_compare(label, got[part], ref, rows * W, 1e-5, 1e-5);
	}
	free(g), free(bt), free(w), free(bias), free(u), free(qkv), free(ref);
}

/* probs = softmax(q_h·k_hᵀ / sqrt(dh)), rows summing to 1; heads = probs·v per head. */
static void check_attention(int l, const float *q, const float *k, const float *v, const float *probs,
			    const float *heads)
{
	size_t np = (size_t)B * H * N * N, nh = (size_t)B * N * W;
	double *pref = malloc(np * sizeof *pref), *href = malloc(nh * sizeof *href);
	double worst_sum = 0, most_negative = 0;
	for (int b = 0; b < B; b++)
		for (int h = 0; h < H; h++)
			for (int n = 0; n < N; n++) {
				double *p = pref + (((size_t)b * H + h) * N + n) * N, mx = -INFINITY, z = 0;
				for (int m = 0; m < N; m++) {
					double s = 0;
					for (int j = 0; j < DH; j++)
						s += (double)q[((size_t)b * N + n) * W + h * DH + j] *
						     k[((size_t)b * N + m) * W + h * DH + j];
					p[m] = s / sqrt((double)DH);
					mx = fmax(mx, p[m]);
				}
				for (int m = 0; m < N; m++)
					z += (p[m] = exp(p[m] - mx));
				const float *row = probs + (((size_t)b * H + h) * N + n) * N;
				double sum = 0;
				for (int m = 0; m < N; m++) {
					p[m] /= z;
					sum += row[m];
					most_negative = fmin(most_negative, row[m]);
				}
				worst_sum = fmax(worst_sum, fabs(sum - 1));
				for (int j = 0; j < DH; j++) {
					double acc = 0;
					for (int m = 0; m < N; m++)
						acc += (double)row[m] * v[((size_t)b * N + m) * W + h * DH + j];
					href[((size_t)b * N + n) * W + h * DH + j] = acc;
				}
			}
	char label[64];
	snprintf(label, sizeof label, "tap probs.%d vs host softmax", l);
	rf_compare(label, probs, pref, np, 1e-6, 1e-5);
	printf("%-48s max |sum - 1| = %.3e, min = %g\n", "probs rows", worst_sum, most_negative);
	CHECK(worst_sum <= 1e-5 && most_negative >= 0);
	snprintf(label, sizeof label, "tap heads.%d vs probs·v", l);
	rf_compare(label, heads, href, nh, 1e-6, 1e-5);
	free(pref), free(href);
}

/* attn_out = heads·out_projᵀ + b; mlp_hidden = gelu(ln_2(pre + attn_out)·c_fcᵀ + b);
** mlp_out = mlp_hidden·c_projᵀ + b; resid_post = (pre + attn_out) + mlp_out in f32. */
static void check_branches(int l, const float *pre, const float *heads, const float *attn,
			   const float *hidden, const float *mlp, const float *post)
{
	size_t rows = (size_t)B * N;
	float *wo = weight("visual.transformer.resblocks.%d.attn.out_proj.weight", l);
	float *bo = weight("visual.transformer.resblocks.%d.attn.out_proj.bias", l);
	float *g = weight("visual.transformer.resblocks.%d.ln_2.weight", l);
	float *bt = weight("visual.transformer.resblocks.%d.ln_2.bias", l);
	float *wf = weight("visual.transformer.resblocks.%d.mlp.c_fc.weight", l);
	float *bf = weight("visual.transformer.resblocks.%d.mlp.c_fc.bias", l);
	float *wp = weight("visual.transformer.resblocks.%d.mlp.c_proj.weight", l);
	float *bp = weight("visual.transformer.resblocks.%d.mlp.c_proj.bias", l);
	double *x = widen(heads, rows * W), *ref = malloc(rows * MLP * sizeof *ref);
	double *u = malloc(rows * W * sizeof *u);
	float *mid = malloc(rows * W * sizeof *mid), *sum = malloc(rows * W * sizeof *sum);
	char label[64];
	linear(x, rows, (size_t)W, wo, bo, (size_t)W, ref);
	snprintf(label, sizeof label, "tap attn_out.%d vs heads·out_proj", l);
	rf_compare(label, attn, ref, rows * W, 1e-5, 1e-5);
	for (size_t i = 0; i < rows * W; i++)
		mid[i] = pre[i] + attn[i];
	layernorm(mid, rows, (size_t)W, g, bt, u);
	linear(u, rows, (size_t)W, wf, bf, (size_t)MLP, ref);
	for (size_t i = 0; i < rows * MLP; i++)
		ref[i] = 0.5 * ref[i] * (1 + erf(ref[i] / sqrt(2.0)));
	snprintf(label, sizeof label, "tap mlp_hidden.%d vs host", l);
	rf_compare(label, hidden, ref, rows * MLP, 1e-5, 1e-5);
	free(x);
	x = widen(hidden, rows * MLP);
	linear(x, rows, (size_t)MLP, wp, bp, (size_t)W, ref);
	snprintf(label, sizeof label, "tap mlp_out.%d vs hidden·c_proj", l);
	rf_compare(label, mlp, ref, rows * W, 1e-5, 1e-5);
	/* The stream is updated by two f32 additions; so is this. */
	for (size_t i = 0; i < rows * W; i++)
		sum[i] = mid[i] + mlp[i];
	snprintf(label, sizeof label, "resid_post.%d = pre + attn_out + mlp_out", l);
	same_bits(label, post, sum, rows * W);
	free(wo), free(bo), free(g), free(bt), free(wf), free(bf), free(wp), free(bp);
	free(x), free(ref), free(u), free(mid), free(sum);
}

/* A plain run with every tap: shapes, the chain of host steps, and the embeddings. */
static void test_taps(void)
{
	int count;
	struct rf_tap *taps = all_taps(&count);
	rf_tensor *embeds = NULL;
	run_intervene(NULL, 0, taps, count, pixels, &embeds);
	check_shapes(taps, count);
	float *e = host(embeds);
	same_bits("embeds with every tap = encode_images", e, e0, (size_t)B * D);
	size_t nw = (size_t)B * N * W;
	float *prev = host(taps[0].out);
	for (int l = 0; l < L; l++) {
		float *t[11];
		for (int s = RF_TAP_RESID_PRE; s <= RF_TAP_MLP_OUT; s++)
			t[s] = host(taps[tap_slot(s, l)].out);
		char label[64];
		snprintf(label, sizeof label, "resid_pre.%d = %s", l, l ? "previous resid_post" : "embed");
		same_bits(label, t[RF_TAP_RESID_PRE], prev, nw);
		check_qkv(l, t[RF_TAP_RESID_PRE], t[RF_TAP_Q], t[RF_TAP_K], t[RF_TAP_V]);
		check_attention(l, t[RF_TAP_Q], t[RF_TAP_K], t[RF_TAP_V], t[RF_TAP_PROBS], t[RF_TAP_HEADS]);
		check_branches(l, t[RF_TAP_RESID_PRE], t[RF_TAP_HEADS], t[RF_TAP_ATTN_OUT],
			       t[RF_TAP_MLP_HIDDEN], t[RF_TAP_MLP_OUT], t[RF_TAP_RESID_POST]);
		free(prev);
		prev = t[RF_TAP_RESID_POST];
		for (int s = RF_TAP_RESID_PRE; s <= RF_TAP_MLP_OUT; s++)
			if (s != RF_TAP_RESID_POST)
				free(t[s]);
	}
	double *ref = malloc((size_t)B * D * sizeof *ref);
	embed_from_stream(prev, ref);
	rf_compare("ln_post(resid_post[L-1] CLS)·proj = embeds", e, ref, (size_t)B * D, 1e-5, 1e-5);
	free(ref), free(prev), free(e);
	rf_tensor_destroy(embeds);
	free_taps(taps, count);
	free(taps);
}

/* }===== */

/* {===== edits that change nothing */

/* Replaces each component at `layer` with its own tapped value (one edit at a time,
** then all four together): the embeddings stay bit-identical. */
static void test_noop_replace(int layer, int head, int token)
{
	struct rf_tap taps[3] = { { RF_TAP_HEADS, layer, NULL }, { RF_TAP_ATTN_OUT, layer, NULL },
				  { RF_TAP_MLP_OUT, layer, NULL } };
	struct rf_tap vtap = { RF_TAP_V, layer, NULL };
	rf_tensor *embeds = NULL;
	run_intervene(NULL, 0, taps, 3, pixels, &embeds);
	rf_tensor_destroy(embeds);
	run_intervene(NULL, 0, &vtap, 1, pixels, &embeds);
	rf_tensor_destroy(embeds);
	/* A head's columns and a token's value row, cut on the host (host values). */
	float *heads = host(taps[0].out), *v = host(vtap.out);
	float *hcols = columns(heads, (size_t)B * N, (size_t)W, (size_t)head * DH, (size_t)DH);
	float *vrow = malloc((size_t)B * W * sizeof *vrow);
	for (int b = 0; b < B; b++)
		memcpy(vrow + (size_t)b * W, v + ((size_t)b * N + token) * W, (size_t)W * sizeof *vrow);
	struct rf_shape sh = rf_shape_of(3, (int64_t)B, (int64_t)N, (int64_t)DH), sv = rf_shape_of(2, (int64_t)B, (int64_t)W);
	rf_tensor *hval = host_tensor(&sh, hcols), *vval = host_tensor(&sv, vrow);
	struct rf_edit edits[4] = {
		{ RF_SITE_HEAD, layer, head, RF_EDIT_REPLACE, hval },
		{ RF_SITE_ATTN, layer, 0, RF_EDIT_REPLACE, taps[1].out },   /* device values */
		{ RF_SITE_MLP, layer, 0, RF_EDIT_REPLACE, taps[2].out },
		{ RF_SITE_TOKEN, layer, token, RF_EDIT_REPLACE, vval },
	};
	static const char *what[4] = { "head", "attn", "mlp", "token" };
	for (int i = 0; i <= 4; i++) {
		run_intervene(i < 4 ? &edits[i] : edits, i < 4 ? 1 : 4, NULL, 0, pixels, &embeds);
		float *e = host(embeds);
		char label[80];
		snprintf(label, sizeof label, "layer %d: replace %s with its own value", layer, i < 4 ? what[i] : "all four");
		same_bits(label, e, e0, (size_t)B * D);
		free(e);
		rf_tensor_destroy(embeds);
	}
	free(heads), free(v), free(hcols), free(vrow);
	rf_tensor_destroy(hval), rf_tensor_destroy(vval);
	free_taps(taps, 3);
	free_taps(&vtap, 1);
}

/* With one image, a mean equal to that image's own values is a no-op too (for every
** site, with the [N, width] form; a token takes [W]). */
static void test_noop_mean(int layer, int head, int token)
{
	rf_tensor *one = NULL, *e1 = NULL, *embeds = NULL;
	CHECK_OK(rf_tensor_rows(ctx, pixels, 2, 1, &one));
	CHECK_OK(rf_clip_encode_images(model, one, &e1));
	struct rf_tap taps[4] = { { RF_TAP_HEADS, layer, NULL }, { RF_TAP_ATTN_OUT, layer, NULL },
				  { RF_TAP_MLP_OUT, layer, NULL }, { RF_TAP_V, layer, NULL } };
	run_intervene(NULL, 0, taps, 4, one, &embeds);
	rf_tensor_destroy(embeds);
	float *heads = host(taps[0].out), *attn = host(taps[1].out), *mlp = host(taps[2].out), *v = host(taps[3].out);
	float *hcols = columns(heads, (size_t)N, (size_t)W, (size_t)head * DH, (size_t)DH);
	struct rf_shape sh = rf_shape_of(2, (int64_t)N, (int64_t)DH), sw = rf_shape_of(2, (int64_t)N, (int64_t)W);
	struct rf_shape sv = rf_shape_of(1, (int64_t)W);
	rf_tensor *vals[4] = { host_tensor(&sh, hcols), host_tensor(&sw, attn), host_tensor(&sw, mlp),
			       host_tensor(&sv, v + (size_t)token * W) };
	struct rf_edit edits[4] = {
		{ RF_SITE_HEAD, layer, head, RF_EDIT_MEAN, vals[0] },
		{ RF_SITE_ATTN, layer, 0, RF_EDIT_MEAN, vals[1] },
		{ RF_SITE_MLP, layer, 0, RF_EDIT_MEAN, vals[2] },
		{ RF_SITE_TOKEN, layer, token, RF_EDIT_MEAN, vals[3] },
	};
	float *want = host(e1);
	for (int i = 0; i < 4; i++) {
		run_intervene(&edits[i], 1, NULL, 0, one, &embeds);
		float *e = host(embeds);
		char label[80];
		snprintf(label, sizeof label, "layer %d: mean-ablate %s with its own value", layer,
			 (const char *[]){ "head", "attn", "mlp", "token" }[i]);
		same_bits(label, e, want, (size_t)D);
		free(e);
		rf_tensor_destroy(embeds);
	}
	for (int i = 0; i < 4; i++)
		rf_tensor_destroy(vals[i]);
	free(heads), free(attn), free(mlp), free(v), free(hcols), free(want);
	free_taps(taps, 4);
	rf_tensor_destroy(one), rf_tensor_destroy(e1);
}

/* }===== */

/* {===== edits that change something */

/* Zero-ablating head 2 of layer 1: its columns of the heads tap are exactly 0, the other
** heads keep their bits, the stream before the layer is untouched, the output changes. */
static void test_zero_head(void)
{
	const int layer = 1, head = 2;
	struct rf_tap clean[2] = { { RF_TAP_HEADS, layer, NULL }, { RF_TAP_RESID_PRE, layer, NULL } };
	struct rf_tap after[2] = { { RF_TAP_HEADS, layer, NULL }, { RF_TAP_RESID_PRE, layer, NULL } };
	struct rf_edit zero = { RF_SITE_HEAD, layer, head, RF_EDIT_ZERO, NULL };
	rf_tensor *embeds = NULL;
	run_intervene(NULL, 0, clean, 2, pixels, &embeds);
	rf_tensor_destroy(embeds);
	run_intervene(&zero, 1, after, 2, pixels, &embeds);
	float *c = host(clean[0].out), *a = host(after[0].out), *pc = host(clean[1].out), *pa = host(after[1].out);
	size_t rows = (size_t)B * N, zeros = 0, kept = 0;
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < W; j++) {
			size_t i = r * W + (size_t)j;
			if (j / DH == head)
				zeros += a[i] == 0.0f && !signbit(a[i]);
			else
				kept += memcmp(&a[i], &c[i], sizeof *a) == 0;
		}
	printf("%-48s %zu of %zu zero, %zu of %zu other entries kept\n", "zero head 2 of layer 1", zeros,
	       rows * DH, kept, rows * (W - DH));
	CHECK(zeros == rows * DH && kept == rows * (W - DH));
	same_bits("resid_pre.1 unchanged by a layer-1 edit", pa, pc, rows * W);
	float *e = host(embeds);
	CHECK(memcmp(e, e0, (size_t)B * D * sizeof *e) != 0);
	free(c), free(a), free(pc), free(pa), free(e);
	rf_tensor_destroy(embeds);
	free_taps(clean, 2);
	free_taps(after, 2);
}

/* Zeroed branches: the stream after the block is the stream before plus the other branch
** (exactly: adding +0 changes nothing), and a zeroed token's value row reads 0. */
static void test_zero_branches(void)
{
	struct rf_edit edits[3] = {
		{ RF_SITE_ATTN, 0, 0, RF_EDIT_ZERO, NULL },
		{ RF_SITE_MLP, L - 1, 0, RF_EDIT_ZERO, NULL },
		{ RF_SITE_TOKEN, 1, 0, RF_EDIT_ZERO, NULL },
	};
	struct rf_tap taps[7] = {
		{ RF_TAP_RESID_PRE, 0, NULL }, { RF_TAP_ATTN_OUT, 0, NULL }, { RF_TAP_MLP_OUT, 0, NULL },
		{ RF_TAP_RESID_POST, 0, NULL }, { RF_TAP_V, 1, NULL }, { RF_TAP_RESID_POST, L - 1, NULL },
		{ RF_TAP_ATTN_OUT, L - 1, NULL },
	};
	struct rf_tap pre_last = { RF_TAP_RESID_PRE, L - 1, NULL };
	rf_tensor *embeds = NULL;
	run_intervene(edits, 3, taps, 7, pixels, &embeds);
	rf_tensor_destroy(embeds);
	run_intervene(edits, 3, &pre_last, 1, pixels, &embeds);
	size_t nw = (size_t)B * N * W;
	float *t[7];
	for (int i = 0; i < 7; i++)
		t[i] = host(taps[i].out);
	float *pl = host(pre_last.out), *sum = calloc(nw, sizeof *sum);
	float zero = 0;
	check_broadcast("zeroed attention branch reads 0", t[1], nw, &zero, 1);
	for (size_t i = 0; i < nw; i++)
		sum[i] = t[0][i] + t[2][i];
	same_bits("resid_post.0 = resid_pre.0 + mlp_out.0", t[3], sum, nw);
	for (size_t i = 0; i < nw; i++)
		sum[i] = pl[i] + t[6][i];
	same_bits("resid_post.L-1 = resid_pre + attn_out", t[5], sum, nw);
	size_t bad = 0;
	for (int b = 0; b < B; b++)
		for (int j = 0; j < W; j++)
			bad += t[4][(size_t)b * N * W + (size_t)j] != 0.0f;
	printf("%-48s %s\n", "zeroed token 0 of layer 1: v row reads 0", bad ? "DIFFER" : "exact");
	CHECK(bad == 0);
	for (int i = 0; i < 7; i++)
		free(t[i]);
	free(pl), free(sum);
	rf_tensor_destroy(embeds);
	free_taps(taps, 7);
	free_taps(&pre_last, 1);
}

/* Mean values broadcast over images (and tokens for a row), replacements land per image,
** a token edit changes only that token's value row, and edits apply in order. */
static void test_values_land(void)
{
	const int layer = 1;
	size_t rows = (size_t)B * N;
	float vh[64], vw[256], *rep = malloc(rows * DH * sizeof *rep), *mean_nw = malloc((size_t)N * W * sizeof *mean_nw);
	rf_rand_seed(11);
	rf_rand_fill(vh, (size_t)DH, -2, 2);
	rf_rand_fill(vw, (size_t)W, -2, 2);
	rf_rand_fill(rep, rows * DH, -2, 2);
	rf_rand_fill(mean_nw, (size_t)N * W, -2, 2);
	struct rf_shape sdh = rf_shape_of(1, (int64_t)DH), sw = rf_shape_of(1, (int64_t)W);
	struct rf_shape srep = rf_shape_of(3, (int64_t)B, (int64_t)N, (int64_t)DH), snw = rf_shape_of(2, (int64_t)N, (int64_t)W);
	rf_tensor *th = rf_test_tensor(ctx, &sdh, vh), *tw = host_tensor(&sw, vw);
	rf_tensor *trep = host_tensor(&srep, rep), *tnw = rf_test_tensor(ctx, &snw, mean_nw);
	struct rf_edit edits[6] = {
		{ RF_SITE_HEAD, layer, 1, RF_EDIT_MEAN, th },
		{ RF_SITE_HEAD, layer, 3, RF_EDIT_REPLACE, trep },
		{ RF_SITE_ATTN, 0, 0, RF_EDIT_MEAN, tw },
		{ RF_SITE_MLP, 0, 0, RF_EDIT_MEAN, tnw },
		{ RF_SITE_TOKEN, layer, 3, RF_EDIT_MEAN, tw },
		/* in order: zero, then a mean on head 0 of the last layer; mean, then zero on head 1 */
		{ RF_SITE_HEAD, L - 1, 0, RF_EDIT_ZERO, NULL },
	};
	struct rf_edit tail[3] = {
		{ RF_SITE_HEAD, L - 1, 0, RF_EDIT_MEAN, th },
		{ RF_SITE_HEAD, L - 1, 1, RF_EDIT_MEAN, th },
		{ RF_SITE_HEAD, L - 1, 1, RF_EDIT_ZERO, NULL },
	};
	struct rf_edit all[9];
	memcpy(all, edits, sizeof edits);
	memcpy(all + 6, tail, sizeof tail);
	struct rf_tap taps[7] = {
		{ RF_TAP_HEADS, layer, NULL }, { RF_TAP_ATTN_OUT, 0, NULL }, { RF_TAP_MLP_OUT, 0, NULL },
		{ RF_TAP_V, layer, NULL }, { RF_TAP_HEADS, L - 1, NULL }, { RF_TAP_Q, layer, NULL },
		{ RF_TAP_K, layer, NULL },
	};
	/* The clean q, k and v of `layer` come from a run with only the earlier-layer edits. */
	struct rf_tap clean[3] = { { RF_TAP_V, layer, NULL }, { RF_TAP_Q, layer, NULL }, { RF_TAP_K, layer, NULL } };
	rf_tensor *embeds = NULL;
	run_intervene(all, 9, taps, 7, pixels, &embeds);
	rf_tensor_destroy(embeds);
	run_intervene(edits + 2, 2, clean, 3, pixels, &embeds);
	rf_tensor_destroy(embeds);
	float *heads = host(taps[0].out), *attn = host(taps[1].out), *mlp = host(taps[2].out);
	float *v = host(taps[3].out), *last = host(taps[4].out), *q = host(taps[5].out), *k = host(taps[6].out);
	float *v0 = host(clean[0].out), *q0 = host(clean[1].out), *k0 = host(clean[2].out);
	float *c1 = columns(heads, rows, (size_t)W, DH, (size_t)DH), *c3 = columns(heads, rows, (size_t)W, 3 * (size_t)DH, (size_t)DH);
	check_broadcast("mean [dh] fills a head at every token", c1, rows * DH, vh, (size_t)DH);
	check_broadcast("replace [B, N, dh] lands per image", c3, rows * DH, rep, rows * DH);
	check_broadcast("mean [W] fills the attention branch", attn, rows * W, vw, (size_t)W);
	check_broadcast("mean [N, W] fills the MLP branch per token", mlp, rows * W, mean_nw, (size_t)N * W);
	float *l0 = columns(last, rows, (size_t)W, 0, (size_t)DH), *l1 = columns(last, rows, (size_t)W, DH, (size_t)DH);
	float zero = 0;
	check_broadcast("zero then mean: the mean", l0, rows * DH, vh, (size_t)DH);
	check_broadcast("mean then zero: zero", l1, rows * DH, &zero, 1);
	size_t bad = 0, kept = 0;
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < W; j++) {
			size_t i = r * W + (size_t)j;
			if (r % (size_t)N == 3)
				bad += memcmp(&v[i], &vw[j], sizeof *v) != 0;
			else
				kept += memcmp(&v[i], &v0[i], sizeof *v) == 0;
		}
	printf("%-48s %s\n", "token mean: v row 3 = value, other rows kept",
	       !bad && kept == (rows - B) * W ? "exact" : "DIFFER");
	CHECK(bad == 0 && kept == (rows - B) * W);
	same_bits("token edit leaves q", q, q0, rows * W);
	same_bits("token edit leaves k", k, k0, rows * W);
	free(rep), free(mean_nw), free(heads), free(attn), free(mlp), free(v), free(last), free(q), free(k);
	free(v0), free(q0), free(k0), free(c1), free(c3), free(l0), free(l1);
	rf_tensor_destroy(th), rf_tensor_destroy(tw), rf_tensor_destroy(trep), rf_tensor_destroy(tnw);
	free_taps(taps, 7);
	free_taps(clean, 3);
}

/* }===== */

/* {===== the decomposition's direct effect */

/* Zero-ablating head h of the last layer, with that layer's MLP output held at its clean
** value (the MLP reads the attention output, so without that it would carry an indirect
** effect), moves the CLS stream by exactly c_h = sum_m alpha_h[0, m] v_h[m] W_O,hᵀ. With
** ln_post frozen at the clean run's mu and sigma, that move maps to
**   Phi(c_h) = attn_heads[L-1, h]·||e|| - Phi(b_O / H) + w Phi(mu) - w beta·proj,
** w = 1/(K H), Phi(t) = (gamma t / sigma)·proj: what rf_clip_decompose reports for the
** head, minus its share of the bias and of ln_post's constants (decompose.h). The ablated
** run's own embedding is also ln_post of its own stream. */
static void test_direct_effect(void)
{
	const int l = L - 1, K = 2 * L + 1;
	struct rf_decompose_options opt = { 0 };
	struct rf_decomposition d;
	CHECK_OK(rf_clip_decompose(model, pixels, &opt, &d));
	float *heads = host(d.attn_heads), *mu = host(d.ln_post_mean), *sigma = host(d.ln_post_std);
	float *e = host(d.image_embeds);
	float *g = weight("visual.ln_post.weight", 0), *beta = weight("visual.ln_post.bias", 0);
	float *proj = weight("visual.proj", 0), *bo = weight("visual.transformer.resblocks.%d.attn.out_proj.bias", l);
	struct rf_tap clean[2] = { { RF_TAP_MLP_OUT, l, NULL }, { RF_TAP_RESID_POST, l, NULL } };
	rf_tensor *embeds = NULL;
	run_intervene(NULL, 0, clean, 2, pixels, &embeds);
	rf_tensor_destroy(embeds);
	float *r = host(clean[1].out);
	double w = 1.0 / (K * H), worst = 0, scale = 0, worst_e = 0;
	double *got = malloc((size_t)B * D * sizeof *got), *want = malloc((size_t)B * D * sizeof *want);
	double *ref = malloc((size_t)B * D * sizeof *ref);
	for (int h = 0; h < H; h++) {
		struct rf_edit edits[2] = { { RF_SITE_HEAD, l, h, RF_EDIT_ZERO, NULL },
					    { RF_SITE_MLP, l, 0, RF_EDIT_REPLACE, clean[0].out } };
		struct rf_tap after = { RF_TAP_RESID_POST, l, NULL };
		run_intervene(edits, 2, &after, 1, pixels, &embeds);
		float *ra = host(after.out), *ea = host(embeds);
		for (int b = 0; b < B; b++) {
			double norm = 0;
			for (int c = 0; c < D; c++)
				norm += (double)e[b * D + c] * e[b * D + c];
			norm = sqrt(norm);
			for (int c = 0; c < D; c++) {
				double phi = 0, cst = 0;
				for (int j = 0; j < W; j++) {
					double delta = (double)r[(size_t)b * N * W + j] - ra[(size_t)b * N * W + j];
					double gp = g[j] * (double)proj[(size_t)j * D + c];
					phi += gp * delta / sigma[b];
					cst += gp * (bo[j] / H - w * mu[b]) / sigma[b] + w * beta[j] * proj[(size_t)j * D + c];
				}
				got[b * D + c] = phi;
				want[b * D + c] = heads[(((size_t)b * L + l) * H + h) * D + c] * norm - cst;
				worst = fmax(worst, fabs(got[b * D + c] - want[b * D + c]));
				scale = fmax(scale, fabs(want[b * D + c]));
			}
		}
		embed_from_stream(ra, ref);
		for (int i = 0; i < B * D; i++)
			worst_e = fmax(worst_e, fabs(ea[i] - ref[i]));
		free(ra), free(ea);
		rf_tensor_destroy(embeds);
		free_taps(&after, 1);
	}
	printf("%-48s max |error| = %.3e (largest %.3e)\n", "ablated head's move = its attn_heads term", worst, scale);
	CHECK(worst <= 2e-5 && scale > 1e-3);
	printf("%-48s max |error| = %.3e\n", "ablated embeds = ln_post(own stream)·proj", worst_e);
	CHECK(worst_e <= 1e-5);
	free(heads), free(mu), free(sigma), free(e), free(g), free(beta), free(proj), free(bo), free(r);
	free(got), free(want), free(ref);
	free_taps(clean, 2);
	rf_decomposition_fini(&d);
}

/* }===== */

int main(void)
{
	if (!intervene_fixture_setup()) {
		intervene_fixture_teardown();
		return rf_test_finish();
	}
	rf_tensor *e = NULL;
	CHECK_OK(rf_clip_encode_images(model, pixels, &e));
	e0 = host(e);
	rf_tensor_destroy(e);

	test_taps();
	test_noop_replace(1, 2, 5);
	test_noop_replace(L - 1, 0, 0);
	test_noop_mean(1, 3, 7);
	test_zero_head();
	test_zero_branches();
	test_values_land();
	test_direct_effect();

	free(e0);
	intervene_fixture_teardown();
	return rf_test_finish();
}
