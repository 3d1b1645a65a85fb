/*
** image.h: decoding images as the reference pipeline (PIL) decodes them, and CLIP's
** evaluation preprocessing, bit-exact with the reference (PIL + torchvision): resize of the
** shorter side with PIL's antialiased bicubic on 8-bit data (separable, horizontal first,
** fixed-point weights, alpha premultiplied), centre crop with Python's round, RGB
** conversion, normalisation. PNG goes through libpng and JPEG through libjpeg-turbo (the
** library PIL uses, with PIL's settings), both giving PIL's pixels bit for bit; BMP, GIF,
** TGA and PNM through stb_image (not guaranteed identical to PIL). See
** tests/data/tiny-gelu/README.md and tests/data/images/README.md. Compute layer (L5; host
** only, thread-safe).
*/
#ifndef RF_COMPUTE_MODEL_IMAGE_H
#define RF_COMPUTE_MODEL_IMAGE_H

#include "rf_base.h"

/* A decoded 8-bit image, rows top to bottom, channels interleaved. */
struct rf_image {
	int width, height;
	int channels;        /* 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA, or CMYK below), as PIL opens
			     ** the file */
	bool nearest;        /* palette or 1-bit image (PIL modes P and 1, here expanded to RGB
			     ** or L): PIL resizes these with NEAREST, never bicubic */
	uint8_t *pixels;     /* height * width * channels, malloc'd */
	bool cmyk;           /* 4 channels C, M, Y, K as PIL keeps a CMYK JPEG (mode CMYK):
			     ** resized per channel and converted to RGB by preprocessing, as the
			     ** reference does. Only rf_image_load_preprocessed decodes to CMYK;
			     ** rf_image_load and rf_image_decode give RGB (PIL's convert("RGB")). */
};

/* PIL's default Image.MAX_IMAGE_PIXELS: larger images are refused before decoding. */
#define RF_IMAGE_MAX_PIXELS_DEFAULT 89478485ull

/* The most pixels (width x height) an image may have; larger ones are refused from their
** header, before any pixel is decoded (decompression bombs). Set for the process (every
** thread) by rf_image_set_max_pixels, else by the environment variable
** REFRACT_MAX_IMAGE_PIXELS (a positive integer), else RF_IMAGE_MAX_PIXELS_DEFAULT; a limit
** over 2^40 counts as 2^40. rf_image_set_max_pixels(0) returns to the environment/default. */
void rf_image_set_max_pixels(uint64_t pixels);
/* The limit in force; RF_ERR_INVALID if REFRACT_MAX_IMAGE_PIXELS is not a positive integer. */
enum rf_status rf_image_max_pixels(uint64_t *pixels);

/* Decodes an image file; the format is told by its signature, not its name: PNG, JPEG,
** BMP, GIF, TGA or PNM (binary P5/P6 with maximum value 255). Pixels are PIL's, in the mode PIL opens the file as:
** gray (1, 2, 4, 8 bits) as L, gray+alpha as LA, RGB, RGBA, palette as RGB (nearest set,
** tRNS ignored as convert("RGB") ignores it), 1-bit gray as L with 0/255 (nearest set);
** 16-bit samples as PIL reads them (the high byte, except 16-bit gray, which PIL opens as
** mode I and converts to 8 bits by clipping at 255; 16-bit gray+alpha opens as RGBA); gray,
** YCbCr, RGB, CMYK and YCCK JPEGs, baseline or progressive, as L or RGB
** (CMYK converted as PIL converts it). Errors name the file and the problem: RF_ERR_IO
** (cannot open or read, not a regular file: FIFOs and devices are never opened for
** reading), RF_ERR_FORMAT (empty, truncated, corrupt, a palette index beyond the palette,
** an unknown format, what libjpeg cannot decode: 12-bit and lossless JPEG among them),
** RF_ERR_UNSUPPORTED (over the pixel limit, more progressive scans than image_jpeg.c
** allows, WebP, TIFF, other PNMs...). Warnings that PIL ignores (libjpeg's "corrupt data" for a stream
** that still decodes) are ignored too; a JPEG whose data ends before the image does is an
** error, as PIL's "image file is truncated". On failure *out is zeroed. */
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
** 4-channel images premultiplied by alpha around it (not CMYK); NEAREST if in->nearest; a
** copy if the size does not change. Sides from 1 to INT_MAX, at most 2^28 pixels out.
** `out` is a new image. */
enum rf_status rf_image_resize(const struct rf_image *in, int width, int height, struct rf_image *out);
/* The window of w x h pixels at (left, top) of that resize, computing nothing outside it:
** a crop of a huge resize (1 x 20000 to 224 x 4480000) costs what the crop keeps. */
enum rf_status rf_image_resize_window(const struct rf_image *in, int width, int height, int left,
				      int top, int w, int h, struct rf_image *out);
/* PIL's NEAREST resize (what the reference uses for segmentation masks), any image. */
enum rf_status rf_image_resize_nearest(const struct rf_image *in, int width, int height,
				       struct rf_image *out);

/* Resize, crop, RGB conversion (gray replicated, alpha dropped, CMYK converted as PIL
** does) and normalisation (v / 255 - mean) / std in float32 into out[3 * size * size]
** (CHW, R G B). Only the cropped window of the resize is computed, so extreme aspect
** ratios cost what the crop keeps. mean and std must be finite, std non-zero. */
enum rf_status rf_image_preprocess(const struct rf_image *img, const struct rf_preprocess *p,
				   float *out);
/* rf_image_load + rf_image_preprocess, except that a CMYK JPEG stays CMYK through the
** resize (PIL's mode as stored), as in the reference. */
enum rf_status rf_image_load_preprocessed(const char *path, const struct rf_preprocess *p,
					  float *out);

#endif
