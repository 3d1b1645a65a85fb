/*
** test_image.c: image decoding and CLIP preprocessing against the tiny-gelu goldens
** (decoded arrays, `pixels` bit for bit, `gt_labels` through the NEAREST resize), the
** decoding paths PIL distinguishes (gray+alpha, palette, 1/4-bit gray, transparency
** chunks) on PNGs written here, bad files (each a clear error naming the file), argument
** errors, and preprocessing from several threads at once.
*/
#include "harness.h"
#include "image.h"
#include "safetensors.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define S 32
#define NIMG 8
#define PIX (3 * S * S)

static char data_dir[1024], tmp_dir[64];
static rf_safetensors *ref;

struct case_info {
	char file[64], stem[64], mask[96], mode[8];
	int width, height;
};
static struct case_info cases[NIMG];

/* {===== fixtures */

static bool load_index(void)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/tiny-gelu/images/index.json", data_dir);
	json_error_t err;
	json_t *arr = json_load_file(path, 0, &err);
	bool ok = json_is_array(arr) && json_array_size(arr) == NIMG;
	for (size_t i = 0; ok && i < NIMG; i++) {
		json_t *o = json_array_get(arr, i);
		struct case_info *c = &cases[i];
		snprintf(c->file, sizeof c->file, "%s", json_string_value(json_object_get(o, "file")));
		snprintf(c->mask, sizeof c->mask, "%s", json_string_value(json_object_get(o, "mask")));
		snprintf(c->mode, sizeof c->mode, "%s", json_string_value(json_object_get(o, "mode")));
		c->width = (int)json_integer_value(json_object_get(o, "width"));
		c->height = (int)json_integer_value(json_object_get(o, "height"));
		const char *dot = strrchr(c->file, '.');
		size_t stem = dot ? (size_t)(dot - c->file) : strlen(c->file);
		memcpy(c->stem, c->file, stem);
		c->stem[stem] = '\0';
	}
	json_decref(arr);
	return ok;
}

static const void *golden(const char *name, enum rf_dtype dt, size_t nbytes)
{
	const struct rf_st_entry *e = rf_safetensors_find(ref, name);
	if (!e || e->dtype != dt || e->nbytes != nbytes) {
		fprintf(stderr, "reference.safetensors: no %s tensor %s of %zu bytes\n", rf_dtype_name(dt),
			name, nbytes);
		rf_test_failures++;
		return NULL;
	}
	return e->data;
}

static void image_path(char *buf, size_t n, const char *file)
{
	snprintf(buf, n, "%s/tiny-gelu/images/%s", data_dir, file);
}

static int mode_channels(const char *mode)
{
	return !strcmp(mode, "L") ? 1 : !strcmp(mode, "LA") ? 2 : !strcmp(mode, "RGB") ? 3 : 4;
}

/* Counts floats that differ bit for bit. */
static size_t float_diffs(const float *a, const float *b, size_t n, double *max_abs)
{
	size_t bad = 0;
	*max_abs = 0;
	for (size_t i = 0; i < n; i++) {
		if (memcmp(&a[i], &b[i], sizeof *a)) {
			bad++;
			*max_abs = fmax(*max_abs, fabs((double)a[i] - b[i]));
		}
	}
	return bad;
}

/* }===== */

/* {===== goldens */

/* Decodes each image and compares with decoded.<stem>: exact for PNG; for the JPEG the
** differences between stb_image and libjpeg are measured and reported. */
static void test_decoded(void)
{
	for (int b = 0; b < NIMG; b++) {
		const struct case_info *c = &cases[b];
		char path[1200], name[96];
		image_path(path, sizeof path, c->file);
		struct rf_image img;
		CHECK_OK(rf_image_load(path, &img));
		int ch = mode_channels(c->mode);
		CHECK(img.width == c->width && img.height == c->height && img.channels == ch);
		size_t n = (size_t)c->width * (size_t)c->height * (size_t)ch;
		snprintf(name, sizeof name, "decoded.%s", c->stem);
		const uint8_t *want = golden(name, RF_U8, n);
		if (img.pixels && want && img.channels == ch) {
			size_t differ = 0, by[4] = {0};
			int max_diff = 0;
			for (size_t i = 0; i < n; i++) {
				int d = abs((int)img.pixels[i] - want[i]);
				differ += d != 0;
				by[d < 3 ? d : 3]++;
				max_diff = d > max_diff ? d : max_diff;
			}
			bool jpeg = strstr(c->file, ".jpg") != NULL;
			printf("decoded %-24s %zu/%zu values differ from PIL, max %d levels", c->file, differ, n,
			       max_diff);
			if (jpeg)
				printf(" (stb_image vs libjpeg: %zu by 1, %zu by 2, %zu by more)", by[1], by[2], by[3]);
			printf("\n");
			if (jpeg)
				CHECK(max_diff <= 8);
			else
				CHECK(differ == 0);
		}
		rf_image_fini(&img);
	}
}

/* `pixels` from the files and from the golden decoded arrays; the JPEG from its file is
** reported (decoder differences), everything else must be bit-exact. */
static void test_pixels(void)
{
	const float *pixels = golden("pixels", RF_F32, (size_t)NIMG * PIX * sizeof(float));
	const float *rgb_first = golden("pixels_convert_rgb_first", RF_F32, (size_t)NIMG * PIX * sizeof(float));
	struct rf_preprocess p = rf_preprocess_openai(S);
	static float out[PIX];
	for (int b = 0; pixels && rgb_first && b < NIMG; b++) {
		const struct case_info *c = &cases[b];
		char path[1200], name[96];
		double max_abs;
		bool jpeg = strstr(c->file, ".jpg") != NULL;
		image_path(path, sizeof path, c->file);
		CHECK_OK(rf_image_load_preprocessed(path, &p, out));
		size_t bad = float_diffs(out, pixels + (size_t)b * PIX, PIX, &max_abs);
		printf("pixels  %-24s from the file:          %4zu/%d floats differ (max %.3g)\n", c->file,
		       bad, PIX, max_abs);
		if (!jpeg)
			CHECK(bad == 0);

		int ch = mode_channels(c->mode);
		snprintf(name, sizeof name, "decoded.%s", c->stem);
		const uint8_t *dec = golden(name, RF_U8, (size_t)c->width * (size_t)c->height * (size_t)ch);
		struct rf_image img = {c->width, c->height, ch, false, (uint8_t *)dec};
		CHECK_OK(rf_image_preprocess(&img, &p, out));
		bad = float_diffs(out, pixels + (size_t)b * PIX, PIX, &max_abs);
		printf("pixels  %-24s from the golden decode: %4zu/%d floats differ\n", c->file, bad, PIX);
		CHECK(bad == 0);

		/* Resizing before the RGB conversion is what makes RGBA depend on alpha: the
		** alternative order is reproduced by dropping alpha first, and differs. */
		if (ch == 4) {
			CHECK(float_diffs(out, rgb_first + (size_t)b * PIX, PIX, &max_abs) > 0);
			size_t npx = (size_t)c->width * (size_t)c->height;
			uint8_t *rgb = malloc(npx * 3);
			for (size_t i = 0; i < npx; i++)
				memcpy(rgb + 3 * i, dec + 4 * i, 3);
			struct rf_image im3 = {c->width, c->height, 3, false, rgb};
			CHECK_OK(rf_image_preprocess(&im3, &p, out));
			bad = float_diffs(out, rgb_first + (size_t)b * PIX, PIX, &max_abs);
			printf("pixels_convert_rgb_first %-7s alpha dropped first:  %4zu/%d floats differ\n",
			       c->stem, bad, PIX);
			CHECK(bad == 0);
			free(rgb);
		}
	}
}

/* gt_labels: the mask resized to S x S with PIL NEAREST (no crop), 1 where 255. */
static void test_nearest_masks(void)
{
	const uint8_t *gt = golden("gt_labels", RF_U8, (size_t)NIMG * S * S);
	size_t bad = 0;
	for (int b = 0; gt && b < NIMG; b++) {
		char path[1200];
		image_path(path, sizeof path, cases[b].mask);
		struct rf_image m = {0}, r = {0};
		CHECK_OK(rf_image_load(path, &m));
		CHECK(m.channels == 1);
		CHECK_OK(rf_image_resize_nearest(&m, S, S, &r));
		for (int i = 0; r.pixels && i < S * S; i++)
			bad += (r.pixels[i] == 255) != gt[b * S * S + i];
		rf_image_fini(&m);
		rf_image_fini(&r);
	}
	printf("gt_labels via NEAREST resize         %zu/%d labels differ\n", bad, NIMG * S * S);
	CHECK(bad == 0);
}

/* Squash resizes both sides to S without cropping; for square images it equals the default. */
static void test_squash(void)
{
	const float *pixels = golden("pixels", RF_F32, (size_t)NIMG * PIX * sizeof(float));
	struct rf_preprocess p = rf_preprocess_openai(S);
	p.mode = RF_RESIZE_SQUASH;
	static float out[PIX], want[PIX];
	for (int b = 0; pixels && b < NIMG; b++) {
		char path[1200];
		double max_abs;
		image_path(path, sizeof path, cases[b].file);
		CHECK_OK(rf_image_load_preprocessed(path, &p, out));
		if (cases[b].width == cases[b].height && !strstr(cases[b].file, ".jpg"))
			CHECK(float_diffs(out, pixels + (size_t)b * PIX, PIX, &max_abs) == 0);
		struct rf_image img, sq;
		CHECK_OK(rf_image_load(path, &img));
		CHECK_OK(rf_image_resize(&img, S, S, &sq));
		struct rf_preprocess q = rf_preprocess_openai(S);
		CHECK_OK(rf_image_preprocess(&sq, &q, want));
		CHECK(float_diffs(out, want, PIX, &max_abs) == 0);
		rf_image_fini(&img);
		rf_image_fini(&sq);
	}
}

/* PIL's own Image.resize on random images (tests/data/resize, scripts/dev/
** gen_resize_golden.py): every case bit for bit, through rf_image_resize (which picks
** NEAREST for palette and 1-bit images as PIL does) or rf_image_resize_nearest. */
static void test_resize_golden(void)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/resize/resize.safetensors", data_dir);
	rf_safetensors *st;
	CHECK_OK(rf_safetensors_open(path, &st));
	if (!st)
		return;
	int ncase = 0, bad_cases = 0;
	for (;; ncase++) {
		char key[32], mode[8], filter[16];
		snprintf(key, sizeof key, "case.%d", ncase);
		const char *desc = rf_safetensors_metadata(st, key);
		if (!desc || sscanf(desc, "%7s %15s", mode, filter) != 2)
			break;
		snprintf(key, sizeof key, "in.%d", ncase);
		const struct rf_st_entry *in = rf_safetensors_find(st, key);
		snprintf(key, sizeof key, "out.%d", ncase);
		const struct rf_st_entry *want = rf_safetensors_find(st, key);
		CHECK(in && want && in->shape.ndim == 3 && want->shape.ndim == 3);
		if (!in || !want)
			break;
		bool nearest_mode = !strcmp(mode, "P") || !strcmp(mode, "1");
		struct rf_image src = {(int)in->shape.dim[1], (int)in->shape.dim[0], (int)in->shape.dim[2],
				       nearest_mode, (uint8_t *)in->data}, out = {0};
		int w = (int)want->shape.dim[1], h = (int)want->shape.dim[0];
		if (!strcmp(filter, "nearest"))
			CHECK_OK(rf_image_resize_nearest(&src, w, h, &out));
		else
			CHECK_OK(rf_image_resize(&src, w, h, &out));
		size_t differ = 0;
		for (size_t i = 0; out.pixels && i < want->nbytes; i++)
			differ += out.pixels[i] != ((const uint8_t *)want->data)[i];
		if (!out.pixels || differ) {
			fprintf(stderr, "resize case %d (%s %s, %dx%d -> %dx%d): %zu of %llu values differ\n",
				ncase, mode, filter, src.width, src.height, w, h, differ,
				(unsigned long long)want->nbytes);
			bad_cases++;
		}
		rf_image_fini(&out);
	}
	printf("resize vs Pillow %s: %d/%d cases bit-exact\n",
	       rf_safetensors_metadata(st, "pillow") ? rf_safetensors_metadata(st, "pillow") : "?",
	       ncase - bad_cases, ncase);
	CHECK(ncase >= 17 && bad_cases == 0);
	rf_safetensors_close(st);
}

/* PNGs that PIL wrote, in every mode it reads back (tests/data/resize): decoded like PIL,
** with the NEAREST flag exactly for modes P and 1. */
static void test_decode_golden(void)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/resize/resize.safetensors", data_dir);
	rf_safetensors *st;
	CHECK_OK(rf_safetensors_open(path, &st));
	if (!st)
		return;
	int n = 0, bad = 0;
	for (;; n++) {
		char key[32], mode[8], label[32];
		snprintf(key, sizeof key, "decode.%d", n);
		const char *desc = rf_safetensors_metadata(st, key);
		if (!desc || sscanf(desc, "%7s %31s", mode, label) != 2)
			break;
		snprintf(key, sizeof key, "png.%d", n);
		const struct rf_st_entry *png = rf_safetensors_find(st, key);
		snprintf(key, sizeof key, "pixels.%d", n);
		const struct rf_st_entry *want = rf_safetensors_find(st, key);
		if (!png || !want)
			break;
		struct rf_image img;
		CHECK_OK(rf_image_decode(png->data, png->nbytes, label, &img));
		bool nearest = !strcmp(mode, "P") || !strcmp(mode, "1");
		bool same = img.pixels && img.width == want->shape.dim[1] && img.height == want->shape.dim[0] &&
			    img.channels == want->shape.dim[2] && img.nearest == nearest &&
			    !memcmp(img.pixels, want->data, want->nbytes);
		if (!same) {
			fprintf(stderr, "PIL-written PNG %s (opens as %s) decodes differently\n", label, mode);
			bad++;
		}
		rf_image_fini(&img);
	}
	printf("PNGs written by Pillow: %d/%d decoded as Pillow decodes them\n", n - bad, n);
	CHECK(n >= 11 && bad == 0);
	rf_safetensors_close(st);
}

/* }===== */

/* {===== PNGs written here */

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
** scanlines without filter bytes (filter 0 is added), `plte`/`trns` optional chunks. */
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
	struct rf_image im4 = {4, 3, 4, false, rgba}, r2, r4;
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
}

/* }===== */

/* {===== bad files */

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (n)
		fwrite(data, 1, n, f);
	fclose(f);
}

static void *read_whole(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	void *p = malloc(*n);
	*n = fread(p, 1, *n, f);
	fclose(f);
	return p;
}

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
	printf("  %-12s -> %s\n", strrchr(path, '/') + 1, rf_error_message());
}

static void tmp_file(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmp_dir, name);
}

static void test_bad_files(void)
{
	char p[256], src[1200];
	size_t n;
	printf("bad files:\n");
	tmp_file(p, sizeof p, "missing.png");
	expect_bad(p, RF_ERR_IO, "cannot open");
	expect_bad(tmp_dir, RF_ERR_IO, "not a regular file");

	tmp_file(p, sizeof p, "empty.png");
	write_file(p, "", 0);
	expect_bad(p, RF_ERR_FORMAT, "empty file");

	image_path(src, sizeof src, "01_large_pentagon.png");
	uint8_t *png = read_whole(src, &n);
	tmp_file(p, sizeof p, "truncated.png");
	write_file(p, png, n / 2);
	expect_bad(p, RF_ERR_FORMAT, "truncated PNG");
	tmp_file(p, sizeof p, "headeronly.png");
	write_file(p, png, 33);
	expect_bad(p, RF_ERR_FORMAT, "truncated PNG");
	/* A flipped bit in the image data: the chunk's CRC no longer matches. */
	png[60] ^= 0x10;
	tmp_file(p, sizeof p, "badcrc.png");
	write_file(p, png, n);
	expect_bad(p, RF_ERR_FORMAT, "bad CRC");
	free(png);

	/* Corrupt compressed data under a valid CRC: only the decoder can tell. */
	uint8_t rows[16] = {0};
	struct bytes b = make_png(4, 4, 8, 0, rows, 4, NULL, 0, NULL, 0);
	size_t idat = 33 + 8;   /* signature + IHDR chunk, then IDAT's length and type */
	uint32_t len = (uint32_t)b.v[33] << 24 | (uint32_t)b.v[34] << 16 | (uint32_t)b.v[35] << 8 | b.v[36];
	memset(b.v + idat, 0xff, len);
	uint32_t crc = (uint32_t)crc32(0, b.v + 37, len + 4);
	uint8_t q[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
	memcpy(b.v + idat + len, q, 4);
	tmp_file(p, sizeof p, "badzlib.png");
	write_file(p, b.v, b.n);
	expect_bad(p, RF_ERR_FORMAT, "corrupt PNG data");
	free(b.v);

	image_path(src, sizeof src, "07_noise_star.jpg");
	uint8_t *jpg = read_whole(src, &n);
	tmp_file(p, sizeof p, "truncated.jpg");
	write_file(p, jpg, n * 6 / 10);
	expect_bad(p, RF_ERR_FORMAT, "truncated JPEG");
	tmp_file(p, sizeof p, "jpegheader.jpg");
	write_file(p, jpg, 100);
	expect_bad(p, RF_ERR_FORMAT, "truncated JPEG");
	free(jpg);

	uint8_t noise[4096];
	rf_rand_seed(42);
	for (size_t i = 0; i < sizeof noise; i++)
		noise[i] = (uint8_t)rf_rand_u64();
	tmp_file(p, sizeof p, "random.jpg");
	write_file(p, noise, sizeof noise);
	expect_bad(p, RF_ERR_FORMAT, "not a PNG or JPEG");

	tmp_file(p, sizeof p, "text.png");
	write_file(p, "this is not an image\n", 21);
	expect_bad(p, RF_ERR_FORMAT, "not a PNG or JPEG");

	tmp_file(p, sizeof p, "anim.png");
	write_file(p, "GIF89a\x01\x00\x01\x00\x00\x00\x00", 13);
	expect_bad(p, RF_ERR_UNSUPPORTED, "GIF");

	uint8_t rows16[4 * 2] = {0};
	b = make_png(2, 2, 16, 0, rows16, 4, NULL, 0, NULL, 0);
	tmp_file(p, sizeof p, "deep16.png");
	write_file(p, b.v, b.n);
	expect_bad(p, RF_ERR_UNSUPPORTED, "16-bit PNG");
	free(b.v);

	/* A header claiming 100000 x 100000: refused before anything is allocated. */
	b = make_png(100000, 100000, 8, 2, NULL, 0, NULL, 0, NULL, 0);
	tmp_file(p, sizeof p, "huge.png");
	write_file(p, b.v, b.n);
	expect_bad(p, RF_ERR_UNSUPPORTED, "100000 x 100000");
	free(b.v);
	b = make_png(20000, 20000, 8, 0, NULL, 0, NULL, 0, NULL, 0);
	tmp_file(p, sizeof p, "toomany.png");
	write_file(p, b.v, b.n);
	expect_bad(p, RF_ERR_UNSUPPORTED, "2^28");
	free(b.v);
}

static void test_bad_args(void)
{
	uint8_t px[12] = {0};
	struct rf_image img = {2, 2, 3, false, px}, out;
	CHECK_FAILS(rf_image_resize(&img, 0, 5, &out), RF_ERR_INVALID, "0 x 5");
	CHECK_FAILS(rf_image_resize(&img, 40000, 5, &out), RF_ERR_INVALID, "40000 x 5");
	struct rf_preprocess p = rf_preprocess_openai(0);
	float f[3];
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "size 0");
	p = rf_preprocess_openai(1);
	p.std[1] = 0;
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "std[1]");
	CHECK_FAILS(rf_image_decode(NULL, 0, "mem", &out), RF_ERR_FORMAT, "mem: empty");
	rf_image_fini(NULL);
}

/* }===== */

/* {===== threads */

struct worker {
	const float *want;
	size_t mismatches;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rf_preprocess p = rf_preprocess_openai(S);
	float *out = malloc(PIX * sizeof *out);
	for (int round = 0; round < 3; round++) {
		for (int b = 0; b < NIMG; b++) {
			char path[1200];
			image_path(path, sizeof path, cases[b].file);
			if (rf_image_load_preprocessed(path, &p, out) != RF_OK ||
			    memcmp(out, w->want + (size_t)b * PIX, PIX * sizeof *out))
				w->mismatches++;
		}
	}
	free(out);
	return NULL;
}

static void test_concurrent(void)
{
	enum { THREADS = 6 };
	float *want = malloc((size_t)NIMG * PIX * sizeof *want);
	struct rf_preprocess p = rf_preprocess_openai(S);
	for (int b = 0; b < NIMG; b++) {
		char path[1200];
		image_path(path, sizeof path, cases[b].file);
		CHECK_OK(rf_image_load_preprocessed(path, &p, want + (size_t)b * PIX));
	}
	pthread_t th[THREADS];
	struct worker w[THREADS];
	size_t mismatches = 0;
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){want, 0};
		CHECK(pthread_create(&th[t], NULL, worker_main, &w[t]) == 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		mismatches += w[t].mismatches;
	}
	printf("concurrent preprocessing: %d threads x %d images, %zu mismatches\n", THREADS,
	       3 * NIMG, mismatches);
	CHECK(mismatches == 0);
	free(want);
}

/* }===== */

/* Removes the files test_bad_files wrote, then the directory. */
static void clean_tmp(void)
{
	static const char *const names[] = {"empty.png", "truncated.png", "headeronly.png",
		"badcrc.png", "badzlib.png", "truncated.jpg", "jpegheader.jpg", "random.jpg",
		"text.png", "anim.png", "deep16.png", "huge.png", "toomany.png"};
	char p[256];
	for (size_t i = 0; i < RF_ARRAY_LEN(names); i++) {
		tmp_file(p, sizeof p, names[i]);
		unlink(p);
	}
	rmdir(tmp_dir);
}

int main(void)
{
	const char *data = getenv("RF_TEST_DATA");
	if (!data) {
		fprintf(stderr, "SKIP: RF_TEST_DATA must be set (ctest sets it)\n");
		return 77;
	}
	snprintf(data_dir, sizeof data_dir, "%s", data);
	snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rf_image_XXXXXX");
	char ref_path[1200];
	snprintf(ref_path, sizeof ref_path, "%s/tiny-gelu/reference.safetensors", data_dir);
	CHECK(load_index());
	CHECK_OK(rf_safetensors_open(ref_path, &ref));
	CHECK(mkdtemp(tmp_dir) != NULL);
	if (!rf_test_failures) {
		test_decoded();
		test_pixels();
		test_nearest_masks();
		test_squash();
		test_resize_golden();
		test_decode_golden();
		test_png_modes();
		test_bad_files();
		test_bad_args();
		test_concurrent();
		clean_tmp();
	}
	rf_safetensors_close(ref);
	if (rf_test_failures)
		fprintf(stderr, "%d check(s) failed\n", rf_test_failures);
	return rf_test_failures ? 1 : 0;
}
