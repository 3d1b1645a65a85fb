/*
** image_stb.c: BMP, GIF (first frame), TGA and binary PNM through stb_image, behind the
** same pixel limit as PNG and JPEG, read from the header (stbi_info) before decoding.
** These formats are not in the reference's data; their pixels are stb_image's, which
** equal PIL's for plain files (tests/data/images) but not always (GIF transparency, BMP
** bit fields). Palette BMPs and GIFs are PIL modes P: resized with NEAREST. PNMs are
** only decoded where stb's pixels are PIL's (8-bit, maximum value 255).
** stb_impl.c compiles stb_image for these four formats only. Compute layer (L5; host
** only; stb_image's failure reason is thread-local).
*/
#include "image_internal.h"
#include "status.h"

#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include <stb_image.h>

/* A BMP of at most 8 bits per pixel has a palette (PIL mode P, or 1). */
static bool bmp_palette(const uint8_t *d, size_t n)
{
	/* File header (14 bytes), then the info header: size (4), and for the 40-byte and
	** later headers width, height (4 each), planes (2), bits per pixel (2); the 12-byte
	** OS/2 header has 2-byte sides. */
	if (n < 18)
		return false;
	uint32_t hsize = d[14] | (uint32_t)d[15] << 8 | (uint32_t)d[16] << 16 | (uint32_t)d[17] << 24;
	size_t at = hsize == 12 ? 24 : 28;
	return n >= at + 2 && (d[at] | d[at + 1] << 8) <= 8;
}

/* stb_image 2.27 decodes a PNM whose pixel data is cut short without a word (the rest of
** its buffer left as it was), ignores the maximum value of 8-bit files, takes the low
** byte of 16-bit ones (PIL scales by the maximum value), and overflows an int reading a
** header number of ten digits. So a PNM's header is read here first, as stb and PIL read
** it: magic, then width, height and maximum value, each after whitespace and comments,
** then one byte, then the data. Decoded only if its numbers fit, the maximum value is
** 255 (where stb's pixels are PIL's) and the data is all there. */
static enum rf_status pnm_check(const struct rf_image_src *src)
{
	const uint8_t *d = src->data;
	size_t n = src->size, i = 2;
	uint64_t v[3] = {0};
	for (int field = 0; field < 3; field++) {
		for (;;) {
			while (i < n && d[i] && strchr(" \t\n\v\f\r", d[i]))
				i++;
			if (i >= n || d[i] != '#')
				break;
			while (i < n && d[i] != '\n' && d[i] != '\r')
				i++;
		}
		while (i < n && d[i] >= '0' && d[i] <= '9' && v[field] <= INT_MAX)
			v[field] = v[field] * 10 + (uint64_t)(d[i++] - '0');
		if (v[field] > INT_MAX)
			return rf_error(RF_ERR_FORMAT, "%s: corrupt PNM: a header number is over 2^31", src->name);
	}
	if (v[2] != 255)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: PNM with the maximum value %" PRIu64 " is not "
				"supported (255 only)", src->name, v[2]);
	enum rf_status s = rf_image_check_size(src, "PNM", v[0], v[1]);
	if (s != RF_OK)
		return s;
	i++;   /* the byte after the maximum value */
	if (i > n || n - i < v[0] * v[1] * (d[1] == '6' ? 3u : 1u))
		return rf_error(RF_ERR_FORMAT, "%s: truncated PNM: the file ends before the pixel data "
				"does", src->name);
	return RF_OK;
}

enum rf_status rf_image_decode_stb(const struct rf_image_src *src, const char *format,
				   struct rf_image *out)
{
	*out = (struct rf_image){0};
	bool guess = !strcmp(format, "TGA");
	if (src->size > INT_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s file over 2 GiB", src->name, format);
	if (!strcmp(format, "PNM")) {
		enum rf_status s = pnm_check(src);
		if (s != RF_OK)
			return s;
	}
	int w, h, comp;
	if (!stbi_info_from_memory(src->data, (int)src->size, &w, &h, &comp)) {
		if (guess)
			return rf_error(RF_ERR_FORMAT, "%s: not an image file (no PNG, JPEG, BMP, GIF or "
					"PNM signature, and not a valid TGA)", src->name);
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s: %s", src->name, format,
				stbi_failure_reason());
	}
	/* A negative BMP height is a top-down BMP (PIL and stb_image's decoder read it so):
	** stb's info call gives the header's signed value. */
	if (!strcmp(format, "BMP") && h < 0 && h != INT_MIN)
		h = -h;
	enum rf_status s = rf_image_check_size(src, format, (uint64_t)(w > 0 ? w : 0),
					       (uint64_t)(h > 0 ? h : 0));
	if (s != RF_OK)
		return s;
	/* GIF frames come as RGBA; PIL opens them as P and convert("RGB") drops alpha. */
	int channels = !strcmp(format, "GIF") ? 3 : comp < 1 || comp > 4 ? 3 : comp;
	int w2, h2, comp2;
	uint8_t *px = stbi_load_from_memory(src->data, (int)src->size, &w2, &h2, &comp2, channels);
	if (!px)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s: %s", src->name, format,
				stbi_failure_reason());
	if (w2 != w || h2 != h) {
		stbi_image_free(px);
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s: decoded %d x %d, the header says %d x %d",
				src->name, format, w2, h2, w, h);
	}
	/* stb_impl.c keeps stb's default allocator, so rf_image_fini's free() fits. */
	*out = (struct rf_image){.width = w, .height = h, .channels = channels, .pixels = px};
	out->nearest = !strcmp(format, "GIF") || (!strcmp(format, "BMP") &&
						 bmp_palette(src->data, src->size));
	return RF_OK;
}
