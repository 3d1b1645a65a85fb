/*
** image_internal.h: what the format decoders (image_png.c, image_jpeg.c, image_stb.c)
** share with the file reader and dispatcher (image.c). Each decoder gets the whole file
** in memory and gives an image in PIL's mode, or a status with a message naming the file.
** Compute layer (L5; host only, internal).
*/
#ifndef RF_COMPUTE_MODEL_IMAGE_INTERNAL_H
#define RF_COMPUTE_MODEL_IMAGE_INTERNAL_H

#include "image.h"

/* The bytes of one file and what a decoder needs to know about the call. */
struct rf_image_src {
	const uint8_t *data;
	size_t size;
	const char *name;      /* for messages: the path, or the caller's name for memory */
	uint64_t max_pixels;   /* the limit in force (rf_image_max_pixels) */
	bool keep_cmyk;        /* a CMYK JPEG stays CMYK (rf_image.cmyk) instead of RGB */
};

/* RF_OK if width x height is a size to decode: RF_ERR_FORMAT naming the file for a zero
** side, RF_ERR_UNSUPPORTED for more than src->max_pixels pixels. */
enum rf_status rf_image_check_size(const struct rf_image_src *src, const char *format,
				   uint64_t width, uint64_t height);

/* A new image of width x height x channels (pixels malloc'd, uninitialised). */
enum rf_status rf_image_alloc(const struct rf_image_src *src, int width, int height, int channels,
			      struct rf_image *out);

/* PIL's CMYK -> RGB (Convert.c cmyk2rgb): c' = 255 - k - c (255 - k) / 255, rounded with
** PIL's MULDIV255, for `pixels` pixels of 4 bytes into 3 bytes (may be the same buffer). */
void rf_image_cmyk_to_rgb(const uint8_t *cmyk, size_t pixels, uint8_t *rgb);

/* rf_image_load, except that a CMYK JPEG stays CMYK (rf_image_load_preprocessed). */
enum rf_status rf_image_load_stored(const char *path, struct rf_image *out);

enum rf_status rf_image_decode_png(const struct rf_image_src *src, struct rf_image *out);
enum rf_status rf_image_decode_jpeg(const struct rf_image_src *src, struct rf_image *out);
/* BMP, GIF, TGA, PNM; `format` names the one the signature says ("TGA" when none does). */
enum rf_status rf_image_decode_stb(const struct rf_image_src *src, const char *format,
				   struct rf_image *out);

#endif
