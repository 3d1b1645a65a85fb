/*
** image.c: reading and decoding PNG and JPEG files into 8-bit images (see image.h).
** Compute layer (L5; host only).
**
** stb_image does the decoding, but it is lenient where the reference (PIL) is not and
** it cannot say which PIL mode a file opens as, so each file's structure is walked here
** first: PNG chunks (lengths, CRCs, IHDR fields, IEND present) and JPEG markers (frame
** type, precision, components, EOI present). That walk gives the clear error for a
** truncated, corrupt, oversized or unsupported file, and the channel count PIL would use:
** palette PNGs open as RGB (PIL mode P), PNG transparency chunks are ignored (PIL keeps
** them aside and drops them converting to RGB), so only real alpha channels are kept.
** Nothing here keeps state; stb_image's failure reason is thread-local.
*/
#include "image.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb_image.h>

/* Limits: a side over 32768 (also stb_impl.c's STBI_MAX_DIMENSIONS) or over 2^28 pixels
** (1 GiB as RGBA) is refused before any pixel memory is allocated. */
#define MAX_SIDE 32768u
#define MAX_PIXELS (1ull << 28)
/* Larger files are refused before they are read (stb takes an int length). */
#define MAX_FILE (1ull << 30)

/* What the structure walk learns about a file. */
struct probe {
	const char *format;     /* "PNG" or "JPEG" */
	uint32_t width, height;
	int channels;           /* what the decoded image keeps (PIL's mode) */
	bool nearest;           /* PIL modes P and 1: resized with NEAREST */
};

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static enum rf_status check_size(const char *name, const struct probe *p)
{
	if (p->width == 0 || p->height == 0)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s: zero width or height", name, p->format);
	if (p->width > MAX_SIDE || p->height > MAX_SIDE ||
	    (uint64_t)p->width * p->height > MAX_PIXELS)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s of %u x %u pixels is over the limit (%u per "
				"side, 2^28 in all)", name, p->format, p->width, p->height, MAX_SIDE);
	return RF_OK;
}

/* {===== PNG */

static const uint8_t PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* IHDR: bit depth and colour type as PIL opens them (16-bit refused). */
static enum rf_status png_header(const uint8_t *h, const char *name, struct probe *p)
{
	p->width = be32(h);
	p->height = be32(h + 4);
	unsigned depth = h[8], color = h[9];
	bool ok = h[10] == 0 && h[11] == 0 && h[12] <= 1;
	switch (color) {
	case 0: ok = ok && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16); break;
	case 3: ok = ok && (depth == 1 || depth == 2 || depth == 4 || depth == 8); break;
	case 2: case 4: case 6: ok = ok && (depth == 8 || depth == 16); break;
	default: ok = false;
	}
	if (!ok)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: invalid header (bit depth %u, colour "
				"type %u, methods %u/%u/%u)", name, depth, color, h[10], h[11], h[12]);
	if (depth == 16)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: 16-bit PNG is not supported (8-bit gray, gray+"
				"alpha, RGB, RGBA or palette only)", name);
	static const int channels[7] = {1, 0, 3, 3, 2, 0, 4};
	p->channels = channels[color];
	p->nearest = color == 3 || depth == 1;
	return check_size(name, p);
}

static enum rf_status probe_png(const uint8_t *d, size_t n, const char *name, struct probe *p)
{
	bool ihdr = false, plte = false, idat = false;
	p->format = "PNG";
	for (size_t off = 8;;) {
		if (n - off < 12)
			return rf_error(RF_ERR_FORMAT, "%s: truncated PNG: it ends after %zu bytes, before "
					"the IEND chunk", name, n);
		uint32_t len = be32(d + off);
		const uint8_t *type = d + off + 4;
		if (len > 0x7fffffffu)
			return rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: chunk length %u at byte %zu", name,
					len, off);
		if (n - off - 12 < len)
			return rf_error(RF_ERR_FORMAT, "%s: truncated PNG: chunk '%.4s' at byte %zu needs %u "
					"bytes, the file ends first", name, (const char *)type, off, len);
		uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, len + 4);
		if (crc != be32(type + 4 + len))
			return rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: bad CRC in chunk '%.4s' at byte %zu",
					name, (const char *)type, off);
		if (!ihdr) {
			if (memcmp(type, "IHDR", 4) || len != 13)
				return rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: the first chunk is not IHDR", name);
			enum rf_status s = png_header(type + 4, name, p);
			if (s != RF_OK)
				return s;
			ihdr = true;
		}
		plte |= !memcmp(type, "PLTE", 4);
		idat |= !memcmp(type, "IDAT", 4);
		if (!memcmp(type, "IEND", 4))
			break;
		off += 12 + (size_t)len;
	}
	if (!idat || (p->channels == 3 && p->nearest && !plte))
		return rf_error(RF_ERR_FORMAT, "%s: corrupt PNG: no %s chunk", name, idat ? "PLTE" : "IDAT");
	return RF_OK;
}

/* }===== */

/* {===== JPEG */

/* Skips entropy-coded data from d[i]: returns the index of the next marker's 0xFF (not a
** stuffed 0xFF00 nor a restart marker), or n if the data ends first. */
static size_t skip_scan(const uint8_t *d, size_t n, size_t i)
{
	for (; i + 1 < n; i++) {
		if (d[i] == 0xff && d[i + 1] != 0 && d[i + 1] != 0xff &&
		    !(d[i + 1] >= 0xd0 && d[i + 1] <= 0xd7))
			return i;
	}
	return n;
}

/* SOFn: only the frame types stb_image decodes (baseline, extended and progressive
** Huffman), 8-bit, gray or three-component colour. */
static enum rf_status jpeg_frame(const uint8_t *s, uint32_t len, unsigned marker, const char *name,
				 struct probe *p)
{
	if (marker != 0xc0 && marker != 0xc1 && marker != 0xc2)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: JPEG frame type SOF%u (lossless, hierarchical or "
				"arithmetic-coded) is not supported", name, marker - 0xc0);
	if (len < 8)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt JPEG: short frame header", name);
	unsigned precision = s[0], comps = s[5];
	p->height = be16(s + 1);
	p->width = be16(s + 3);
	if (precision != 8)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %u-bit JPEG is not supported", name, precision);
	if (comps == 4)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: CMYK JPEG is not supported", name);
	if (comps != 1 && comps != 3)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt JPEG: %u components", name, comps);
	if (p->height == 0)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: JPEG with the height in a DNL marker is not "
				"supported", name);
	p->channels = (int)comps;
	p->nearest = false;
	return check_size(name, p);
}

static enum rf_status probe_jpeg(const uint8_t *d, size_t n, const char *name, struct probe *p)
{
	bool frame = false, scan = false;
	p->format = "JPEG";
	for (size_t i = 2;;) {
		/* Like libjpeg, tolerate stray bytes before a marker, and fill bytes. */
		while (i < n && d[i] != 0xff)
			i++;
		while (i + 1 < n && d[i + 1] == 0xff)
			i++;
		if (i + 1 >= n)
			return rf_error(RF_ERR_FORMAT, "%s: truncated JPEG: no end-of-image marker", name);
		unsigned m = d[i + 1];
		i += 2;
		if (m == 0xd9)
			break;
		if (m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7))
			continue;
		if (n - i < 2 || be16(d + i) < 2 || n - i < be16(d + i))
			return rf_error(RF_ERR_FORMAT, "%s: truncated JPEG: segment 0x%02X at byte %zu ends "
					"past the end of the file", name, m, i - 2);
		uint32_t len = be16(d + i);
		bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
		if (sof && !frame) {
			enum rf_status s = jpeg_frame(d + i + 2, len - 2, m, name, p);
			if (s != RF_OK)
				return s;
			frame = true;
		}
		if (m == 0xda && !frame)
			return rf_error(RF_ERR_FORMAT, "%s: corrupt JPEG: scan before the frame header", name);
		i += len;
		if (m == 0xda) {
			scan = true;
			i = skip_scan(d, n, i);
		}
	}
	if (!scan)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt JPEG: no image data", name);
	return RF_OK;
}

/* }===== */

/* Names formats recognised by their signature but not decoded. */
static const char *other_format(const uint8_t *d, size_t n)
{
	if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
		return "GIF";
	if (n >= 2 && !memcmp(d, "BM", 2))
		return "BMP";
	if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
		return "WebP";
	if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4)))
		return "TIFF";
	return NULL;
}

static enum rf_status probe(const uint8_t *d, size_t n, const char *name, struct probe *p)
{
	if (n == 0)
		return rf_error(RF_ERR_FORMAT, "%s: empty file", name);
	if (n >= 8 && !memcmp(d, PNG_SIG, 8))
		return probe_png(d, n, name, p);
	if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return probe_jpeg(d, n, name, p);
	const char *other = other_format(d, n);
	if (other)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: %s images are not supported (PNG or JPEG only)",
				name, other);
	return rf_error(RF_ERR_FORMAT, "%s: not a PNG or JPEG file (unrecognised signature)", name);
}

enum rf_status rf_image_decode(const void *data, size_t size, const char *name, struct rf_image *out)
{
	*out = (struct rf_image){0};
	if (!name)
		name = "<memory>";
	if (!data && size)
		return rf_error(RF_ERR_INVALID, "%s: NULL data", name);
	struct probe p;
	enum rf_status s = probe(data, size, name, &p);
	if (s != RF_OK)
		return s;
	if (size > MAX_FILE)
		return rf_error(RF_ERR_UNSUPPORTED, "%s: file over 1 GiB", name);
	int w, h, comp;
	/* stb converts to the channel count asked for: palette to RGB, tRNS-derived alpha
	** dropped, 1/2/4-bit gray scaled to 0..255 as PIL does. Its buffer comes from malloc
	** (stb_impl.c keeps the default allocator), so rf_image_free can free() it. */
	uint8_t *px = stbi_load_from_memory(data, (int)size, &w, &h, &comp, p.channels);
	if (!px)
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s data (stb_image: %s)", name, p.format,
				stbi_failure_reason());
	if ((uint32_t)w != p.width || (uint32_t)h != p.height) {
		stbi_image_free(px);
		return rf_error(RF_ERR_FORMAT, "%s: corrupt %s: decoded %d x %d, header says %u x %u", name,
				p.format, w, h, p.width, p.height);
	}
	*out = (struct rf_image){w, h, p.channels, p.nearest, px};
	return RF_OK;
}

static enum rf_status read_file(const char *path, uint8_t **data, size_t *size)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer before fstat refuses it (it
	** changes nothing for a regular file). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return rf_error(RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	enum rf_status s = RF_OK;
	if (fstat(fd, &st) != 0)
		s = rf_error(RF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		s = rf_error(RF_ERR_IO, "%s: not a regular file", path);
	else if ((uint64_t)st.st_size > MAX_FILE)
		s = rf_error(RF_ERR_UNSUPPORTED, "%s: file over 1 GiB", path);
	size_t n = s == RF_OK ? (size_t)st.st_size : 0, got = 0;
	uint8_t *buf = s == RF_OK ? malloc(n ? n : 1) : NULL;
	if (s == RF_OK && !buf)
		s = rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu bytes", path, n);
	while (s == RF_OK && got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			s = rf_error(RF_ERR_IO, "%s: read error: %s", path, r < 0 ? strerror(errno) : "file shrank");
		else
			got += (size_t)r;
	}
	close(fd);
	if (s != RF_OK) {
		free(buf);
		return s;
	}
	*data = buf;
	*size = n;
	return RF_OK;
}

enum rf_status rf_image_load(const char *path, struct rf_image *out)
{
	*out = (struct rf_image){0};
	uint8_t *data = NULL;
	size_t size = 0;
	enum rf_status s = read_file(path, &data, &size);
	if (s != RF_OK)
		return s;
	s = rf_image_decode(data, size, path, out);
	free(data);
	return s;
}

void rf_image_free(struct rf_image *img)
{
	if (!img)
		return;
	free(img->pixels);
	img->pixels = NULL;
}
