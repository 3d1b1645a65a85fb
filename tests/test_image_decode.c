/*
** test_image_decode.c: images decoded as PIL decodes them. Every kind of file in
** tests/data/images (written by scripts/dev/gen_image_goldens.py: PNG in every colour type
** and depth, interlaced, with PLTE/tRNS; JPEG gray, 4:4:4, 4:2:2, 4:2:0, progressive,
** CMYK, YCCK, damaged; BMP, GIF, TGA, PNM; extreme aspect ratios) against PIL's arrays bit
** for bit, and through the preprocessing against the reference transform; the PNG modes
** PIL distinguishes on files written here; the pixel limit (setter and environment);
** malformed files and paths that are not regular files: each a clear error naming the
** file, never a crash, a hang or a partly decoded image.
*/
#include "harness.h"
#include "image.h"
#include "safetensors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char data_dir[1024], tmp_dir[64];

/* {===== files */

struct bytes {
	uint8_t *v;
	size_t n;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	b->v = realloc(b->v, b->n + n);
	memcpy(b->v + b->n, p, n);
	b->n += n;
}

static void put_be32(struct bytes *b, uint32_t x)
{
	uint8_t q[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
	put(b, q, 4);
}

static void put_chunk(struct bytes *b, const char *type, const void *data, size_t n)
{
	put_be32(b, (uint32_t)n);
	size_t at = b->n;
	put(b, type, 4);
	put(b, data, n);
	put_be32(b, (uint32_t)crc32(0, b->v + at, (uInt)(n + 4)));
}

/* A PNG of w x h with the given bit depth and colour type; `rows` are the packed
** scanlines without filter bytes (filter 0 is added; NULL: zeros), `plte`/`trns`
** optional chunks. */
static struct bytes make_png(uint32_t w, uint32_t h, int depth, int color, const uint8_t *rows,
			     size_t row_bytes, const void *plte, size_t plte_n, const void *trns,
			     size_t trns_n)
{
	struct bytes b = {0};
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	put(&b, sig, 8);
	uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
			    (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
			    (uint8_t)depth, (uint8_t)color, 0, 0, 0};
	put_chunk(&b, "IHDR", ihdr, 13);
	if (plte)
		put_chunk(&b, "PLTE", plte, plte_n);
	if (trns)
		put_chunk(&b, "tRNS", trns, trns_n);
	size_t raw_n = (row_bytes + 1) * h;
	uint8_t *raw = calloc(raw_n ? raw_n : 1, 1);
	for (uint32_t y = 0; rows && y < h; y++)
		memcpy(raw + y * (row_bytes + 1) + 1, rows + y * row_bytes, row_bytes);
	uLongf zn = compressBound(raw_n);
	uint8_t *z = malloc(zn);
	compress(z, &zn, raw, raw_n);
	put_chunk(&b, "IDAT", z, zn);
	put_chunk(&b, "IEND", NULL, 0);
	free(raw);
	free(z);
	return b;
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (n)
		fwrite(data, 1, n, f);
	fclose(f);
}

static uint8_t *read_whole(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *p = malloc(*n ? *n : 1);
	*n = fread(p, 1, *n, f);
	fclose(f);
	return p;
}

static void data_path(char *buf, size_t n, const char *file)
{
	snprintf(buf, n, "%s/images/%s", data_dir, file);
}

static void tmp_file(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmp_dir, name);
}

/* }===== */

/* {===== PIL's goldens */

/* Channels and NEAREST flag rf_image_load gives for a PIL mode. */
static bool mode_layout(const char *mode, int *channels, bool *nearest)
{
	static const struct { const char *mode; int channels; bool nearest; } modes[] = {
		{"L", 1, false}, {"LA", 2, false}, {"RGB", 3, false}, {"RGBA", 4, false},
		{"P", 3, true}, {"1", 1, true}, {"I", 1, false}, {"CMYK", 3, false},
	};
	for (size_t i = 0; i < RF_ARRAY_LEN(modes); i++) {
		if (!strcmp(mode, modes[i].mode)) {
			*channels = modes[i].channels;
			*nearest = modes[i].nearest;
			return true;
		}
	}
	return false;
}

/* Values of `img` that differ from an RGB golden [h, w, 3] (gray replicated, alpha
** dropped), or SIZE_MAX if the shapes differ. */
static size_t rgb_diffs(const struct rf_image *img, const struct rf_st_entry *want)
{
	if (!img->pixels || !want || want->shape.ndim != 3 || want->shape.dim[0] != img->height ||
	    want->shape.dim[1] != img->width || want->shape.dim[2] != 3)
		return SIZE_MAX;
	const uint8_t *w = want->data;
	size_t n = (size_t)img->width * (size_t)img->height, ch = (size_t)img->channels, bad = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < 3; c++)
			bad += img->pixels[i * ch + (ch >= 3 ? c : 0)] != w[3 * i + c];
	return bad;
}

struct golden_case {
	const char *name, *file, *mode;
	const rf_safetensors *st;
	int size;
};

/* One file: decode (from the path and from memory), stored and RGB values, preprocessing. */
static bool check_golden(const struct golden_case *g)
{
	char path[1200], key[160];
	data_path(path, sizeof path, g->file);
	int channels;
	bool nearest, ok = true;
	if (!mode_layout(g->mode, &channels, &nearest)) {
		fprintf(stderr, "%s: unknown PIL mode %s in the goldens\n", g->file, g->mode);
		return false;
	}
	struct rf_image img, mem;
	enum rf_status s = rf_image_load(path, &img);
	if (s != RF_OK) {
		fprintf(stderr, "%s: %s\n", g->file, rf_error_message());
		return false;
	}
	size_t n;
	uint8_t *bytes = read_whole(path, &n);
	CHECK_OK(rf_image_decode(bytes, n, g->file, &mem));
	size_t npx = (size_t)img.width * (size_t)img.height * (size_t)img.channels;
	ok &= mem.pixels && mem.width == img.width && mem.height == img.height &&
	      mem.channels == img.channels && !memcmp(mem.pixels, img.pixels, npx);
	free(bytes);
	rf_image_fini(&mem);

	ok &= img.channels == channels && img.nearest == nearest && !img.cmyk;
	snprintf(key, sizeof key, "rgb.%s", g->name);
	size_t rgb_bad = rgb_diffs(&img, rf_safetensors_find(g->st, key));
	ok &= rgb_bad == 0;
	snprintf(key, sizeof key, "stored.%s", g->name);
	const struct rf_st_entry *stored = rf_safetensors_find(g->st, key);
	if (stored)
		ok &= stored->nbytes == npx && !memcmp(stored->data, img.pixels, npx);

	snprintf(key, sizeof key, "pixels.%s", g->name);
	const struct rf_st_entry *px = rf_safetensors_find(g->st, key);
	size_t px_bad = 0, nf = 3 * (size_t)g->size * (size_t)g->size;
	if (px) {
		struct rf_preprocess p = rf_preprocess_openai(g->size);
		float *out = malloc(nf * sizeof *out);
		CHECK_OK(rf_image_load_preprocessed(path, &p, out));
		ok &= px->nbytes == nf * sizeof *out;
		for (size_t i = 0; px->nbytes == nf * sizeof *out && i < nf; i++)
			px_bad += memcmp(out + i, (const float *)px->data + i, sizeof *out) != 0;
		free(out);
		ok &= px_bad == 0;
	}
	printf("%-26s %-4s %5d x %-5d c%d%s: %s RGB values differ%s", g->file, g->mode, img.width,
	       img.height, img.channels, img.nearest ? " nearest" : "",
	       rgb_bad == SIZE_MAX ? "shape: all" : rgb_bad ? "SOME" : "0", stored ? ", stored same" : "");
	if (px)
		printf(", pixels %zu/%zu differ", px_bad, nf);
	printf("%s\n", ok ? "" : "  <-- FAIL");
	rf_image_fini(&img);
	return ok;
}

static void test_goldens(void)
{
	char path[1200];
	data_path(path, sizeof path, "goldens.safetensors");
	rf_safetensors *st;
	CHECK_OK(rf_safetensors_open(path, &st));
	if (!st)
		return;
	const char *size = rf_safetensors_metadata(st, "size");
	int files = 0, bad = 0;
	for (uint32_t i = 0;; i++) {
		const char *k = rf_safetensors_metadata_key(st, i);
		if (!k)
			break;
		if (strncmp(k, "file.", 5))
			continue;
		char mode_key[160];
		snprintf(mode_key, sizeof mode_key, "mode.%s", k + 5);
		struct golden_case g = {k + 5, rf_safetensors_metadata(st, k),
					rf_safetensors_metadata(st, mode_key), st, size ? atoi(size) : 0};
		files++;
		bad += !g.mode || g.size < 1 || !check_golden(&g);
	}
	printf("images decoded as Pillow %s decodes them: %d/%d\n",
	       rf_safetensors_metadata(st, "pillow") ? rf_safetensors_metadata(st, "pillow") : "?",
	       files - bad, files);
	CHECK(files >= 40 && bad == 0);
	rf_safetensors_close(st);
}

/* }===== */

/* {===== PNG modes on files written here */

static struct rf_image decode_png(struct bytes png, const char *label)
{
	struct rf_image img = {0};
	enum rf_status s = rf_image_decode(png.v, png.n, label, &img);
	if (s != RF_OK) {
		fprintf(stderr, "%s: %s\n", label, rf_error_message());
		rf_test_failures++;
	}
	free(png.v);
	return img;
}

/* The modes PIL distinguishes, and what each must decode to. */
static void test_png_modes(void)
{
	uint8_t la[4 * 3 * 2];
	for (int i = 0; i < 12; i++) {
		la[2 * i] = (uint8_t)(i * 20);
		la[2 * i + 1] = (uint8_t)(i * 23);
	}
	struct rf_image img = decode_png(make_png(4, 3, 8, 4, la, 8, NULL, 0, NULL, 0), "LA");
	CHECK(img.channels == 2 && !img.nearest && img.pixels && !memcmp(img.pixels, la, 24));
	/* LA is resized like RGBA with R = G = B = L (both premultiplied the same way). */
	uint8_t rgba[12 * 4];
	for (int i = 0; i < 12; i++) {
		rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = la[2 * i];
		rgba[4 * i + 3] = la[2 * i + 1];
	}
	struct rf_image im4 = {.width = 4, .height = 3, .channels = 4, .pixels = rgba}, r2, r4;
	CHECK_OK(rf_image_resize(&img, 7, 2, &r2));
	CHECK_OK(rf_image_resize(&im4, 7, 2, &r4));
	for (int i = 0; r2.pixels && r4.pixels && i < 14; i++)
		CHECK(r2.pixels[2 * i] == r4.pixels[4 * i] && r2.pixels[2 * i + 1] == r4.pixels[4 * i + 3]);
	rf_image_fini(&r2);
	rf_image_fini(&r4);
	rf_image_fini(&img);

	/* Palette (with transparency, ignored): RGB of the palette, resized with NEAREST. */
	static const uint8_t plte[9] = {255, 0, 0, 0, 255, 0, 0, 0, 255}, trns[3] = {0, 128, 255};
	uint8_t idx[6] = {0, 1, 2, 2, 1, 0};
	img = decode_png(make_png(3, 2, 8, 3, idx, 3, plte, 9, trns, 3), "palette");
	CHECK(img.channels == 3 && img.nearest);
	for (int i = 0; img.pixels && i < 6; i++)
		CHECK(!memcmp(img.pixels + 3 * i, plte + 3 * idx[i], 3));
	struct rf_image r;
	CHECK_OK(rf_image_resize(&img, 6, 4, &r));
	for (int y = 0; r.pixels && y < 4; y++)
		for (int x = 0; x < 6; x++)
			CHECK(!memcmp(r.pixels + 3 * (y * 6 + x), plte + 3 * idx[(y / 2) * 3 + x / 2], 3));
	rf_image_fini(&r);
	rf_image_fini(&img);

	/* 1-bit gray (PIL mode 1): 0/255, NEAREST; 4-bit gray: L, values x 17. */
	uint8_t bits[2] = {0xa0, 0x50};
	img = decode_png(make_png(4, 2, 1, 0, bits, 1, NULL, 0, NULL, 0), "1-bit");
	CHECK(img.channels == 1 && img.nearest && img.pixels && img.pixels[0] == 255 &&
	      img.pixels[1] == 0 && img.pixels[5] == 255);
	rf_image_fini(&img);
	uint8_t nib[2] = {0x1f, 0x80};
	img = decode_png(make_png(4, 1, 4, 0, nib, 2, NULL, 0, NULL, 0), "4-bit");
	CHECK(img.channels == 1 && !img.nearest && img.pixels && img.pixels[0] == 17 &&
	      img.pixels[1] == 255 && img.pixels[2] == 136 && img.pixels[3] == 0);
	rf_image_fini(&img);

	/* Gray and RGB with a transparency colour stay 1 and 3 channels, values untouched. */
	uint8_t gray[4] = {0, 50, 100, 150}, key[2] = {0, 50};
	img = decode_png(make_png(4, 1, 8, 0, gray, 4, NULL, 0, key, 2), "gray+tRNS");
	CHECK(img.channels == 1 && img.pixels && !memcmp(img.pixels, gray, 4));
	rf_image_fini(&img);
	uint8_t rgb[6] = {1, 2, 3, 4, 5, 6}, rkey[6] = {0, 1, 0, 2, 0, 3};
	img = decode_png(make_png(2, 1, 8, 2, rgb, 6, NULL, 0, rkey, 6), "RGB+tRNS");
	CHECK(img.channels == 3 && img.pixels && !memcmp(img.pixels, rgb, 6));
	rf_image_fini(&img);

	/* 16-bit gray is PIL's mode I, clipped at 255 when converted: 0x0100 -> 255, 0x00ff -> 255,
	** 0x0080 -> 128; 16-bit RGB keeps the high bytes. */
	uint8_t g16[6] = {0x01, 0x00, 0x00, 0xff, 0x00, 0x80};
	img = decode_png(make_png(3, 1, 16, 0, g16, 6, NULL, 0, NULL, 0), "gray16");
	CHECK(img.channels == 1 && img.pixels && img.pixels[0] == 255 && img.pixels[1] == 255 &&
	      img.pixels[2] == 128);
	rf_image_fini(&img);
	uint8_t rgb16[6] = {0x12, 0x34, 0xff, 0x80, 0x00, 0xff};
	img = decode_png(make_png(1, 1, 16, 2, rgb16, 6, NULL, 0, NULL, 0), "rgb16");
	CHECK(img.channels == 3 && img.pixels && img.pixels[0] == 0x12 && img.pixels[1] == 0xff &&
	      img.pixels[2] == 0);
	rf_image_fini(&img);
}

/* }===== */

/* {===== the pixel limit */

static void test_pixel_limit(void)
{
	uint64_t limit;
	CHECK_OK(rf_image_max_pixels(&limit));
	CHECK(limit == RF_IMAGE_MAX_PIXELS_DEFAULT && limit == 89478485);
	struct bytes a = make_png(11, 10, 8, 0, NULL, 11, NULL, 0, NULL, 0);
	struct bytes b = make_png(10, 10, 8, 0, NULL, 10, NULL, 0, NULL, 0);
	struct rf_image img;
	rf_image_set_max_pixels(100);
	CHECK_FAILS(rf_image_decode(a.v, a.n, "a.png", &img), RF_ERR_UNSUPPORTED,
		    "a.png: PNG of 11 x 10 pixels is over the limit of 100 pixels");
	CHECK(img.pixels == NULL);
	CHECK_OK(rf_image_decode(b.v, b.n, "b.png", &img));
	rf_image_fini(&img);

	rf_image_set_max_pixels(0);
	setenv("REFRACT_MAX_IMAGE_PIXELS", "99", 1);
	CHECK_FAILS(rf_image_decode(b.v, b.n, "b.png", &img), RF_ERR_UNSUPPORTED, "limit of 99 pixels");
	rf_image_set_max_pixels(1000);   /* the setter wins over the environment */
	CHECK_OK(rf_image_decode(b.v, b.n, "b.png", &img));
	rf_image_fini(&img);
	rf_image_set_max_pixels(0);
	setenv("REFRACT_MAX_IMAGE_PIXELS", "lots", 1);
	CHECK_FAILS(rf_image_decode(b.v, b.n, "b.png", &img), RF_ERR_INVALID,
		    "b.png: REFRACT_MAX_IMAGE_PIXELS=\"lots\" is not a positive integer");
	setenv("REFRACT_MAX_IMAGE_PIXELS", "-5", 1);
	CHECK_FAILS(rf_image_decode(b.v, b.n, "b.png", &img), RF_ERR_INVALID, "positive integer");
	unsetenv("REFRACT_MAX_IMAGE_PIXELS");
	CHECK_OK(rf_image_decode(b.v, b.n, "b.png", &img));
	rf_image_fini(&img);
	free(a.v);
	free(b.v);
}

/* }===== */

/* {===== bad files */

/* Loads `path` expecting `want` with a message naming the file and containing `needle`. */
static void expect_bad(const char *path, enum rf_status want, const char *needle)
{
	struct rf_image img;
	enum rf_status got = rf_image_load(path, &img);
	CHECK_FAILS(got, want, needle);
	if (!strstr(rf_error_message(), path)) {
		fprintf(stderr, "message \"%s\" does not name %s\n", rf_error_message(), path);
		rf_test_failures++;
	}
	CHECK(img.pixels == NULL);
	printf("  %s\n", rf_error_message());
}

/* Writes `data` to a temporary file named `name` and expects the load to fail so. */
static void expect_bad_bytes(const char *name, const void *data, size_t n, enum rf_status want,
			     const char *needle)
{
	char p[256];
	tmp_file(p, sizeof p, name);
	write_file(p, data, n);
	expect_bad(p, want, needle);
	unlink(p);
}

static void put_be32_at(uint8_t *p, uint32_t x)
{
	p[0] = (uint8_t)(x >> 24);
	p[1] = (uint8_t)(x >> 16);
	p[2] = (uint8_t)(x >> 8);
	p[3] = (uint8_t)x;
}

/* Fixes the CRC of the chunk at `off` after its data was changed. */
static void fix_crc(struct bytes *b, size_t off)
{
	uint32_t len = (uint32_t)b->v[off] << 24 | (uint32_t)b->v[off + 1] << 16 |
		       (uint32_t)b->v[off + 2] << 8 | b->v[off + 3];
	put_be32_at(b->v + off + 8 + len, (uint32_t)crc32(0, b->v + off + 4, len + 4));
}

static void test_not_regular(void)
{
	char p[256];
	tmp_file(p, sizeof p, "missing.png");
	expect_bad(p, RF_ERR_IO, "cannot open");
	expect_bad(tmp_dir, RF_ERR_IO, "not a regular file (a directory)");
	/* A FIFO with no writer: opening it for reading would block for ever. */
	tmp_file(p, sizeof p, "fifo.png");
	CHECK(mkfifo(p, 0600) == 0);
	expect_bad(p, RF_ERR_IO, "not a regular file (a FIFO)");
	unlink(p);
	struct rf_image img;
	CHECK_FAILS(rf_image_load("/dev/zero", &img), RF_ERR_IO, "/dev/zero: not a regular file (a device)");
	/* A symbolic link to an image is a path to a regular file. */
	char target[1200];
	data_path(target, sizeof target, "png_gray8.png");
	tmp_file(p, sizeof p, "link.png");
	CHECK(symlink(target, p) == 0);
	CHECK_OK(rf_image_load(p, &img));
	rf_image_fini(&img);
	unlink(p);
}

static void test_bad_png(void)
{
	char src[1200];
	size_t n;
	expect_bad_bytes("empty.png", "", 0, RF_ERR_FORMAT, "empty file");
	data_path(src, sizeof src, "png_rgb8.png");
	uint8_t *png = read_whole(src, &n);
	expect_bad_bytes("truncated.png", png, n / 2, RF_ERR_FORMAT, "truncated PNG");
	expect_bad_bytes("headeronly.png", png, 33, RF_ERR_FORMAT, "truncated PNG");
	expect_bad_bytes("signature.png", png, 8, RF_ERR_FORMAT, "truncated PNG");
	/* A flipped bit in the image data, and one in a CRC itself. */
	png[60] ^= 0x10;
	expect_bad_bytes("baddata.png", png, n, RF_ERR_FORMAT, "bad CRC in chunk 'IDAT'");
	png[60] ^= 0x10;
	png[29] ^= 0x01;   /* IHDR's CRC */
	expect_bad_bytes("badcrc.png", png, n, RF_ERR_FORMAT, "bad CRC in chunk 'IHDR' at byte 8");
	free(png);

	/* Corrupt compressed data under a valid CRC: only the decoder can tell. */
	struct bytes b = make_png(4, 4, 8, 0, NULL, 4, NULL, 0, NULL, 0);
	size_t idat = 33;
	uint32_t len = (uint32_t)b.v[idat + 2] << 8 | b.v[idat + 3];
	memset(b.v + idat + 8, 0xff, len);
	fix_crc(&b, idat);
	expect_bad_bytes("badzlib.png", b.v, b.n, RF_ERR_FORMAT, "corrupt PNG: IDAT");
	free(b.v);

	/* Palette indices past a 2-colour palette: PIL would show gray levels, libpng's check
	** only runs at the end; refused, naming the index. */
	static const uint8_t plte[6] = {10, 20, 30, 40, 50, 60};
	uint8_t idx[4] = {0, 1, 1, 5};
	b = make_png(2, 2, 8, 3, idx, 2, plte, 6, NULL, 0);
	expect_bad_bytes("badindex.png", b.v, b.n, RF_ERR_FORMAT,
			 "palette index 5 in row 2 is beyond the palette's 2 colours");
	free(b.v);
	uint8_t idx4[2] = {0x1f, 0x00};   /* 4-bit indices 1 and 15 */
	b = make_png(2, 2, 4, 3, idx4, 1, plte, 6, NULL, 0);
	expect_bad_bytes("badindex4.png", b.v, b.n, RF_ERR_FORMAT, "palette index 15 in row 1");
	free(b.v);
	b = make_png(2, 2, 8, 3, idx, 2, NULL, 0, NULL, 0);
	expect_bad_bytes("noplte.png", b.v, b.n, RF_ERR_FORMAT, "corrupt PNG");
	free(b.v);

	b = make_png(0, 7, 8, 0, NULL, 0, NULL, 0, NULL, 0);
	expect_bad_bytes("zerowidth.png", b.v, b.n, RF_ERR_FORMAT, "0 x 7 pixels (a side is zero)");
	free(b.v);
	b = make_png(2, 2, 3, 0, NULL, 1, NULL, 0, NULL, 0);
	expect_bad_bytes("depth3.png", b.v, b.n, RF_ERR_FORMAT, "corrupt PNG");
	free(b.v);

	/* Headers claiming too many pixels: refused before anything is allocated (the data
	** is a few zero rows). Exactly at the limit passes the check and fails as truncated. */
	b = make_png(100000, 100000, 8, 2, NULL, 0, NULL, 0, NULL, 0);
	expect_bad_bytes("huge.png", b.v, b.n, RF_ERR_UNSUPPORTED, "PNG of 100000 x 100000 pixels is "
			 "over the limit of 89478485 pixels");
	free(b.v);
	b = make_png(2, 44739243, 8, 0, NULL, 0, NULL, 0, NULL, 0);
	expect_bad_bytes("overlimit.png", b.v, b.n, RF_ERR_UNSUPPORTED, "2 x 44739243");
	free(b.v);
	b = make_png(5, 17895697, 8, 0, NULL, 0, NULL, 0, NULL, 0);
	expect_bad_bytes("edge.png", b.v, b.n, RF_ERR_FORMAT, "PNG: ");
	CHECK(!strstr(rf_error_message(), "over the limit"));
	free(b.v);
}

/* A preprocessing failure after a good decode names the file too. */
static void test_preprocess_error(void)
{
	char p[256];
	struct bytes b = make_png(1, 70000, 8, 0, NULL, 1, NULL, 0, NULL, 0);
	tmp_file(p, sizeof p, "thin.png");
	write_file(p, b.v, b.n);
	free(b.v);
	struct rf_preprocess pre = rf_preprocess_openai(32768);
	float dummy[3];   /* never written: the size is refused first */
	CHECK_FAILS(rf_image_load_preprocessed(p, &pre, dummy), RF_ERR_UNSUPPORTED,
		    "thin.png: image preprocess: a 1 x 70000 image resized to 32768 on its shorter side "
		    "would be over 2^31 pixels long");
	pre = rf_preprocess_openai(224);
	float *out = malloc(3 * 224 * 224 * sizeof *out);
	CHECK_OK(rf_image_load_preprocessed(p, &pre, out));
	free(out);
	unlink(p);
}

static void test_bad_jpeg(void)
{
	char src[1200];
	size_t n;
	data_path(src, sizeof src, "jpeg_420.jpg");
	uint8_t *jpg = read_whole(src, &n);
	expect_bad_bytes("truncated.jpg", jpg, n * 6 / 10, RF_ERR_FORMAT, "truncated JPEG");
	expect_bad_bytes("header.jpg", jpg, 100, RF_ERR_FORMAT, "truncated JPEG");
	expect_bad_bytes("soi.jpg", jpg, 3, RF_ERR_FORMAT, "truncated JPEG");
	/* No end-of-image marker: libjpeg reads ahead for it, and PIL calls that truncated. */
	expect_bad_bytes("noeoi.jpg", jpg, n - 2, RF_ERR_FORMAT, "truncated JPEG");

	size_t sof = 2;
	while (sof + 1 < n && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0))
		sof++;
	CHECK(sof + 9 < n);
	uint8_t *bad = malloc(n);
	memcpy(bad, jpg, n);
	bad[sof + 4] = 12;   /* precision */
	expect_bad_bytes("12bit.jpg", bad, n, RF_ERR_FORMAT, "precision 12");
	memcpy(bad, jpg, n);
	bad[sof + 5] = bad[sof + 6] = 0;   /* height 0 */
	expect_bad_bytes("height0.jpg", bad, n, RF_ERR_FORMAT, "corrupt or unsupported JPEG");
	memcpy(bad, jpg, n);
	bad[sof + 5] = bad[sof + 7] = 0xfd;   /* 64800 x 64800 */
	bad[sof + 6] = bad[sof + 8] = 0x20;
	expect_bad_bytes("huge.jpg", bad, n, RF_ERR_UNSUPPORTED, "JPEG of 64800 x 64800 pixels is over "
			 "the limit");
	memcpy(bad, jpg, n);
	bad[sof + 9] = 2;   /* two components */
	expect_bad_bytes("twocomp.jpg", bad, n, RF_ERR_FORMAT, "JPEG");

	/* Damaged scan data decodes (libjpeg warns, PIL ignores the warnings): twice alike. */
	memcpy(bad, jpg, n);
	size_t sos = sof;
	while (sos + 1 < n && !(jpg[sos] == 0xff && jpg[sos + 1] == 0xda))
		sos++;
	for (size_t i = (sos + n) / 2; i < (sos + n) / 2 + 40 && i + 2 < n; i++)
		bad[i] = (uint8_t)(i * 37 % 255);
	struct rf_image a, b;
	CHECK_OK(rf_image_decode(bad, n, "damaged.jpg", &a));
	CHECK_OK(rf_image_decode(bad, n, "damaged.jpg", &b));
	CHECK(a.pixels && b.pixels && !memcmp(a.pixels, b.pixels, (size_t)a.width * (size_t)a.height * 3));
	rf_image_fini(&a);
	rf_image_fini(&b);
	free(bad);
	free(jpg);
}

/* A progressive JPEG whose last scan is repeated: libjpeg warns and decodes each again
** (PIL too), a pass over the whole image each time, so their number is capped. */
static void test_many_scans(void)
{
	char src[1200];
	size_t n;
	data_path(src, sizeof src, "jpeg_progressive.jpg");
	uint8_t *jpg = read_whole(src, &n);
	size_t last = 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (jpg[i] == 0xff && jpg[i + 1] == 0xda)
			last = i;
	CHECK(last > 0 && jpg[n - 2] == 0xff && jpg[n - 1] == 0xd9);
	size_t scan = n - 2 - last;
	struct bytes b = {0};
	put(&b, jpg, n - 2);
	for (int i = 0; i < 20; i++)
		put(&b, jpg + last, scan);
	put(&b, jpg + n - 2, 2);
	struct rf_image img;
	CHECK_OK(rf_image_decode(b.v, b.n, "scans30.jpg", &img));
	rf_image_fini(&img);
	b.n -= 2;
	for (int i = 0; i < 1000; i++)
		put(&b, jpg + last, scan);
	put(&b, jpg + n - 2, 2);
	expect_bad_bytes("scans1010.jpg", b.v, b.n, RF_ERR_UNSUPPORTED, "with more than 1000 scans");
	free(b.v);
	free(jpg);
}

static void test_bad_other(void)
{
	uint8_t noise[4096];
	rf_rand_seed(42);
	for (size_t i = 0; i < sizeof noise; i++)
		noise[i] = (uint8_t)rf_rand_u64();
	expect_bad_bytes("random.jpg", noise, sizeof noise, RF_ERR_FORMAT, "not an image file");
	expect_bad_bytes("text.png", "this is not an image\n", 21, RF_ERR_FORMAT, "not an image file");
	expect_bad_bytes("header.gif", "GIF89a\x01\x00\x01\x00\x00\x00\x00", 13, RF_ERR_FORMAT,
			 "corrupt GIF");
	expect_bad_bytes("image.webp", "RIFF\x10\0\0\0WEBPVP8 ", 16, RF_ERR_UNSUPPORTED, "WebP");
	expect_bad_bytes("image.tif", "II*\0\x08\0\0\0", 8, RF_ERR_UNSUPPORTED, "TIFF");
	expect_bad_bytes("ascii.pgm", "P2\n2 2\n255\n0 1 2 3\n", 19, RF_ERR_UNSUPPORTED, "PNM");
	/* A BMP header claiming 100000 x 100000 pixels: refused from stb's header read. */
	uint8_t bmp[54] = {'B', 'M', 54, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0,
			   0xa0, 0x86, 0x01, 0, 0xa0, 0x86, 0x01, 0, 1, 0, 24, 0};
	expect_bad_bytes("huge.bmp", bmp, sizeof bmp, RF_ERR_UNSUPPORTED, "BMP of 100000 x 100000");
	/* A negative height is a top-down BMP, which PIL reads: it was refused as "2 x 0". The
	** same 2 x 2 picture stored bottom-up and top-down decodes to the same pixels. */
	uint8_t up[70] = {'B', 'M', 70, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0,
			  2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 24, 0, [34] = 16};
	uint8_t down[70];
	const uint8_t top[8] = { 1, 2, 3, 4, 5, 6 }, bottom[8] = { 7, 8, 9, 10, 11, 12 };   /* BGR */
	memcpy(up + 54, bottom, 8);
	memcpy(up + 62, top, 8);
	memcpy(down, up, 54);
	memcpy(down + 22, (const uint8_t[4]){ 0xfe, 0xff, 0xff, 0xff }, 4);   /* height -2 */
	memcpy(down + 54, top, 8);
	memcpy(down + 62, bottom, 8);
	struct rf_image a, b;
	CHECK_OK(rf_image_decode(up, sizeof up, "up.bmp", &a));
	CHECK_OK(rf_image_decode(down, sizeof down, "down.bmp", &b));
	CHECK(a.width == 2 && a.height == 2 && b.width == 2 && b.height == 2 && a.channels == b.channels);
	CHECK(a.pixels && b.pixels && !memcmp(a.pixels, b.pixels, 12) && a.pixels[0] == 3 && a.pixels[9] == 12);
	rf_image_fini(&a);
	rf_image_fini(&b);
	char ppm[64];
	int len = snprintf(ppm, sizeof ppm, "P6\n20000 20000\n255\n");
	expect_bad_bytes("huge.ppm", ppm, (size_t)len, RF_ERR_UNSUPPORTED, "PNM of 20000 x 20000");
	/* stb_image 2.27 overflows an int on a ten-digit header number (found by fuzz_image). */
	len = snprintf(ppm, sizeof ppm, "P688888888888888888888P");
	expect_bad_bytes("overflow.ppm", ppm, (size_t)len, RF_ERR_FORMAT, "over 2^31");
	len = snprintf(ppm, sizeof ppm, "P6\n4 4\n255\nabc");
	expect_bad_bytes("short.ppm", ppm, (size_t)len, RF_ERR_FORMAT, "truncated PNM");
	len = snprintf(ppm, sizeof ppm, "P5 # comment\n2 1 65535\nabcd");
	expect_bad_bytes("deep.pgm", ppm, (size_t)len, RF_ERR_UNSUPPORTED, "maximum value 65535");
	len = snprintf(ppm, sizeof ppm, "P5 # comment\n2 1 # c2\n255\nab");
	struct rf_image img;
	CHECK_OK(rf_image_decode(ppm, (size_t)len, "comments.pgm", &img));
	CHECK(img.pixels && img.channels == 1 && img.pixels[0] == 'a' && img.pixels[1] == 'b');
	rf_image_fini(&img);
}

/* }===== */

int main(void)
{
	const char *data = getenv("RF_TEST_DATA");
	if (!data) {
		fprintf(stderr, "SKIP: RF_TEST_DATA must be set (ctest sets it)\n");
		return 77;
	}
	snprintf(data_dir, sizeof data_dir, "%s", data);
	snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rf_image_decode_XXXXXX");
	unsetenv("REFRACT_MAX_IMAGE_PIXELS");
	CHECK(mkdtemp(tmp_dir) != NULL);
	test_goldens();
	test_png_modes();
	test_pixel_limit();
	printf("bad files:\n");
	test_not_regular();
	test_bad_png();
	test_preprocess_error();
	test_bad_jpeg();
	test_many_scans();
	test_bad_other();
	CHECK(rmdir(tmp_dir) == 0 || errno == ENOENT);
	if (rf_test_failures)
		fprintf(stderr, "%d check(s) failed\n", rf_test_failures);
	return rf_test_failures ? 1 : 0;
}
