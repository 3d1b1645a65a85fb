/*
** image_preprocess.c: CLIP's evaluation transform (open_clip over torchvision and PIL),
** bit-exact: Resize(size) with PIL bicubic, CenterCrop(size), convert("RGB"), ToTensor,
** Normalize(mean, std). Compute layer (L5; host only, thread-safe).
*/
#include "image.h"
#include "status.h"

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
** longer int(size * long / short), Python's true division then truncation. */
static void resized_size(int w, int h, int size, enum rf_resize_mode mode, int *rw, int *rh)
{
	if (mode == RF_RESIZE_SQUASH) {
		*rw = *rh = size;
	} else if (w <= h) {
		*rw = size;
		*rh = (int)((double)((int64_t)size * h) / w);
	} else {
		*rw = (int)((double)((int64_t)size * w) / h);
		*rh = size;
	}
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
	    img->channels > 4 || !p || !out)
		return rf_error(RF_ERR_INVALID, "image preprocess: NULL or invalid argument");
	if (p->size < 1 || p->size > 32768)
		return rf_error(RF_ERR_INVALID, "image preprocess: size %d is not from 1 to 32768", p->size);
	if (p->mode != RF_RESIZE_SHORTEST && p->mode != RF_RESIZE_SQUASH)
		return rf_error(RF_ERR_INVALID, "image preprocess: unknown resize mode %d", (int)p->mode);
	for (int c = 0; c < 3; c++) {
		if (!(p->std[c] != 0.0f))
			return rf_error(RF_ERR_INVALID, "image preprocess: std[%d] is zero or NaN", c);
	}
	return RF_OK;
}

/* Crop, RGB conversion and normalisation of the resized image into CHW floats. The
** arithmetic is ToTensor's float32 v / 255 then Normalize's (x - mean) / std, in that
** order and in float32: this reproduces torchvision bit for bit. */
static void crop_normalise(const struct rf_image *r, int left, int top, const struct rf_preprocess *p,
			   float *out)
{
	size_t s = (size_t)p->size, ch = (size_t)r->channels;
	for (size_t c = 0; c < 3; c++) {
		/* Gray (and gray+alpha) is replicated; alpha is dropped, not composited. */
		size_t k = ch >= 3 ? c : 0;
		float mean = p->mean[c], std = p->std[c];
		for (size_t y = 0; y < s; y++) {
			const uint8_t *row = r->pixels + ((size_t)(top + (int)y) * (size_t)r->width +
							   (size_t)left) * ch;
			float *dst = out + (c * s + y) * s;
			for (size_t x = 0; x < s; x++)
				dst[x] = ((float)row[x * ch + k] / 255.0f - mean) / std;
		}
	}
}

enum rf_status rf_image_preprocess(const struct rf_image *img, const struct rf_preprocess *p,
				   float *out)
{
	enum rf_status s = check_args(img, p, out);
	if (s != RF_OK)
		return s;
	int rw, rh;
	resized_size(img->width, img->height, p->size, p->mode, &rw, &rh);
	struct rf_image resized = {0};
	const struct rf_image *r = img;
	if (rw != img->width || rh != img->height) {
		s = rf_image_resize(img, rw, rh, &resized);
		if (s != RF_OK)
			return rf_error_wrap(s, "image preprocess");
		r = &resized;
	}
	/* Both sides are at least `size` here, so the crop never pads. */
	crop_normalise(r, half_round_even(rw - p->size), half_round_even(rh - p->size), p, out);
	rf_image_fini(&resized);
	return RF_OK;
}

enum rf_status rf_image_load_preprocessed(const char *path, const struct rf_preprocess *p,
					  float *out)
{
	struct rf_image img;
	enum rf_status s = rf_image_load(path, &img);
	if (s == RF_OK)
		s = rf_image_preprocess(&img, p, out);
	rf_image_fini(&img);
	return s;
}
