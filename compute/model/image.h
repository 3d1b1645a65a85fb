/*
** image.h: decoding images (stb_image: PNG 8-bit gray/gray+alpha/RGB/RGBA/palette and
** 1/2/4-bit gray, baseline and progressive JPEG) and CLIP's evaluation preprocessing,
** bit-exact with the reference (PIL + torchvision): resize of the shorter side with PIL's
** antialiased bicubic on 8-bit data (separable, horizontal first, fixed-point weights,
** alpha premultiplied), centre crop with Python's round, RGB conversion, normalisation.
** See tests/data/tiny-gelu/README.md. Compute layer (L5; host only, thread-safe).
*/
#ifndef RF_COMPUTE_MODEL_IMAGE_H
#define RF_COMPUTE_MODEL_IMAGE_H

#include "rf_base.h"

/* A decoded 8-bit image, rows top to bottom, channels interleaved. */
struct rf_image {
	int width, height;
	int channels;        /* 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA), as PIL opens the file */
	bool nearest;        /* palette or 1-bit PNG (PIL modes P and 1, here expanded to RGB
			     ** or L): PIL resizes these with NEAREST, never bicubic */
	uint8_t *pixels;     /* height * width * channels, malloc'd */
};

/* Decodes a PNG or JPEG file (the format is told by its signature, not its name). Errors
** name the file: RF_ERR_IO (cannot open or read), RF_ERR_FORMAT (empty, truncated or
** corrupt, not a PNG/JPEG), RF_ERR_UNSUPPORTED (16-bit PNG, CMYK/12-bit/lossless JPEG,
** GIF/BMP/WebP/TIFF, a side over 32768 or over 2^28 pixels). A PNG's transparency chunk is
** ignored (PIL only uses it when converting to an alpha mode), so only gray+alpha and
** RGBA files keep an alpha channel. On failure *out is zeroed. */
enum rf_status rf_image_load(const char *path, struct rf_image *out);
/* The same from memory; `name` (may be NULL) is used in error messages. */
enum rf_status rf_image_decode(const void *data, size_t size, const char *name, struct rf_image *out);
/* Frees the pixels and NULLs them; NULL or an already freed image is fine. */
void rf_image_fini(struct rf_image *img);

enum rf_resize_mode {
	RF_RESIZE_SHORTEST,  /* shorter side to `size`, then centre crop (CLIP's default) */
	RF_RESIZE_SQUASH,    /* both sides to `size`, aspect not kept, no crop */
};

struct rf_preprocess {
	int size;
	float mean[3], std[3];
	enum rf_resize_mode mode;
};

/* OpenAI CLIP's mean/std with shortest-side resize to `size`. */
struct rf_preprocess rf_preprocess_openai(int size);

/* PIL's Image.resize to width x height: antialiased bicubic on 8-bit data, 2- and
** 4-channel images premultiplied by alpha around it; NEAREST if in->nearest; a copy if
** the size does not change. Sizes from 1 to 32768 per side. `out` is a new image. */
enum rf_status rf_image_resize(const struct rf_image *in, int width, int height, struct rf_image *out);
/* PIL's NEAREST resize (what the reference uses for segmentation masks), any image. */
enum rf_status rf_image_resize_nearest(const struct rf_image *in, int width, int height,
				       struct rf_image *out);

/* Resize, crop, RGB conversion (gray replicated, alpha dropped) and normalisation
** (v / 255 - mean) / std in float32 into out[3 * size * size] (CHW, R G B). */
enum rf_status rf_image_preprocess(const struct rf_image *img, const struct rf_preprocess *p,
				   float *out);
/* rf_image_load + rf_image_preprocess. */
enum rf_status rf_image_load_preprocessed(const char *path, const struct rf_preprocess *p,
					  float *out);

#endif
