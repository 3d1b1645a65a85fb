/*
** image_write.c: PNG files from 8-bit images (see image_write.h). stb_image_write encodes
** into memory; the bytes then go through rf_file_out, so a failure names the path and the
** reason (stb's own file writer only says that it failed) and never leaves half a file.
** Compute layer (L5; host only).
*/
#include "image_write.h"
#include "file_out.h"
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

/* The same limits as decoding (image.c): a side over 32768 or over 2^28 pixels. */
#define MAX_SIDE 32768
#define MAX_PIXELS (1ull << 28)

/* The encoded file, grown as stb hands over pieces. */
struct sink {
	uint8_t *data;
	size_t size, cap;
	bool failed;
};

static void sink_write(void *context, void *data, int size)
{
	struct sink *k = context;
	if (k->failed || size <= 0)
		return;
	if (k->size + (size_t)size > k->cap) {
		size_t cap = RF_MAX(k->cap * 2, k->size + (size_t)size + 4096);
		uint8_t *grown = realloc(k->data, cap);
		if (!grown) {
			k->failed = true;
			return;
		}
		k->data = grown;
		k->cap = cap;
	}
	memcpy(k->data + k->size, data, (size_t)size);
	k->size += (size_t)size;
}

enum rf_status rf_image_write_png(const char *path, const struct rf_image *img)
{
	if (img->width < 1 || img->height < 1 || img->width > MAX_SIDE || img->height > MAX_SIDE ||
	    (uint64_t)img->width * (uint64_t)img->height > MAX_PIXELS)
		return rf_error(RF_ERR_INVALID, "%s: a PNG of %d x %d pixels is outside the limits (1..%d per "
				"side, 2^28 in all)", path, img->width, img->height, MAX_SIDE);
	if (img->channels < 1 || img->channels > 4)
		return rf_error(RF_ERR_INVALID, "%s: a PNG has 1 to 4 channels, not %d", path, img->channels);
	struct sink k = { 0 };
	int ok = stbi_write_png_to_func(sink_write, &k, img->width, img->height, img->channels,
					img->pixels, img->width * img->channels);
	enum rf_status s = RF_OK;
	if (!ok || k.failed) {
		s = rf_error(RF_ERR_OOM_HOST, "%s: no memory to encode a %d x %d PNG", path, img->width,
			     img->height);
		goto out_free;
	}
	struct rf_file_out f;
	if ((s = rf_file_out_open(&f, path)) != RF_OK)
		goto out_free;
	if ((s = rf_file_out_write(&f, k.data, k.size)) != RF_OK) {
		rf_file_out_abort(&f);
		goto out_free;
	}
	s = rf_file_out_commit(&f);
out_free:
	free(k.data);
	return s;
}
