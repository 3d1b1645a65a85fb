/*
** image_resize.c: PIL's Image.resize on 8-bit images, reproduced bit for bit: the
** antialiased bicubic resampler (separable, horizontal pass first, each pass rounded to
** 8 bits, weights in 22-bit fixed point), alpha premultiplication around it for gray+alpha
** and RGBA, and the NEAREST resampler PIL forces on palette and 1-bit images. Any window
** of a resize can be computed alone, bit for bit what cropping the whole would give. The rules
** are those of tests/data/tiny-gelu/README.md, with the floating-point evaluation order
** of PIL's resampler where it decides rounding. Compute layer (L5; host only).
*/
#include "image.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUT_PIXELS (1ull << 28)   /* 1 GiB as RGBA */
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

/* For each output index of a window: the first input index and how many inputs it reads,
** and the fixed-point weights (ksize per output). */
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

/* Coefficients of the outputs first .. first + n - 1 of a resize from in to out. */
static bool coeffs_make(int in, int out, int first, int n, struct coeffs *c)
{
	double scale = (double)in / out;
	double filterscale = scale < 1.0 ? 1.0 : scale;
	double support = 2.0 * filterscale, inv = 1.0 / filterscale;
	c->ksize = (int)ceil(support) * 2 + 1;
	c->start = malloc((size_t)n * sizeof *c->start);
	c->count = malloc((size_t)n * sizeof *c->count);
	c->w = calloc((size_t)n * (size_t)c->ksize, sizeof *c->w);
	double *k = malloc((size_t)c->ksize * sizeof *k);
	if (!c->start || !c->count || !c->w || !k) {
		free(k);
		return false;
	}
	for (int i = 0; i < n; i++) {
		double center = ((double)first + i + 0.5) * scale, sum = 0.0;
		/* Truncation toward zero, then clamping, as PIL rounds the window (clamped in
		** double first, so no conversion overflows). */
		double lo = center - support + 0.5, hi = center + support + 0.5;
		int xmin = lo < 0.0 ? 0 : (int)lo;
		int xmax = (hi >= in ? in : (int)hi) - xmin;
		for (int x = 0; x < xmax; x++) {
			k[x] = bicubic((x + xmin - center + 0.5) * inv);
			sum += k[x];
		}
		for (int x = 0; x < xmax; x++)
			c->w[(size_t)i * (size_t)c->ksize + (size_t)x] = to_fixed(sum != 0.0 ? k[x] / sum : k[x]);
		c->start[i] = xmin;
		c->count[i] = xmax;
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

/* A window (left, top, w, h) of a resize to width x height. */
struct window {
	int width, height, left, top, w, h;
};

static enum rf_status check_args(const struct rf_image *in, const struct window *win)
{
	if (!in || !in->pixels || in->width < 1 || in->height < 1 || in->channels < 1 ||
	    in->channels > 4 || (in->cmyk && in->channels != 4))
		return rf_error(RF_ERR_INVALID, "image resize: not a valid image");
	if (win->width < 1 || win->height < 1)
		return rf_error(RF_ERR_INVALID, "image resize: %d x %d is not a size (sides from 1)",
				win->width, win->height);
	if (win->w < 1 || win->h < 1 || win->left < 0 || win->top < 0 ||
	    win->left > win->width - win->w || win->top > win->height - win->h)
		return rf_error(RF_ERR_INVALID, "image resize: window %d x %d at (%d, %d) is not inside "
				"%d x %d", win->w, win->h, win->left, win->top, win->width, win->height);
	if ((uint64_t)win->w * (uint64_t)win->h > MAX_OUT_PIXELS)
		return rf_error(RF_ERR_INVALID, "image resize: %d x %d is over 2^28 pixels", win->w,
				win->h);
	return RF_OK;
}

static enum rf_status new_image(const struct rf_image *like, int width, int height,
				struct rf_image *out)
{
	size_t n = (size_t)width * (size_t)height * (size_t)like->channels;
	*out = (struct rf_image){width, height, like->channels, like->nearest, malloc(n ? n : 1),
				 like->cmyk};
	if (!out->pixels)
		return rf_error(RF_ERR_OOM_HOST, "image resize: allocating %zu bytes", n);
	return RF_OK;
}

static size_t image_bytes(const struct rf_image *img)
{
	return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

/* Copies rows [r0, r1) and columns [left, left + w) of `in` into `out` (w wide). */
static void copy_window(const struct rf_image *in, int left, int w, int r0, int r1, uint8_t *out)
{
	size_t ch = (size_t)in->channels, n = (size_t)w * ch;
	for (int y = r0; y < r1; y++)
		memcpy(out + (size_t)(y - r0) * n,
		       in->pixels + ((size_t)y * (size_t)in->width + (size_t)left) * ch, n);
}

/* PIL's affine scaling for NEAREST: the source position accumulates in double precision
** from the first pixel centre (so a window's positions are reached by accumulating from
** 0, not computed); positions outside the image read as -1 (zero pixels). */
static void nearest_positions(int in, int out, int first, int n, int *pos)
{
	double step = (double)in / out, f = step * 0.5;
	for (int o = 0; o < first + n; o++, f += step) {
		if (o >= first)
			pos[o - first] = f < 0.0 || f >= in ? -1 : (int)f;
	}
}

static enum rf_status nearest_window(const struct rf_image *in, const struct window *win,
				     struct rf_image *out)
{
	enum rf_status s = new_image(in, win->w, win->h, out);
	if (s != RF_OK)
		return s;
	size_t ch = (size_t)in->channels;
	int *xs = malloc((size_t)win->w * sizeof *xs), *ys = malloc((size_t)win->h * sizeof *ys);
	if (!xs || !ys) {
		free(xs);
		free(ys);
		rf_image_fini(out);
		return rf_error(RF_ERR_OOM_HOST, "image resize: allocating a table");
	}
	nearest_positions(in->width, win->width, win->left, win->w, xs);
	nearest_positions(in->height, win->height, win->top, win->h, ys);
	for (int y = 0; y < win->h; y++) {
		uint8_t *dst = out->pixels + (size_t)y * (size_t)win->w * ch;
		for (int x = 0; x < win->w; x++) {
			if (ys[y] < 0 || xs[x] < 0)
				memset(dst + (size_t)x * ch, 0, ch);
			else
				memcpy(dst + (size_t)x * ch,
				       in->pixels + ((size_t)ys[y] * (size_t)in->width + (size_t)xs[x]) * ch, ch);
		}
	}
	free(xs);
	free(ys);
	return RF_OK;
}

enum rf_status rf_image_resize_nearest(const struct rf_image *in, int width, int height,
				       struct rf_image *out)
{
	*out = (struct rf_image){0};
	struct window win = {width, height, 0, 0, width, height};
	enum rf_status s = check_args(in, &win);
	return s == RF_OK ? nearest_window(in, &win, out) : s;
}

/* The bicubic passes on `src` for a window: the horizontal pass (if the width changes) on
** the rows the vertical pass reads, for the window's columns only, then the vertical pass
** (if the height changes) for the window's rows. */
static enum rf_status resample(const struct rf_image *src, const struct window *win,
			       struct rf_image *out)
{
	struct coeffs ch = {0}, cv = {0};
	struct rf_image tmp = {0};
	bool do_h = win->width != src->width, do_v = win->height != src->height;
	enum rf_status s = RF_OK;
	if ((do_h && !coeffs_make(src->width, win->width, win->left, win->w, &ch)) ||
	    (do_v && !coeffs_make(src->height, win->height, win->top, win->h, &cv)))
		s = rf_error(RF_ERR_OOM_HOST, "image resize: allocating coefficients");
	/* Input rows [r0, r1) feed the window; the windows' starts and ends only grow. */
	int r0 = win->top, r1 = win->top + win->h;
	if (s == RF_OK && do_v) {
		r0 = cv.start[0];
		r1 = cv.start[win->h - 1] + cv.count[win->h - 1];
	}
	if (s == RF_OK)
		s = new_image(src, win->w, do_v ? r1 - r0 : win->h, do_v ? &tmp : out);
	if (s == RF_OK && do_v)
		s = new_image(src, win->w, win->h, out);
	if (s == RF_OK) {
		uint8_t *mid = do_v ? tmp.pixels : out->pixels;
		size_t row = (size_t)src->width * (size_t)src->channels;
		if (do_h)
			pass_horizontal(src->pixels + (size_t)r0 * row, src->width, r1 - r0, src->channels,
					&ch, win->w, mid);
		else
			copy_window(src, win->left, win->w, r0, r1, mid);
		if (do_v) {
			for (int o = 0; o < win->h; o++)
				cv.start[o] -= r0;
			pass_vertical(mid, win->w, src->channels, &cv, win->h, out->pixels);
		}
	}
	if (s != RF_OK)
		rf_image_fini(out);
	coeffs_free(&ch);
	coeffs_free(&cv);
	rf_image_fini(&tmp);
	return s;
}

enum rf_status rf_image_resize_window(const struct rf_image *in, int width, int height, int left,
				      int top, int w, int h, struct rf_image *out)
{
	*out = (struct rf_image){0};
	struct window win = {width, height, left, top, w, h};
	enum rf_status s = check_args(in, &win);
	if (s != RF_OK)
		return s;
	if (width == in->width && height == in->height) {
		s = new_image(in, w, h, out);
		if (s == RF_OK)
			copy_window(in, left, w, top, top + h, out->pixels);
		return s;
	}
	if (in->nearest)
		return nearest_window(in, &win, out);
	/* CMYK has no alpha: its fourth channel is resized like the others. */
	bool alpha = (in->channels == 2 || in->channels == 4) && !in->cmyk;
	if (!alpha)
		return resample(in, &win, out);
	struct rf_image pre;
	s = new_image(in, in->width, in->height, &pre);
	if (s != RF_OK)
		return s;
	memcpy(pre.pixels, in->pixels, image_bytes(in));
	premultiply(pre.pixels, (size_t)in->width * (size_t)in->height, in->channels);
	s = resample(&pre, &win, out);
	rf_image_fini(&pre);
	if (s == RF_OK)
		unpremultiply(out->pixels, (size_t)w * (size_t)h, out->channels);
	return s;
}

enum rf_status rf_image_resize(const struct rf_image *in, int width, int height, struct rf_image *out)
{
	return rf_image_resize_window(in, width, height, 0, 0, width, height, out);
}
