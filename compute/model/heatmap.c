/*
** heatmap.c: colormap lookup, bilinear resampling and blending for value-map pictures
** (see heatmap.h). Compute layer (L5; host only).
*/
#include "heatmap.h"

#include <math.h>
#include <string.h>

static const char *const names[RF_COLORMAP_COUNT] = {
	[RF_COLORMAP_VIRIDIS] = "viridis", [RF_COLORMAP_MAGMA] = "magma", [RF_COLORMAP_GRAY] = "gray",
};

bool rf_colormap_parse(const char *name, enum rf_colormap *out)
{
	for (int i = 0; i < RF_COLORMAP_COUNT; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum rf_colormap)i;
			return true;
		}
	return false;
}

const char *rf_colormap_names(void)
{
	return "viridis, magma, gray";
}

/* {===== resampling */

/* One axis of the half-pixel-centre map: output o reads i0 and i1 with weight f on i1. */
struct axis_tap {
	int i0, i1;
	double f;
};

static struct axis_tap axis_tap(int o, int in, int out)
{
	double s = fmax((o + 0.5) * ((double)in / out) - 0.5, 0.0);
	int i0 = RF_MIN((int)s, in - 1);
	return (struct axis_tap){ i0, RF_MIN(i0 + 1, in - 1), s - i0 };
}

/* a + f (b - a); a weight of 0 does not read b, so a NaN or infinity there cannot spread
** into samples that sit exactly on a (and equal sizes give the input back). */
static double lerp(double a, double b, double f)
{
	return f == 0 ? a : a + f * (b - a);
}

void rf_resize_bilinear(const float *in, int h, int w, float *out, int out_h, int out_w)
{
	for (int y = 0; y < out_h; y++) {
		struct axis_tap ty = axis_tap(y, h, out_h);
		const float *a = in + (size_t)ty.i0 * w, *b = in + (size_t)ty.i1 * w;
		for (int x = 0; x < out_w; x++) {
			struct axis_tap tx = axis_tap(x, w, out_w);
			double top = lerp(a[tx.i0], a[tx.i1], tx.f), bottom = lerp(b[tx.i0], b[tx.i1], tx.f);
			out[(size_t)y * out_w + x] = (float)lerp(top, bottom, ty.f);
		}
	}
}

/* }===== */

/* {===== colour */

void rf_value_range(const float *v, size_t n, float *lo, float *hi)
{
	*lo = *hi = NAN;
	for (size_t i = 0; i < n; i++) {
		/* Infinities too: an infinite bound makes every (v - lo) / (hi - lo) NaN or 0, so
		** a map holding one inf came out in a single colour; they clamp to the ends. */
		if (!isfinite(v[i]))
			continue;
		if (isnan(*lo) || v[i] < *lo)
			*lo = v[i];
		if (isnan(*hi) || v[i] > *hi)
			*hi = v[i];
	}
}

void rf_colorize(const float *v, size_t n, float vmin, float vmax, enum rf_colormap cmap, uint8_t *rgb)
{
	const uint8_t(*table)[3] = rf_colormap_tables[cmap];
	double span = (double)vmax - vmin;
	bool flat = !(span > 0);   /* also true for NaN bounds */
	for (size_t i = 0; i < n; i++) {
		int k = 0;
		if (!flat && !isnan(v[i])) {
			double t = fmin(fmax(((double)v[i] - vmin) / span, 0.0), 1.0);
			k = RF_MIN((int)(t * 256), 255);
		}
		memcpy(rgb + 3 * i, table[k], 3);
	}
}

void rf_blend(const uint8_t *image, const uint8_t *over, size_t n, float alpha, uint8_t *out)
{
	double a = alpha;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)floor((1 - a) * image[i] + a * over[i] + 0.5);
}

void rf_image_to_rgb(const uint8_t *in, size_t pixels, int channels, uint8_t *rgb)
{
	for (size_t p = 0; p < pixels; p++) {
		const uint8_t *src = in + p * (size_t)channels;
		uint8_t *dst = rgb + 3 * p;
		if (channels <= 2)
			dst[0] = dst[1] = dst[2] = src[0];
		else
			memcpy(dst, src, 3);
	}
}

/* }===== */
