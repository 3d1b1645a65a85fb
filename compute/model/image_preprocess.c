/*
** image_preprocess.c: CLIP's evaluation transform (open_clip over torchvision and PIL),
** bit-exact: Resize(size) with PIL bicubic, CenterCrop(size), convert("RGB"), ToTensor,
** Normalize(mean, std). Compute layer (L5; host only, thread-safe).
*/
#include "image_internal.h"
#include "status.h"

#include <limits.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

struct rf_preprocess rf_preprocess_openai(int size)
{
	/* Written as doubles converted to float, as torch.tensor(list of Python floats,
	** dtype=float32) rounds them; a float literal could round differently. */
	return (struct rf_preprocess){
		.size = size,
		.mean = {(float)0.48145466, (float)0.4578275, (float)0.40821073},
		.std = {(float)0.26862954, (float)0.26130258, (float)0.27577711},
		.mode = RF_RESIZE_SHORTEST,
	};
}

/* torchvision's size for Resize(size) with an int: the shorter side becomes `size`, the
** longer int(size * long / short), Python's true division (one correctly rounded double
** division of exact integers) then truncation. */
static enum rf_status resized_size(int w, int h, int size, enum rf_resize_mode mode, int *rw, int *rh)
{
	if (mode == RF_RESIZE_SQUASH) {
		*rw = *rh = size;
		return RF_OK;
	}
	int shorter = w <= h ? w : h, longer = w <= h ? h : w;
	double l = (double)((int64_t)size * longer) / shorter;
	if (l >= (double)INT_MAX + 1.0)
		return rf_error(RF_ERR_UNSUPPORTED, "image preprocess: a %d x %d image resized to %d on "
				"its shorter side would be over 2^31 pixels long", w, h, size);
	*rw = w <= h ? size : (int)l;
	*rh = w <= h ? (int)l : size;
	return RF_OK;
}

/* round(d / 2) with Python's round: halves go to the even integer (d >= 0). */
static int half_round_even(int d)
{
	int q = d / 2;
	return d % 2 && q % 2 ? q + 1 : q;
}

static enum rf_status check_args(const struct rf_image *img, const struct rf_preprocess *p,
				 const float *out)
{
	if (!img || !img->pixels || img->width < 1 || img->height < 1 || img->channels < 1 ||
	    img->channels > 4 || (img->cmyk && img->channels != 4) || !p || !out)
		return rf_error(RF_ERR_INVALID, "image preprocess: NULL or invalid argument");
	if (p->size < 1 || p->size > 32768)
		return rf_error(RF_ERR_INVALID, "image preprocess: size %d is not from 1 to 32768", p->size);
	if (p->mode != RF_RESIZE_SHORTEST && p->mode != RF_RESIZE_SQUASH)
		return rf_error(RF_ERR_INVALID, "image preprocess: unknown resize mode %d", (int)p->mode);
	for (int c = 0; c < 3; c++) {
		if (!isfinite(p->mean[c]))
			return rf_error(RF_ERR_INVALID, "image preprocess: mean[%d] is not finite", c);
		if (!(p->std[c] != 0.0f) || !isfinite(p->std[c]))
			return rf_error(RF_ERR_INVALID, "image preprocess: std[%d] is zero, NaN or infinite", c);
		/* (x - mean) / std for x in [0, 1] must stay finite: a subnormal std or a huge
		** mean gave infinite pixels, silently. */
		double reach = fmax(fabs((double)p->mean[c]), fabs(1.0 - p->mean[c])) / fabs((double)p->std[c]);
		if (!(reach <= FLT_MAX))
			return rf_error(RF_ERR_INVALID, "image preprocess: mean[%d] = %g and std[%d] = %g take "
					"pixels past the float range", c, (double)p->mean[c], c,
					(double)p->std[c]);
	}
	return RF_OK;
}

/* One row of s pixels of an image from (x, y) as RGB: gray replicated, alpha dropped (not
** composited), CMYK converted as PIL's convert("RGB"). */
static void row_rgb(const struct rf_image *r, int x, int y, int s, uint8_t *rgb)
{
	size_t ch = (size_t)r->channels;
	const uint8_t *src = r->pixels + ((size_t)y * (size_t)r->width + (size_t)x) * ch;
	if (r->cmyk) {
		rf_image_cmyk_to_rgb(src, (size_t)s, rgb);
		return;
	}
	for (size_t i = 0; i < (size_t)s; i++) {
		for (size_t c = 0; c < 3; c++)
			rgb[3 * i + c] = src[i * ch + (ch >= 3 ? c : 0)];
	}
}

/* Crop, RGB conversion and normalisation of the resized image into CHW floats. The
** arithmetic is ToTensor's float32 v / 255 then Normalize's (x - mean) / std, in that
** order and in float32: this reproduces torchvision bit for bit. */
static enum rf_status crop_normalise(const struct rf_image *r, int left, int top,
				     const struct rf_preprocess *p, float *out)
{
	size_t s = (size_t)p->size;
	uint8_t *rgb = malloc(3 * s);
	if (!rgb)
		return rf_error(RF_ERR_OOM_HOST, "image preprocess: allocating a row");
	for (size_t y = 0; y < s; y++) {
		row_rgb(r, left, top + (int)y, p->size, rgb);
		for (size_t c = 0; c < 3; c++) {
			float mean = p->mean[c], std = p->std[c], *dst = out + (c * s + y) * s;
			for (size_t x = 0; x < s; x++)
				dst[x] = ((float)rgb[3 * x + c] / 255.0f - mean) / std;
		}
	}
	free(rgb);
	return RF_OK;
}

enum rf_status rf_image_preprocess(const struct rf_image *img, const struct rf_preprocess *p,
				   float *out)
{
	enum rf_status s = check_args(img, p, out);
	int rw = 0, rh = 0;
	if (s == RF_OK)
		s = resized_size(img->width, img->height, p->size, p->mode, &rw, &rh);
	if (s != RF_OK)
		return s;
	/* Both sides are at least `size` here, so the crop never pads. */
	int left = half_round_even(rw - p->size), top = half_round_even(rh - p->size);
	if (rw == img->width && rh == img->height)
		return crop_normalise(img, left, top, p, out);
	/* Only the crop of the resize is computed: the same pixels, at the crop's cost. */
	struct rf_image crop;
	s = rf_image_resize_window(img, rw, rh, left, top, p->size, p->size, &crop);
	if (s != RF_OK)
		return rf_error_wrap(s, "image preprocess");
	s = crop_normalise(&crop, 0, 0, p, out);
	rf_image_fini(&crop);
	return s;
}

enum rf_status rf_image_load_preprocessed(const char *path, const struct rf_preprocess *p,
					  float *out)
{
	struct rf_image img;
	enum rf_status s = rf_image_load_stored(path, &img);
	if (s != RF_OK)
		return s;
	s = rf_image_preprocess(&img, p, out);
	rf_image_fini(&img);
	return s == RF_OK ? s : rf_error_wrap(s, "%s", path);
}
