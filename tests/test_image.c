/*
** test_image.c: image decoding and CLIP preprocessing against the tiny-gelu goldens
** (decoded arrays of the PNGs and the JPEG, `pixels` bit for bit, `gt_labels` through the
** NEAREST resize), PIL's resize, windows of a resize against crops of the whole, argument
** errors, and preprocessing from several threads at once. Decoding every kind of file,
** and bad files, are test_image_decode.c's.
*/
#include "harness.h"
#include "image.h"
#include "safetensors.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S 32
#define NIMG 8
#define PIX (3 * S * S)

static char data_dir[1024];
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

/* Decodes each image and compares with decoded.<stem>: exact, the JPEG too (libjpeg-turbo
** with PIL's settings). */
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
			size_t differ = 0;
			int max_diff = 0;
			for (size_t i = 0; i < n; i++) {
				int d = abs((int)img.pixels[i] - want[i]);
				differ += d != 0;
				max_diff = d > max_diff ? d : max_diff;
			}
			printf("decoded %-24s %zu/%zu values differ from PIL, max %d levels\n", c->file, differ,
			       n, max_diff);
			CHECK(differ == 0);
		}
		rf_image_fini(&img);
	}
}

/* `pixels` from the files and from the golden decoded arrays, bit-exact, the JPEG too. */
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
		image_path(path, sizeof path, c->file);
		CHECK_OK(rf_image_load_preprocessed(path, &p, out));
		size_t bad = float_diffs(out, pixels + (size_t)b * PIX, PIX, &max_abs);
		printf("pixels  %-24s from the file:          %4zu/%d floats differ (max %.3g)\n", c->file,
		       bad, PIX, max_abs);
		CHECK(bad == 0);

		int ch = mode_channels(c->mode);
		snprintf(name, sizeof name, "decoded.%s", c->stem);
		const uint8_t *dec = golden(name, RF_U8, (size_t)c->width * (size_t)c->height * (size_t)ch);
		struct rf_image img = {.width = c->width, .height = c->height, .channels = ch,
				       .pixels = (uint8_t *)dec};
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
			struct rf_image im3 = {.width = c->width, .height = c->height, .channels = 3,
					       .pixels = rgb};
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
		if (cases[b].width == cases[b].height)
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
		struct rf_image src = {.width = (int)in->shape.dim[1], .height = (int)in->shape.dim[0],
				       .channels = (int)in->shape.dim[2], .nearest = nearest_mode,
				       .pixels = (uint8_t *)in->data}, out = {0};
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

/* {===== windows */

static int rand_int(int n)
{
	return (int)(rf_rand_u64() % (uint64_t)n);
}

static struct rf_image random_image(int w, int h, int ch)
{
	struct rf_image img = {.width = w, .height = h, .channels = ch};
	size_t n = (size_t)w * (size_t)h * (size_t)ch;
	img.pixels = malloc(n);
	for (size_t i = 0; i < n; i++)
		img.pixels[i] = (uint8_t)rf_rand_u64();
	return img;
}

/* A window of a resize is that crop of the whole resize, bit for bit: bicubic in every
** channel count (RGBA and LA premultiplied), one axis only, NEAREST, CMYK. */
static void test_resize_window(void)
{
	rf_rand_seed(7);
	int bad = 0, n = 80;
	for (int t = 0; t < n; t++) {
		struct rf_image img = random_image(1 + rand_int(40), 1 + rand_int(40), 1 + t % 4);
		img.nearest = t % 5 == 4;
		img.cmyk = img.channels == 4 && t % 8 == 7;
		int width = t % 7 == 1 ? img.width : 1 + rand_int(70);
		int height = t % 7 == 2 ? img.height : 1 + rand_int(70);
		int w = 1 + rand_int(width), h = 1 + rand_int(height);
		int left = rand_int(width - w + 1), top = rand_int(height - h + 1);
		struct rf_image full, win;
		CHECK_OK(rf_image_resize(&img, width, height, &full));
		CHECK_OK(rf_image_resize_window(&img, width, height, left, top, w, h, &win));
		bool same = full.pixels && win.pixels && win.width == w && win.height == h &&
			    win.cmyk == img.cmyk && win.nearest == img.nearest;
		size_t ch = (size_t)img.channels, row = (size_t)w * ch;
		for (int y = 0; same && y < h; y++)
			same = !memcmp(win.pixels + (size_t)y * row, full.pixels +
				       ((size_t)(top + y) * (size_t)width + (size_t)left) * ch, row);
		if (!same) {
			fprintf(stderr, "window %dx%d at (%d,%d) of %dx%d c%d -> %dx%d differs\n", w, h, left,
				top, img.width, img.height, img.channels, width, height);
			bad++;
		}
		rf_image_fini(&full);
		rf_image_fini(&win);
		rf_image_fini(&img);
	}
	printf("resize windows equal to crops of the whole: %d/%d\n", n - bad, n);
	CHECK(bad == 0);
}

/* CMYK is resized channel by channel (PIL's mode CMYK has no alpha): each channel as a
** gray image. */
static void test_cmyk_resize(void)
{
	rf_rand_seed(11);
	struct rf_image img = random_image(23, 17, 4), out;
	img.cmyk = true;
	CHECK_OK(rf_image_resize(&img, 9, 30, &out));
	size_t bad = 0;
	for (int c = 0; c < 4; c++) {
		struct rf_image gray = random_image(23, 17, 1), g;
		for (size_t i = 0; i < 23 * 17; i++)
			gray.pixels[i] = img.pixels[4 * i + (size_t)c];
		CHECK_OK(rf_image_resize(&gray, 9, 30, &g));
		for (size_t i = 0; out.pixels && g.pixels && i < 9 * 30; i++)
			bad += out.pixels[4 * i + (size_t)c] != g.pixels[i];
		rf_image_fini(&gray);
		rf_image_fini(&g);
	}
	CHECK(out.cmyk && bad == 0);
	rf_image_fini(&out);
	rf_image_fini(&img);
}

/* }===== */

/* {===== arguments */

static void test_bad_args(void)
{
	uint8_t px[12] = {0};
	struct rf_image img = {.width = 2, .height = 2, .channels = 3, .pixels = px}, out;
	CHECK_FAILS(rf_image_resize(&img, 0, 5, &out), RF_ERR_INVALID, "0 x 5");
	CHECK_FAILS(rf_image_resize(&img, 40000, 40000, &out), RF_ERR_INVALID, "40000 x 40000 is over 2^28");
	CHECK_FAILS(rf_image_resize_window(&img, 10, 10, 5, 0, 6, 1, &out), RF_ERR_INVALID,
		    "window 6 x 1 at (5, 0) is not inside 10 x 10");
	CHECK_FAILS(rf_image_resize_window(&img, 10, 10, -1, 0, 1, 1, &out), RF_ERR_INVALID, "window");
	/* A 1 x 20000 image to 224 x 4480000 would be 1 GB: only the crop is computed. */
	uint8_t *tall = calloc(20000, 1);
	struct rf_image im1 = {.width = 1, .height = 20000, .channels = 1, .pixels = tall};
	struct rf_preprocess p224 = rf_preprocess_openai(224);
	float *f224 = malloc(3 * 224 * 224 * sizeof *f224);
	CHECK_OK(rf_image_preprocess(&im1, &p224, f224));
	im1.height = 1;
	im1.width = 20000;
	CHECK_OK(rf_image_preprocess(&im1, &p224, f224));
	free(f224);
	free(tall);
	struct rf_preprocess p = rf_preprocess_openai(0);
	float f[3];
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "size 0");
	p = rf_preprocess_openai(1);
	p.std[1] = 0;
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "std[1]");
	p = rf_preprocess_openai(1);
	p.std[2] = INFINITY;
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "std[2] is zero, NaN or infinite");
	p.std[2] = 1e-40f;                       /* subnormal: every pixel would be infinite */
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "take pixels past the float range");
	p.std[2] = 1e-3f;
	p.mean[2] = 3e38f;
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "mean[2] = 3e+38 and std[2] = 0.001");
	p = rf_preprocess_openai(1);
	p.mean[0] = NAN;
	CHECK_FAILS(rf_image_preprocess(&img, &p, f), RF_ERR_INVALID, "mean[0] is not finite");
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

int main(void)
{
	const char *data = getenv("RF_TEST_DATA");
	if (!data) {
		fprintf(stderr, "SKIP: RF_TEST_DATA must be set (ctest sets it)\n");
		return 77;
	}
	snprintf(data_dir, sizeof data_dir, "%s", data);
	char ref_path[1200];
	snprintf(ref_path, sizeof ref_path, "%s/tiny-gelu/reference.safetensors", data_dir);
	CHECK(load_index());
	CHECK_OK(rf_safetensors_open(ref_path, &ref));
	if (!rf_test_failures) {
		test_decoded();
		test_pixels();
		test_nearest_masks();
		test_squash();
		test_resize_golden();
		test_decode_golden();
		test_resize_window();
		test_cmyk_resize();
		test_bad_args();
		test_concurrent();
	}
	rf_safetensors_close(ref);
	if (rf_test_failures)
		fprintf(stderr, "%d check(s) failed\n", rf_test_failures);
	return rf_test_failures ? 1 : 0;
}
