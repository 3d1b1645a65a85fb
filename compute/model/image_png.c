/*
** image_png.c: PNG decoding through libpng into the pixels PIL gives (see image.h for the
** modes). libpng reads the raw samples (sub-byte samples unpacked, Adam7 passes
** combined) and checks every chunk's CRC and the zlib stream; the conversion to PIL's
** 8-bit values is done here, because PIL's differ from libpng's transforms for 16-bit
** gray (PIL clips at 255) and it keeps no palette index beyond the palette (PIL would
** show a gray level there; libpng's own check only runs at the end of the file, so it is
** done here, row by row). Compute layer (L5; host only).
**
** libpng reports errors by longjmp: every libpng call runs inside png_run(), whose
** setjmp returns false on error, and everything the decode allocates hangs off one
** struct png_job, freed by its caller on every path.
*/
#include "image_internal.h"
#include "status.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct png_job {
	const struct rf_image_src *src;
	size_t pos;              /* the next byte of src->data that libpng reads */
	png_structp png;
	png_infop info;
	uint8_t *raw;            /* raw rows: one, or the whole image when interlaced */
	struct rf_image img;
	png_colorp palette;      /* libpng's, PLTE entries */
	int palette_len;
	char msg[256];           /* why libpng stopped */
	bool truncated;          /* ... because the file ended */
	bool oom;                /* ... because memory ran out */
	size_t bad_index_row;    /* a palette index past the palette: its row + 1, and value */
	unsigned bad_index;
};

static void on_error(png_structp png, png_const_charp msg)
{
	struct png_job *j = png_get_error_ptr(png);
	snprintf(j->msg, sizeof j->msg, "%s", msg);
	png_longjmp(png, 1);
}

/* Warnings are what PIL ignores too (an unknown sRGB profile, a bad ancillary chunk). */
static void on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void read_data(png_structp png, png_bytep out, size_t n)
{
	struct png_job *j = png_get_io_ptr(png);
	if (j->src->size - j->pos < n) {
		j->truncated = true;
		png_error(png, "the file ends before the image data does");
	}
	memcpy(out, j->src->data + j->pos, n);
	j->pos += n;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The CRC of every chunk up to the end of the image data, before anything is decoded:
** libpng checks them too, but only at the end of each chunk, after it has inflated the
** data, so a flipped bit would be reported as whatever zlib makes of it. Chunks after
** the image data are never read (by PIL neither); an incomplete last chunk is left to
** libpng (all the rows may be there before it). */
static enum rf_status check_crcs(const struct rf_image_src *src)
{
	const uint8_t *d = src->data;
	bool idat = false;
	for (size_t off = 8; src->size - off >= 12;) {
		uint32_t len = be32(d + off);
		if (len > 0x7fffffffu || src->size - off - 12 < len)
			break;
		const uint8_t *type = d + off + 4;
		if (idat && memcmp(type, "IDAT", 4))
			break;
		uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, len + 4);
		if (crc != be32(type + 4 + len)) {
			char name[5];
			for (int i = 0; i < 4; i++)
				name[i] = (type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z') ?
					  (char)type[i] : '?';
			name[4] = '\0';
			return rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: bad CRC in chunk '%s' at byte %zu",
					src->name, name, off);
		}
		idat |= !memcmp(type, "IDAT", 4);
		off += 12 + (size_t)len;
	}
	return RF_OK;
}

/* {===== samples to PIL's values */

/* One row of `w` raw samples (sub-byte ones unpacked to a byte each, 16-bit ones big
** endian) of colour type `color` and bit depth `depth` to the image's row `dst`. */
static void convert_row(const struct png_job *j, const uint8_t *src, int color, int depth,
			size_t w, uint8_t *dst)
{
	size_t n = w * (size_t)(color == 2 ? 3 : color == 4 ? 2 : color == 6 ? 4 : 1);
	if (color == 3) {
		for (size_t x = 0; x < w; x++)
			memcpy(dst + 3 * x, &j->palette[src[x]], 3);
	} else if (depth < 8) {
		/* PIL's modes 1, L;2 and L;4 scale to 0..255: 255, 85 and 17 per step. */
		unsigned scale = depth == 1 ? 255 : depth == 2 ? 85 : 17;
		for (size_t i = 0; i < n; i++)
			dst[i] = (uint8_t)(src[i] * scale);
	} else if (depth == 8) {
		memcpy(dst, src, n);
	} else if (color == 0) {
		/* Mode I converted to L or RGB: clipped, not scaled. */
		for (size_t i = 0; i < n; i++)
			dst[i] = src[2 * i] ? 255 : src[2 * i + 1];
	} else if (color == 4) {
		/* 16-bit gray+alpha opens as RGBA (rawmode LA;16B): L's high byte thrice, A's. */
		for (size_t x = 0; x < w; x++) {
			dst[4 * x] = dst[4 * x + 1] = dst[4 * x + 2] = src[4 * x];
			dst[4 * x + 3] = src[4 * x + 2];
		}
	} else {
		/* RGB;16B and RGBA;16B: the high byte of each sample. */
		for (size_t i = 0; i < n; i++)
			dst[i] = src[2 * i];
	}
}

/* Records the first palette index past the palette in a row of indices. */
static void check_indices(struct png_job *j, const uint8_t *idx, size_t w, size_t y)
{
	for (size_t x = 0; x < w && !j->bad_index_row; x++) {
		if (idx[x] >= j->palette_len) {
			j->bad_index_row = y + 1;
			j->bad_index = idx[x];
		}
	}
}

/* }===== */

/* PIL's mode for an IHDR: channels kept and whether it resizes with NEAREST. */
static void pil_mode(int color, int depth, int *channels, bool *nearest)
{
	static const int by_color[7] = {1, 0, 3, 3, 2, 0, 4};
	*channels = color == 4 && depth == 16 ? 4 : by_color[color];
	*nearest = color == 3 || (color == 0 && depth == 1);
}

/* Chunks PIL never uses for pixels: skipped unread (no text or profile decompression). */
static const png_byte SKIPPED[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0"
				  "sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt";

/* Everything libpng does, under its setjmp: false (j->msg set) if it stopped. */
static bool png_run(struct png_job *j)
{
	if (setjmp(png_jmpbuf(j->png)))
		return false;
	png_structp png = j->png;
	png_set_read_fn(png, j, read_data);
	/* The pixel limit is ours (checked from IHDR before libpng ran); libpng's default
	** 1,000,000 per side would refuse aspect ratios PIL accepts. */
	png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
	/* A bad CRC is an error in every chunk, as PIL's. */
	png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, SKIPPED, (int)(sizeof SKIPPED / 5));
	png_read_info(png, j->info);

	png_uint_32 w32, h32;
	int depth, color, interlace;
	png_get_IHDR(png, j->info, &w32, &h32, &depth, &color, &interlace, NULL, NULL);
	if (color == 3 && !png_get_PLTE(png, j->info, &j->palette, &j->palette_len))
		png_error(png, "no PLTE chunk in a palette image");
	if (depth < 8)
		png_set_packing(png);
	int passes = png_set_interlace_handling(png);
	png_read_update_info(png, j->info);

	size_t w = w32, h = h32, rowbytes = png_get_rowbytes(png, j->info);
	int channels;
	bool nearest;
	pil_mode(color, depth, &channels, &nearest);
	j->raw = malloc(interlace ? rowbytes * h : rowbytes);
	j->oom = !j->raw || rf_image_alloc(j->src, (int)w, (int)h, channels, &j->img) != RF_OK;
	if (j->oom)
		png_error(png, "out of memory");
	j->img.nearest = nearest;
	size_t stride = w * (size_t)channels;
	for (int p = 0; p < passes; p++) {
		for (size_t y = 0; y < h; y++) {
			uint8_t *row = interlace ? j->raw + y * rowbytes : j->raw;
			png_read_row(png, row, NULL);
			if (p == passes - 1 && color == 3)
				check_indices(j, row, w, y);
			if (p == passes - 1 && !j->bad_index_row)
				convert_row(j, row, color, depth, w, j->img.pixels + y * stride);
		}
		if (j->bad_index_row)
			break;
	}
	return true;
}

enum rf_status rf_image_decode_png(const struct rf_image_src *src, struct rf_image *out)
{
	*out = (struct rf_image){0};
	/* The pixel limit from IHDR (bytes 16-23 of a well-formed file), before libpng
	** allocates anything; libpng validates the rest. */
	if (src->size >= 33 && !memcmp(src->data + 12, "IHDR", 4)) {
		enum rf_status s = rf_image_check_size(src, "PNG", be32(src->data + 16),
						       be32(src->data + 20));
		if (s != RF_OK)
			return s;
	}
	enum rf_status s = check_crcs(src);
	if (s != RF_OK)
		return s;
	struct png_job j = {.src = src};
	j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, on_error, on_warning);
	if (j.png)
		j.info = png_create_info_struct(j.png);
	if (!j.png || !j.info)
		s = rf_error(RF_ERR_OOM_HOST, "%s: cannot create libpng's decoder", src->name);
	else if (!png_run(&j))
		s = j.oom ? rf_error(RF_ERR_OOM_HOST, "%s: out of memory decoding the PNG", src->name) :
		    rf_error(RF_ERR_FORMAT, "%s: %s PNG: %s", src->name,
			     j.truncated ? "truncated" : "corrupt", j.msg);
	else if (j.bad_index_row)
		s = rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: palette index %u in row %zu is beyond the "
			     "palette's %d colours", src->name, j.bad_index, j.bad_index_row, j.palette_len);
	png_destroy_read_struct(&j.png, &j.info, NULL);
	free(j.raw);
	if (s != RF_OK)
		rf_image_fini(&j.img);
	else
		*out = j.img;
	return s;
}
