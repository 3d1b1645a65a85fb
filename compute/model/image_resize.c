/*
** image_resize.c: PIL's Image.resize on 8-bit images, reproduced bit for bit: the
** antialiased bicubic resampler (separable, horizontal pass first, each pass rounded to
** 8 bits, weights in 22-bit fixed point), alpha premultiplication around it for gray+alpha
** and RGBA, and the NEAREST resampler PIL forces on palette and 1-bit images. The rules
** are those of tests/data/tiny-gelu/README.md, with the floating-point evaluation order
** of PIL's resampler where it decides rounding. Compute layer (L5; host only).
*/
#include "image.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 32768
#define PRECISION_BITS 22    /* 32 - 8 - 2: room for 8-bit data and the kernel's lobes */

/* {===== coefficients */

/* Keys' cubic with a = -0.5, in the Horner form PIL evaluates (the form changes the
** last bits of a weight, which can move a fixed-point weight by one). */
static double bicubic(double x)
{
	const double a = -0.5;
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

/* For each output index: the first input index and how many inputs it reads, and the
** fixed-point weights (ksize per output). */
struct coeffs {
	int *start, *count;
	int32_t *w;
	int ksize;
};

static void coeffs_free(struct coeffs *c)
{
	free(c->start);
	free(c->count);
	free(c->w);
}

static int32_t to_fixed(double w)
{
	double s = w * (1 << PRECISION_BITS);
	return (int32_t)(w < 0 ? -0.5 + s : 0.5 + s);
}

static bool coeffs_make(int in, int out, struct coeffs *c)
{
	double scale = (double)in / out;
	double filterscale = scale < 1.0 ? 1.0 : scale;
	double support = 2.0 * filterscale, inv = 1.0 / filterscale;
	c->ksize = (int)ceil(support) * 2 + 1;
	c->start = malloc((size_t)out * sizeof *c->start);
	c->count = malloc((size_t)out * sizeof *c->count);
	c->w = calloc((size_t)out * (size_t)c->ksize, sizeof *c->w);
	double *k = malloc((size_t)c->ksize * sizeof *k);
	if (!c->start || !c->count || !c->w || !k) {
		free(k);
		return false;
	}
	for (int o = 0; o < out; o++) {
		double center = (o + 0.5) * scale, sum = 0.0;
		/* Truncation toward zero, then clamping, as PIL rounds the window. */
		int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
		xmin = xmin < 0 ? 0 : xmin;
		xmax = (xmax > in ? in : xmax) - xmin;
		for (int x = 0; x < xmax; x++) {
			k[x] = bicubic((x + xmin - center + 0.5) * inv);
			sum += k[x];
		}
		for (int x = 0; x < xmax; x++)
			c->w[(size_t)o * (size_t)c->ksize + (size_t)x] = to_fixed(sum != 0.0 ? k[x] / sum : k[x]);
		c->start[o] = xmin;
		c->count[o] = xmax;
	}
	free(k);
	return true;
}

static uint8_t clip8(int64_t acc)
{
	if (acc < 0)
		return 0;
	acc >>= PRECISION_BITS;
	return acc > 255 ? 255 : (uint8_t)acc;
}

/* }===== */

/* {===== the two passes; `ch` interleaved channels, every channel filtered alike */

static void pass_horizontal(const uint8_t *in, int in_w, int h, int ch, const struct coeffs *c,
			    int out_w, uint8_t *out)
{
	for (int y = 0; y < h; y++) {
		const uint8_t *row = in + (size_t)y * (size_t)in_w * (size_t)ch;
		uint8_t *dst = out + (size_t)y * (size_t)out_w * (size_t)ch;
		for (int o = 0; o < out_w; o++) {
			const int32_t *w = c->w + (size_t)o * (size_t)c->ksize;
			const uint8_t *src = row + (size_t)c->start[o] * (size_t)ch;
			for (int k = 0; k < ch; k++) {
				int64_t acc = 1 << (PRECISION_BITS - 1);
				for (int x = 0; x < c->count[o]; x++)
					acc += (int64_t)src[(size_t)x * (size_t)ch + (size_t)k] * w[x];
				dst[(size_t)o * (size_t)ch + (size_t)k] = clip8(acc);
			}
		}
	}
}

static void pass_vertical(const uint8_t *in, int w_px, int ch, const struct coeffs *c, int out_h,
			  uint8_t *out)
{
	size_t stride = (size_t)w_px * (size_t)ch;
	for (int o = 0; o < out_h; o++) {
		const int32_t *w = c->w + (size_t)o * (size_t)c->ksize;
		const uint8_t *src = in + (size_t)c->start[o] * stride;
		uint8_t *dst = out + (size_t)o * stride;
		for (size_t i = 0; i < stride; i++) {
			int64_t acc = 1 << (PRECISION_BITS - 1);
			for (int y = 0; y < c->count[o]; y++)
				acc += (int64_t)src[(size_t)y * stride + i] * w[y];
			dst[i] = clip8(acc);
		}
	}
}

/* }===== */

/* {===== alpha */

/* PIL's RGBA -> RGBa (and LA -> La): c * a / 255 rounded with its shift trick. */
static void premultiply(uint8_t *px, size_t n, int ch)
{
	for (size_t i = 0; i < n; i++, px += ch) {
		unsigned a = px[ch - 1];
		for (int k = 0; k < ch - 1; k++) {
			unsigned t = px[k] * a + 128;
			px[k] = (uint8_t)(((t >> 8) + t) >> 8);
		}
	}
}

/* PIL's RGBa -> RGBA: colour unchanged where alpha is 0 or 255, else 255 c / a capped. */
static void unpremultiply(uint8_t *px, size_t n, int ch)
{
	for (size_t i = 0; i < n; i++, px += ch) {
		unsigned a = px[ch - 1];
		if (a == 0 || a == 255)
			continue;
		for (int k = 0; k < ch - 1; k++) {
			unsigned v = 255u * px[k] / a;
			px[k] = (uint8_t)(v > 255 ? 255 : v);
		}
	}
}

/* }===== */

static enum rf_status check_args(const struct rf_image *in, int width, int height)
{
	if (!in || !in->pixels || in->width < 1 || in->height < 1 || in->channels < 1 ||
	    in->channels > 4)
		return rf_error(RF_ERR_INVALID, "image resize: not a valid image");
	if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE ||
	    (uint64_t)width * (uint64_t)height > (1ull << 28))
		return rf_error(RF_ERR_INVALID, "image resize: %d x %d is not a size from 1 to 32768 per "
				"side and 2^28 pixels in all", width, height);
	return RF_OK;
}

static enum rf_status new_image(const struct rf_image *like, int width, int height,
				struct rf_image *out)
{
	size_t n = (size_t)width * (size_t)height * (size_t)like->channels;
	*out = (struct rf_image){width, height, like->channels, like->nearest, malloc(n ? n : 1)};
	if (!out->pixels)
		return rf_error(RF_ERR_OOM_HOST, "image resize: allocating %zu bytes", n);
	return RF_OK;
}

static size_t image_bytes(const struct rf_image *img)
{
	return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

enum rf_status rf_image_resize_nearest(const struct rf_image *in, int width, int height,
				       struct rf_image *out)
{
	*out = (struct rf_image){0};
	enum rf_status s = check_args(in, width, height);
	if (s == RF_OK)
		s = new_image(in, width, height, out);
	if (s != RF_OK)
		return s;
	size_t ch = (size_t)in->channels;
	int *xs = malloc((size_t)width * sizeof *xs);
	if (!xs) {
		rf_image_fini(out);
		return rf_error(RF_ERR_OOM_HOST, "image resize: allocating a table");
	}
	/* PIL's affine scaling: the source position accumulates in double precision from the
	** first pixel centre; positions outside the image read as zero. */
	double step_x = (double)in->width / width, step_y = (double)in->height / height;
	double fx = step_x * 0.5, fy = step_y * 0.5;
	for (int x = 0; x < width; x++, fx += step_x)
		xs[x] = fx < 0.0 || (int)fx >= in->width ? -1 : (int)fx;
	for (int y = 0; y < height; y++, fy += step_y) {
		uint8_t *dst = out->pixels + (size_t)y * (size_t)width * ch;
		int sy = fy < 0.0 ? -1 : (int)fy;
		for (int x = 0; x < width; x++) {
			if (sy < 0 || sy >= in->height || xs[x] < 0)
				memset(dst + (size_t)x * ch, 0, ch);
			else
				memcpy(dst + (size_t)x * ch,
				       in->pixels + ((size_t)sy * (size_t)in->width + (size_t)xs[x]) * ch, ch);
		}
	}
	free(xs);
	return RF_OK;
}

/* The bicubic passes on `src` (which may be modified: it is premultiplied in place). */
static enum rf_status resample(const struct rf_image *src, int width, int height,
			       struct rf_image *out)
{
	struct coeffs ch = {0}, cv = {0};
	struct rf_image tmp = {0};
	bool do_h = width != src->width, do_v = height != src->height;
	enum rf_status s = RF_OK;
	if ((do_h && !coeffs_make(src->width, width, &ch)) ||
	    (do_v && !coeffs_make(src->height, height, &cv)))
		s = rf_error(RF_ERR_OOM_HOST, "image resize: allocating coefficients");
	if (s == RF_OK && do_h && do_v)
		s = new_image(src, width, src->height, &tmp);
	if (s == RF_OK)
		s = new_image(src, width, height, out);
	if (s == RF_OK) {
		const uint8_t *mid = src->pixels;
		if (do_h) {
			uint8_t *dst = do_v ? tmp.pixels : out->pixels;
			pass_horizontal(src->pixels, src->width, src->height, src->channels, &ch, width, dst);
			mid = dst;
		}
		if (do_v)
			pass_vertical(mid, width, src->channels, &cv, height, out->pixels);
	}
	coeffs_free(&ch);
	coeffs_free(&cv);
	rf_image_fini(&tmp);
	return s;
}

enum rf_status rf_image_resize(const struct rf_image *in, int width, int height, struct rf_image *out)
{
	*out = (struct rf_image){0};
	enum rf_status s = check_args(in, width, height);
	if (s != RF_OK)
		return s;
	if (width == in->width && height == in->height) {
		s = new_image(in, width, height, out);
		if (s == RF_OK)
			memcpy(out->pixels, in->pixels, image_bytes(in));
		return s;
	}
	if (in->nearest)
		return rf_image_resize_nearest(in, width, height, out);
	bool alpha = in->channels == 2 || in->channels == 4;
	if (!alpha)
		return resample(in, width, height, out);
	struct rf_image pre;
	s = new_image(in, in->width, in->height, &pre);
	if (s != RF_OK)
		return s;
	memcpy(pre.pixels, in->pixels, image_bytes(in));
	premultiply(pre.pixels, (size_t)in->width * (size_t)in->height, in->channels);
	s = resample(&pre, width, height, out);
	rf_image_fini(&pre);
	if (s == RF_OK)
		unpremultiply(out->pixels, (size_t)width * (size_t)height, out->channels);
	return s;
}
