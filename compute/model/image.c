/*
** image.c: reading image files safely and handing them to the decoder their signature
** names (see image.h): PNG to libpng (image_png.c), JPEG to libjpeg-turbo (image_jpeg.c),
** BMP/GIF/TGA/PNM to stb_image (image_stb.c); the pixel limit and its setting; the
** helpers the decoders share. Compute layer (L5; host only).
**
** A path is checked to be a regular file before it is opened (a FIFO would block the
** open, a device would never end), and opened non-blocking so that a FIFO swapped in
** between cannot block either; the opened file is checked again.
*/
#include "image_internal.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Larger files are refused before they are read. */
#define MAX_FILE (1ull << 30)
/* The most any pixel limit allows. */
#define MAX_PIXELS_CAP (1ull << 40)

/* 0: not set by rf_image_set_max_pixels (the environment or the default applies). */
static _Atomic uint64_t max_pixels_set;

void rf_image_set_max_pixels(uint64_t pixels)
{
	atomic_store(&max_pixels_set, pixels);
}

enum rf_status rf_image_max_pixels(uint64_t *pixels)
{
	*pixels = atomic_load(&max_pixels_set);
	if (*pixels)
		return RF_OK;
	const char *env = getenv("REFRACT_MAX_IMAGE_PIXELS");
	*pixels = RF_IMAGE_MAX_PIXELS_DEFAULT;
	if (!env || !*env)
		return RF_OK;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(env, &end, 10);
	if (errno || *end || v == 0 || env[0] == '-' || env[0] == '+' || env[0] == ' ')
		return rf_error(RF_ERR_INVALID, "REFRACT_MAX_IMAGE_PIXELS=\"%s\" is not a positive "
				"integer (a pixel count; PIL's default is %llu)", env,
				RF_IMAGE_MAX_PIXELS_DEFAULT);
	*pixels = v;
	return RF_OK;
}

enum rf_status rf_image_check_size(const struct rf_image_src *src, const char *format,
				   uint64_t width, uint64_t height)
{
	if (width == 0 || height == 0)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s: the header says %" PRIu64 " x %" PRIu64
				" pixels (a side is zero)", src->name, format, width, height);
	/* Sides come from 32-bit fields at most, so the product cannot overflow; a limit set
	** past 2^40 is taken as 2^40, so that no byte count computed from it can. */
	uint64_t limit = src->max_pixels < MAX_PIXELS_CAP ? src->max_pixels : MAX_PIXELS_CAP;
	if (width * height > limit)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s of %" PRIu64 " x %" PRIu64 " pixels is over "
				"the limit of %" PRIu64 " pixels (a decompression bomb?); raise it with "
				"REFRACT_MAX_IMAGE_PIXELS", src->name, format, width, height, limit);
	if (width > INT32_MAX || height > INT32_MAX)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s of %" PRIu64 " x %" PRIu64 " pixels: a side "
				"is over 2^31 - 1", src->name, format, width, height);
	return RF_OK;
}

enum rf_status rf_image_alloc(const struct rf_image_src *src, int width, int height, int channels,
			      struct rf_image *out)
{
	size_t n = (size_t)width * (size_t)height * (size_t)channels;
	*out = (struct rf_image){.width = width, .height = height, .channels = channels};
	out->pixels = malloc(n ? n : 1);
	if (!out->pixels)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu bytes for the pixels", src->name, n);
	return RF_OK;
}

void rf_image_cmyk_to_rgb(const uint8_t *cmyk, size_t pixels, uint8_t *rgb)
{
	for (size_t i = 0; i < pixels; i++) {
		const uint8_t *p = cmyk + 4 * i;
		int nk = 255 - p[3], c[3] = {p[0], p[1], p[2]};
		for (int k = 0; k < 3; k++) {
			int t = c[k] * nk + 128;
			int v = nk - (((t >> 8) + t) >> 8);
			rgb[3 * i + (size_t)k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	}
}

/* {===== formats */

static const uint8_t PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* The format stb_image decodes for this signature, or NULL. TGA has no signature: it is
** the last guess, as in PIL, and its header is checked by stb. */
static const char *stb_format(const uint8_t *d, size_t n)
{
	if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
		return "GIF";
	if (n >= 2 && !memcmp(d, "BM", 2))
		return "BMP";
	if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6'))
		return "PNM";
	return NULL;
}

/* Names formats recognised by their signature but not decoded. */
static const char *unsupported_format(const uint8_t *d, size_t n)
{
	if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
		return "WebP";
	if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4)))
		return "TIFF";
	if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '4')
		return "text or 1-bit PNM (P1-P4)";
	if (n >= 8 && !memcmp(d + 4, "ftyp", 4))
		return "HEIF/AVIF";
	if (n >= 4 && !memcmp(d, "\0\0\1\0", 4))
		return "ICO";
	return NULL;
}

static enum rf_status dispatch(const struct rf_image_src *src, struct rf_image *out)
{
	const uint8_t *d = src->data;
	size_t n = src->size;
	if (n == 0)
		return rf_error(RF_ERR_FORMAT, "%s: empty file", src->name);
	if (n >= 8 && !memcmp(d, PNG_SIG, 8))
		return rf_image_decode_png(src, out);
	if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return rf_image_decode_jpeg(src, out);
	const char *fmt = stb_format(d, n);
	if (fmt)
		return rf_image_decode_stb(src, fmt, out);
	const char *other = unsupported_format(d, n);
	if (other)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s images are not supported (PNG, JPEG, BMP, "
				"GIF, TGA or binary PNM)", src->name, other);
	return rf_image_decode_stb(src, "TGA", out);
}

/* }===== */

static enum rf_status decode(const void *data, size_t size, const char *name, bool keep_cmyk,
			     struct rf_image *out)
{
	*out = (struct rf_image){0};
	if (!name)
		name = "<memory>";
	if (!data && size)
		return rf_error(RF_ERR_INVALID, "%s: NULL data", name);
	if (size > MAX_FILE)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: file over 1 GiB", name);
	struct rf_image_src src = {data, size, name, 0, keep_cmyk};
	enum rf_status s = rf_image_max_pixels(&src.max_pixels);
	if (s != RF_OK)
		return rf_error_wrap(s, "%s", name);
	s = dispatch(&src, out);
	if (s != RF_OK)
		rf_image_fini(out);
	return s;
}

enum rf_status rf_image_decode(const void *data, size_t size, const char *name, struct rf_image *out)
{
	return decode(data, size, name, false, out);
}

/* {===== files */

static enum rf_status regular_file(const char *path, const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return RF_OK;
	const char *what = S_ISDIR(st->st_mode) ? "a directory" : S_ISFIFO(st->st_mode) ? "a FIFO" :
			   S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device" :
			   S_ISSOCK(st->st_mode) ? "a socket" : "not a regular file";
	return rf_error(RF_ERR_IO, "%s: not a regular file (%s)", path, what);
}

static enum rf_status read_all(int fd, const char *path, size_t n, uint8_t *buf)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rf_error(RF_ERR_IO, "%s: read error: %s", path, strerror(errno));
		if (r == 0)
			return rf_error(RF_ERR_IO, "%s: read error: the file shrank while it was read", path);
		got += (size_t)r;
	}
	return RF_OK;
}

static enum rf_status read_file(const char *path, uint8_t **data, size_t *size)
{
	*data = NULL;
	*size = 0;
	if (!path)
		return rf_error(RF_ERR_INVALID, "image: NULL path");
	struct stat st, st2;
	if (stat(path, &st) != 0)
		return rf_error(RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	enum rf_status s = regular_file(path, &st);
	if (s != RF_OK)
		return s;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return rf_error(RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st2) != 0)
		s = rf_error(RF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
	else
		s = regular_file(path, &st2);
	if (s == RF_OK && (uint64_t)st2.st_size > MAX_FILE)
		s = rf_error(RF_ERR_UNSUPPORTED, "%s: file over 1 GiB", path);
	size_t n = s == RF_OK ? (size_t)st2.st_size : 0;
	uint8_t *buf = s == RF_OK ? malloc(n ? n : 1) : NULL;
	if (s == RF_OK && !buf)
		s = rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu bytes", path, n);
	if (s == RF_OK)
		s = read_all(fd, path, n, buf);
	close(fd);
	if (s != RF_OK) {
		free(buf);
		return s;
	}
	*data = buf;
	*size = n;
	return RF_OK;
}

static enum rf_status load(const char *path, bool keep_cmyk, struct rf_image *out)
{
	*out = (struct rf_image){0};
	uint8_t *data;
	size_t size;
	enum rf_status s = read_file(path, &data, &size);
	if (s != RF_OK)
		return s;
	s = decode(data, size, path, keep_cmyk, out);
	free(data);
	return s;
}

enum rf_status rf_image_load(const char *path, struct rf_image *out)
{
	return load(path, false, out);
}

enum rf_status rf_image_load_stored(const char *path, struct rf_image *out)
{
	return load(path, true, out);
}

/* }===== */

void rf_image_fini(struct rf_image *img)
{
	if (!img)
		return;
	free(img->pixels);
	img->pixels = NULL;
}
