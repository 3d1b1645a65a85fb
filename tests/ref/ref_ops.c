/*
** ref_ops.c: double-precision CPU references (see ref_ops.h).
*/
#include "ref_ops.h"

#include <math.h>
#include <stdlib.h>

double ref_unary(enum rf_unary_op op, double x)
{
	switch (op) {
	case RF_UN_NEG: return -x;
	case RF_UN_ABS: return fabs(x);
	case RF_UN_EXP: return exp(x);
	case RF_UN_LOG: return log(x);
	case RF_UN_SQRT: return sqrt(x);
	case RF_UN_RSQRT: return 1.0 / sqrt(x);
	case RF_UN_TANH: return tanh(x);
	case RF_UN_SIGMOID: return 1.0 / (1.0 + exp(-x));
	case RF_UN_RELU: return x > 0 ? x : 0;
	case RF_UN_SQUARE: return x * x;
	case RF_UN_SIN: return sin(x);
	case RF_UN_COS: return cos(x);
	case RF_UN_FLOOR: return floor(x);
	case RF_UN_CEIL: return ceil(x);
	case RF_UN_ROUND: return nearbyint(x);   /* default rounding mode: half to even */
	case RF_UN_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
	case RF_UN_RECIPROCAL: return 1.0 / x;
	case RF_UN_NOT: return x == 0 ? 1 : 0;
	}
	return NAN;
}

double ref_activation(enum rf_activation act, double x)
{
	switch (act) {
	case RF_ACT_NONE: return x;
	case RF_ACT_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
	case RF_ACT_QUICKGELU: return x / (1.0 + exp(-1.702 * x));
	}
	return NAN;
}

void ref_layernorm(const float *x, int64_t rows, int64_t cols, const float *gamma,
		   const float *beta, double eps, double *y, double *mean, double *std)
{
	for (int64_t r = 0; r < rows; r++) {
		const float *row = x + r * cols;
		double s = 0, s2 = 0;
		for (int64_t c = 0; c < cols; c++) {
			s += row[c];
			s2 += (double)row[c] * row[c];
		}
		double mu = s / (double)cols;
		double sigma = sqrt(s2 / (double)cols - mu * mu + eps);
		for (int64_t c = 0; c < cols; c++)
			y[r * cols + c] = (row[c] - mu) / sigma * (gamma ? gamma[c] : 1.0) +
					  (beta ? beta[c] : 0.0);
		if (mean)
			mean[r] = mu;
		if (std)
			std[r] = sigma;
	}
}

void ref_softmax(const float *x, int64_t rows, int64_t cols, double scale, bool causal,
		 int64_t qcount, int64_t row_base, double *y)
{
	for (int64_t r = 0; r < rows; r++) {
		const float *row = x + r * cols;
		int64_t valid = causal ? RF_MIN(cols, (row_base + r) % qcount + 1) : cols;
		double m = -INFINITY, sum = 0;
		for (int64_t c = 0; c < valid; c++)
			m = fmax(m, scale * row[c]);
		for (int64_t c = 0; c < valid; c++)
			sum += exp(scale * row[c] - m);
		for (int64_t c = 0; c < cols; c++)
			y[r * cols + c] = c < valid ? exp(scale * row[c] - m) / sum : 0.0;
	}
}

void ref_attention(const float *qkv, int64_t batch, int64_t n, int64_t width, int heads,
		   bool causal, double *out, double *probs)
{
	int64_t dh = width / heads;
	double scale = 1.0 / sqrt((double)dh);
	double *p = malloc((size_t)n * sizeof *p);
	for (int64_t b = 0; b < batch; b++)
		for (int h = 0; h < heads; h++)
			for (int64_t i = 0; i < n; i++) {
				const float *q = qkv + (b * n + i) * 3 * width + h * dh;
				int64_t valid = causal ? i + 1 : n;
				double m = -INFINITY, sum = 0;
				for (int64_t j = 0; j < valid; j++) {
					const float *k = qkv + (b * n + j) * 3 * width + width + h * dh;
					double s = 0;
					for (int64_t d = 0; d < dh; d++)
						s += (double)q[d] * k[d];
					p[j] = s * scale;
					m = fmax(m, p[j]);
				}
				for (int64_t j = 0; j < valid; j++)
					sum += (p[j] = exp(p[j] - m));
				for (int64_t j = 0; j < n; j++)
					p[j] = j < valid ? p[j] / sum : 0.0;
				for (int64_t d = 0; d < dh; d++) {
					double o = 0;
					for (int64_t j = 0; j < valid; j++)
						o += p[j] * qkv[(b * n + j) * 3 * width + 2 * width + h * dh + d];
					out[(b * n + i) * width + h * dh + d] = o;
				}
				if (probs)
					for (int64_t j = 0; j < n; j++)
						probs[((b * heads + h) * n + i) * n + j] = p[j];
			}
	free(p);
}

/* Visits x's elements in row-major order; output index = x's index with reduced axes
** zeroed (keepdims), reduced position = row-major index over the reduced axes alone.
** Max/min: the first of equal values wins (inputs without NaN). */
void ref_reduce(enum rf_reduce_op op, const float *x, const struct rf_shape *shape,
		uint32_t mask, int correction, double *y)
{
	int nd = shape->ndim;
	int64_t out_n = 1, len = 1;
	for (int d = 0; d < nd; d++) {
		if (mask >> d & 1)
			len *= shape->dim[d];
		else
			out_n *= shape->dim[d];
	}
	double *acc = calloc((size_t)out_n, sizeof *acc), *acc2 = calloc((size_t)out_n, sizeof *acc2);
	double *best = malloc((size_t)out_n * sizeof *best);
	int64_t *arg = calloc((size_t)out_n, sizeof *arg);
	for (int64_t o = 0; o < out_n; o++) {
		best[o] = 0;
		acc[o] = op == RF_RED_PROD ? 1 : 0;
	}
	int64_t total = rf_shape_numel(shape);
	for (int pass = 0; pass < 2; pass++) {
		for (int64_t i = 0; i < total; i++) {
			int64_t rest = i, o = 0, ostride = 1, r = 0, rstride = 1;
			for (int d = nd - 1; d >= 0; d--) {
				int64_t c = rest % shape->dim[d];
				rest /= shape->dim[d];
				if (mask >> d & 1) {
					r += c * rstride;
					rstride *= shape->dim[d];
				} else {
					o += c * ostride;
					ostride *= shape->dim[d];
				}
			}
			double v = x[i];
			if (pass == 1) {
				/* Second pass: squared deviations from the mean (var/std). */
				double dv = v - acc[o] / (double)len;
				acc2[o] += dv * dv;
				continue;
			}
			switch (op) {
			case RF_RED_PROD: acc[o] *= v; break;
			case RF_RED_NORM2: acc[o] += v * v; break;
			case RF_RED_MAX: case RF_RED_ARGMAX:
				if (r == 0 || v > best[o]) {
					best[o] = v;
					arg[o] = r;
				}
				break;
			case RF_RED_MIN: case RF_RED_ARGMIN:
				if (r == 0 || v < best[o]) {
					best[o] = v;
					arg[o] = r;
				}
				break;
			default: acc[o] += v; break;
			}
		}
		if (op != RF_RED_VAR && op != RF_RED_STD)
			break;
	}
	for (int64_t o = 0; o < out_n; o++) {
		switch (op) {
		case RF_RED_SUM: case RF_RED_PROD: y[o] = acc[o]; break;
		case RF_RED_MEAN: y[o] = acc[o] / (double)len; break;
		case RF_RED_NORM2: y[o] = sqrt(acc[o]); break;
		case RF_RED_MAX: case RF_RED_MIN: y[o] = best[o]; break;
		case RF_RED_ARGMAX: case RF_RED_ARGMIN: y[o] = (double)arg[o]; break;
		case RF_RED_VAR: y[o] = len > correction ? acc2[o] / (double)(len - correction) : NAN; break;
		case RF_RED_STD: y[o] = len > correction ? sqrt(acc2[o] / (double)(len - correction)) : NAN; break;
		}
	}
	free(acc);
	free(acc2);
	free(best);
	free(arg);
}

void ref_copy_view(const uint32_t *src, const struct rf_view *sv, uint32_t *dst,
		   const struct rf_view *dv)
{
	int64_t n = 1;
	for (int d = 0; d < sv->ndim; d++)
		n *= sv->shape[d];
	for (int64_t i = 0; i < n; i++) {
		int64_t rest = i, so = sv->offset, dof = dv->offset;
		for (int d = sv->ndim - 1; d >= 0; d--) {
			int64_t c = rest % sv->shape[d];
			rest /= sv->shape[d];
			so += c * sv->stride[d];
			dof += c * dv->stride[d];
		}
		dst[dof] = src[so];
	}
}

void ref_patchify(const float *pixels, int64_t b, int64_t c, int64_t h, int64_t w, int64_t p,
		  double *patches)
{
	int64_t ph = h / p, pw = w / p, cols = c * p * p;
	for (int64_t n = 0; n < b; n++)
		for (int64_t i = 0; i < ph; i++)
			for (int64_t j = 0; j < pw; j++)
				for (int64_t ch = 0; ch < c; ch++)
					for (int64_t u = 0; u < p; u++)
						for (int64_t v = 0; v < p; v++)
							patches[((n * ph + i) * pw + j) * cols + ch * p * p + u * p + v] =
								pixels[((n * c + ch) * h + i * p + u) * w + j * p + v];
}

/* Offset of output index i in an input of shape `in` broadcast to `out`. */
static int64_t broadcast_offset(int64_t i, const struct rf_shape *in, const struct rf_shape *out)
{
	int64_t ofs = 0, stride = 1;
	for (int d = out->ndim - 1; d >= 0; d--) {
		int64_t c = i % out->dim[d];
		i /= out->dim[d];
		int k = in->ndim - out->ndim + d;
		if (k >= 0) {
			if (in->dim[k] != 1)
				ofs += c * stride;
			stride *= in->dim[k];
		}
	}
	return ofs;
}

void ref_where(const float *cond, const struct rf_shape *cs, const float *a,
	       const struct rf_shape *as, const float *b, const struct rf_shape *bs,
	       const struct rf_shape *ys, double *y)
{
	int64_t n = rf_shape_numel(ys);
	for (int64_t i = 0; i < n; i++)
		y[i] = cond[broadcast_offset(i, cs, ys)] != 0 ? a[broadcast_offset(i, as, ys)]
							       : b[broadcast_offset(i, bs, ys)];
}
