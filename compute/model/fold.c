/*
** fold.c: folding ln_post, proj, an optional projection and each layer's out_proj into the
** per-head matrices of the decomposition (see fold.h). Compute layer (L5; host BLAS).
*/
#include "fold.h"
#include "status.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static enum rf_status projection_values(const rf_tensor *p, int dim, float **out, int *c)
{
	*out = NULL;
	char got[96];
	if (p->dtype != RF_F32 || p->shape.ndim != 2 || p->shape.dim[0] != dim || p->shape.dim[1] < 1)
		return rf_error(RF_ERR_INVALID, "the projection must be f32 [%d, C] (embedding dim x "
				"directions), got %s %s", dim, rf_dtype_name(p->dtype),
				rf_shape_str(&p->shape, got, sizeof got));
	*c = (int)p->shape.dim[1];
	*out = malloc(rf_tensor_nbytes(p));
	if (!*out)
		return rf_error(RF_ERR_OOM_HOST, "reading the projection");
	enum rf_status s = rf_tensor_download(p, *out, rf_tensor_nbytes(p));
	/* A NaN direction makes every projected term NaN, and argmax then picks a class
	** without a word. */
	size_t at;
	if (s == RF_OK && rf_find_nonfinite(RF_F32, *out, (size_t)rf_shape_numel(&p->shape), &at))
		s = rf_error(RF_ERR_INVALID, "the projection holds %s at row %zu, column %zu: its "
			     "directions must be finite", isnan((*out)[at]) ? "NaN" : "infinity",
			     at / (size_t)*c + 1, at % (size_t)*c + 1);
	if (s != RF_OK) {
		free(*out);
		*out = NULL;
	}
	return s;
}

static enum rf_status read_vector(rf_clip *m, const char *logical, int layer, int n, double *out)
{
	char name[256];
	float *tmp = malloc((size_t)n * sizeof *tmp);
	if (!tmp)
		return rf_error(RF_ERR_OOM_HOST, "folding");
	rf_clip_tensor_name(m, logical, layer, name, sizeof name);
	struct rf_shape s = rf_shape_of(1, (int64_t)n);
	enum rf_status st = rf_clip_read_f32(m, name, &s, tmp);
	for (int i = 0; i < n; i++)
		out[i] = tmp[i];
	free(tmp);
	return st;
}

/* proj as [W, D] in double, whichever way the checkpoint stores it. */
static enum rf_status read_proj(rf_clip *m, double *out)
{
	const struct rf_clip_config *c = &m->cfg;
	int64_t w = c->vision.width, d = c->embed_dim;
	bool stored_wd = c->layout == RF_LAYOUT_OPEN_CLIP;
	struct rf_shape s = stored_wd ? rf_shape_of(2, w, d) : rf_shape_of(2, d, w);
	float *tmp = malloc((size_t)(w * d) * sizeof *tmp);
	if (!tmp)
		return rf_error(RF_ERR_OOM_HOST, "folding");
	char name[256];
	rf_clip_tensor_name(m, "vision.proj", 0, name, sizeof name);
	enum rf_status st = rf_clip_read_f32(m, name, &s, tmp);
	for (int64_t i = 0; i < w; i++)
		for (int64_t j = 0; j < d; j++)
			out[i * d + j] = stored_wd ? tmp[i * d + j] : tmp[j * w + i];
	free(tmp);
	return st;
}

static enum rf_status upload_double(rf_ctx *ctx, const double *v, int rows, int cols, rf_tensor **out)
{
	size_t n = (size_t)rows * (size_t)cols;
	float *f = malloc(n * sizeof *f);
	if (!f)
		return rf_error(RF_ERR_OOM_HOST, "folding");
	for (size_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	struct rf_shape s = rf_shape_of(2, (int64_t)rows, (int64_t)cols);
	enum rf_status st = rf_tensor_create(ctx, RF_F32, &s, out);
	if (st == RF_OK)
		st = rf_tensor_upload(*out, f, n * sizeof *f);
	free(f);
	return st;
}

/* GP = diag(gamma) proj P, centred over W for exact centring; also g1P and bpP. */
static enum rf_status build_gp(rf_clip *m, const float *p, int cdim, struct rf_fold *f, double *gp)
{
	int w = f->width, d = m->cfg.embed_dim;
	double *proj = malloc((size_t)w * (size_t)d * sizeof *proj);
	double *pp = malloc((size_t)w * (size_t)cdim * sizeof *pp);
	double *gamma = malloc((size_t)w * sizeof *gamma), *beta = malloc((size_t)w * sizeof *beta);
	enum rf_status s = RF_OK;
	if (!proj || !pp || !gamma || !beta)
		s = rf_error(RF_ERR_OOM_HOST, "folding");
	if (s == RF_OK && (s = read_proj(m, proj)) == RF_OK &&
	    (s = read_vector(m, "vision.ln_post.w", 0, w, gamma)) == RF_OK &&
	    (s = read_vector(m, "vision.ln_post.b", 0, w, beta)) == RF_OK) {
		if (p) {
			double *pd = malloc((size_t)d * (size_t)cdim * sizeof *pd);
			if (!pd) {
				s = rf_error(RF_ERR_OOM_HOST, "folding");
			} else {
				for (size_t i = 0; i < (size_t)d * (size_t)cdim; i++)
					pd[i] = p[i];
				cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, w, cdim, d, 1.0, proj, d,
					    pd, cdim, 0.0, pp, cdim);
				free(pd);
			}
		} else {
			memcpy(pp, proj, (size_t)w * (size_t)d * sizeof *pp);
		}
	}
	if (s == RF_OK) {
		for (int c = 0; c < cdim; c++) {
			double g1 = 0, bp = 0;
			for (int i = 0; i < w; i++) {
				gp[(size_t)i * cdim + c] = gamma[i] * pp[(size_t)i * cdim + c];
				g1 += gp[(size_t)i * cdim + c];
				bp += beta[i] * pp[(size_t)i * cdim + c];
			}
			f->bpp[c] = bp;
			f->g1p[c] = f->centering == RF_CENTER_EXACT ? 0.0 : g1;
			if (f->centering == RF_CENTER_EXACT)
				for (int i = 0; i < w; i++)
					gp[(size_t)i * cdim + c] -= g1 / w;
		}
	}
	free(proj);
	free(pp);
	free(gamma);
	free(beta);
	return s;
}

/* Head blocks of dh rows of ml [W, C], each followed by cb/(N H), bpP and g1P. */
static void extend(const struct rf_fold *f, int tokens, const double *ml, const double *cb, double *out)
{
	int dh = f->head_width, cdim = f->dim, rows = dh + RF_FOLD_EXTRA;
	for (int h = 0; h < f->heads; h++) {
		double *block = out + (size_t)h * rows * cdim;
		memcpy(block, ml + (size_t)h * dh * cdim, (size_t)dh * cdim * sizeof *block);
		for (int c = 0; c < cdim; c++) {
			block[(size_t)dh * cdim + c] = cb[c] / ((double)tokens * f->heads);
			block[(size_t)(dh + 1) * cdim + c] = f->bpp[c];
			block[(size_t)(dh + 2) * cdim + c] = f->g1p[c];
			block[(size_t)(dh + 3) * cdim + c] = 0.0;
		}
	}
}

/* M[l] (extended) and cb[l] = out_proj.bias GP for every layer. */
static enum rf_status build_layers(rf_clip *m, const double *gp, struct rf_fold *f)
{
	int w = f->width, cdim = f->dim;
	size_t ext_rows = (size_t)f->heads * (size_t)(f->head_width + RF_FOLD_EXTRA);
	double *ext = malloc(ext_rows * (size_t)cdim * sizeof *ext);
	struct rf_shape sw = rf_shape_of(2, (int64_t)w, (int64_t)w);
	float *wf = malloc((size_t)w * (size_t)w * sizeof *wf);
	double *wd = malloc((size_t)w * (size_t)w * sizeof *wd);
	double *ml = malloc((size_t)w * (size_t)cdim * sizeof *ml);
	double *bias = malloc((size_t)w * sizeof *bias);
	enum rf_status s = (wf && wd && ml && bias && ext) ? RF_OK : rf_error(RF_ERR_OOM_HOST, "folding");
	for (int l = 0; l < f->layers && s == RF_OK; l++) {
		char name[256];
		rf_clip_tensor_name(m, "vision.block.out.w", l, name, sizeof name);
		if ((s = rf_clip_read_f32(m, name, &sw, wf)) != RF_OK ||
		    (s = read_vector(m, "vision.block.out.b", l, w, bias)) != RF_OK)
			break;
		for (size_t i = 0; i < (size_t)w * (size_t)w; i++)
			wd[i] = wf[i];
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, cdim, w, 1.0, wd, w, gp, cdim, 0.0,
			    ml, cdim);
		cblas_dgemv(CblasRowMajor, CblasTrans, w, cdim, 1.0, gp, cdim, bias, 1, 0.0,
			    f->cb + (size_t)l * (size_t)cdim, 1);
		extend(f, m->cfg.tokens, ml, f->cb + (size_t)l * (size_t)cdim, ext);
		s = upload_double(m->ctx, ext, (int)ext_rows, cdim, &f->m[l]);
	}
	free(ext);
	free(wf);
	free(wd);
	free(ml);
	free(bias);
	return s;
}

enum rf_status rf_fold_build(rf_clip *m, const rf_tensor *projection, enum rf_centering centering,
			     struct rf_fold **out)
{
	*out = NULL;
	const struct rf_clip_config *c = &m->cfg;
	float *p = NULL;
	int cdim = c->embed_dim;
	enum rf_status s = RF_OK;
	if (projection && (s = projection_values(projection, c->embed_dim, &p, &cdim)) != RF_OK)
		return s;
	struct rf_fold *f = calloc(1, sizeof *f);
	double *gp = malloc((size_t)c->vision.width * (size_t)cdim * sizeof *gp);
	if (!f || !gp) {
		free(f);
		free(gp);
		free(p);
		return rf_error(RF_ERR_OOM_HOST, "folding");
	}
	f->centering = centering;
	f->width = c->vision.width;
	f->dim = cdim;
	f->heads = c->vision.heads;
	f->head_width = c->vision.head_width;
	f->layers = c->vision.layers;
	f->m = calloc((size_t)f->layers, sizeof *f->m);
	f->cb = calloc((size_t)f->layers * (size_t)cdim, sizeof *f->cb);
	f->g1p = calloc((size_t)cdim, sizeof *f->g1p);
	f->bpp = calloc((size_t)cdim, sizeof *f->bpp);
	if (!f->m || !f->cb || !f->g1p || !f->bpp)
		s = rf_error(RF_ERR_OOM_HOST, "folding");
	if (s == RF_OK)
		s = build_gp(m, p, cdim, f, gp);
	if (s == RF_OK)
		s = upload_double(m->ctx, gp, f->width, cdim, &f->gp);
	if (s == RF_OK)
		s = build_layers(m, gp, f);
	free(gp);
	free(p);
	if (s != RF_OK) {
		rf_fold_destroy(f);
		return s;
	}
	*out = f;
	return RF_OK;
}

void rf_fold_destroy(struct rf_fold *f)
{
	if (!f)
		return;
	rf_tensor_destroy(f->gp);
	for (int l = 0; l < f->layers && f->m; l++)
		rf_tensor_destroy(f->m[l]);
	free(f->m);
	free(f->cb);
	free(f->g1p);
	free(f->bpp);
	free(f);
}
