/*
** image.h: decoding images (stb_image: PNG 8-bit gray/gray+alpha/RGB/RGBA, baseline and
** progressive JPEG) and CLIP's evaluation preprocessing, bit-exact with the reference
** (PIL): resize of the shorter side with PIL's antialiased bicubic on 8-bit data
** (separable, horizontal first, fixed-point weights, RGBA premultiplied), centre crop with
** Python's round, RGB conversion, normalisation. See tests/data/tiny-gelu/README.md.
** Compute layer (L5; host only, thread-safe).
*/
#ifndef RF_COMPUTE_MODEL_IMAGE_H
#define RF_COMPUTE_MODEL_IMAGE_H

#include "rf_base.h"

/* A decoded 8-bit image, rows top to bottom, channels interleaved. */
struct rf_image {
	int width, height;
	int channels;        /* 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA), as stored in the file */
	uint8_t *pixels;     /* height * width * channels */
};

/* Decodes a PNG or JPEG file. Errors name the file: unreadable, empty, truncated or
** corrupt data, unsupported format (e.g. 16-bit PNG), dimensions over 32768 or over
** 2^28 pixels. */
enum rf_status rf_image_load(const char *path, struct rf_image *out);
enum rf_status rf_image_decode(const void *data, size_t size, const char *name, struct rf_image *out);
void rf_image_free(struct rf_image *img);

enum rf_resize_mode {
	RF_RESIZE_SHORTEST,  /* shorter side to `size`, then centre crop (CLIP's default) */
	RF_RESIZE_SQUASH,    /* both sides to `size`, aspect not kept */
};

struct rf_preprocess {
	int size;
	float mean[3], std[3];
	enum rf_resize_mode mode;
};

/* OpenAI CLIP's mean/std with shortest-side resize to `size`. */
struct rf_preprocess rf_preprocess_openai(int size);

/* PIL-exact resize of an 8-bit image to width x height (bicubic, antialiased). */
enum rf_status rf_image_resize(const struct rf_image *in, int width, int height, struct rf_image *out);

/* Resize, crop, RGB conversion and normalisation into out[3 * size * size] (CHW). */
enum rf_status rf_image_preprocess(const struct rf_image *img, const struct rf_preprocess *p,
				   float *out);
/* rf_image_load + rf_image_preprocess. */
enum rf_status rf_image_load_preprocessed(const char *path, const struct rf_preprocess *p,
					  float *out);

#endif
