/*
** fuzz_image.c: libFuzzer target for image decoding and preprocessing. Any bytes go
** through rf_image_decode (the format told by the signature: PNG, JPEG, BMP, GIF, TGA,
** PNM); a JPEG also through the decode that keeps CMYK. An image that decodes is then
** preprocessed (resize of the shorter side or squash, crop, normalisation) at a size and
** mode taken from the input's last byte, and resized with NEAREST. A failure must come
** with a message and no pixels; a success with pixels that preprocess to finite numbers.
** Built with RF_FUZZ=ON (clang); see tests/fuzz/CMakeLists.txt.
*/
#include "image_internal.h"
#include "status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A smaller limit than PIL's keeps each run short; the limit itself is what is tested
** by huge headers, whatever its value. */
#define FUZZ_MAX_PIXELS (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	rf_image_set_max_pixels(FUZZ_MAX_PIXELS);
	return 0;
}

static void check_failure(enum rf_status s, const struct rf_image *img)
{
	if (img->pixels || !rf_error_message()[0] || s == RF_OK) {
		fprintf(stderr, "a failed decode left pixels or no message\n");
		abort();
	}
}

/* Preprocesses and checks the result is finite (every pixel read, none undefined). */
static void preprocess(const struct rf_image *img, uint8_t knob)
{
	struct rf_preprocess p = rf_preprocess_openai(1 + knob % 40);
	p.mode = knob & 0x80 ? RF_RESIZE_SQUASH : RF_RESIZE_SHORTEST;
	size_t n = 3 * (size_t)p.size * (size_t)p.size;
	float *out = malloc(n * sizeof *out);
	if (!out)
		return;
	if (rf_image_preprocess(img, &p, out) == RF_OK) {
		for (size_t i = 0; i < n; i++) {
			if (!isfinite(out[i])) {
				fprintf(stderr, "preprocessing gave a non-finite value\n");
				abort();
			}
		}
	}
	free(out);
	struct rf_image r;
	if (rf_image_resize_nearest(img, 1 + knob % 13, 1 + knob % 7, &r) == RF_OK)
		rf_image_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t knob = size ? data[size - 1] : 0;
	struct rf_image img;
	enum rf_status s = rf_image_decode(data, size, "fuzz", &img);
	if (s != RF_OK) {
		check_failure(s, &img);
	} else {
		if (img.width < 1 || img.height < 1 || img.channels < 1 || img.channels > 4 || img.cmyk)
			abort();
		preprocess(&img, knob);
		rf_image_fini(&img);
	}
	if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) {
		struct rf_image_src src = {data, size, "fuzz.jpg", FUZZ_MAX_PIXELS, true};
		s = rf_image_decode_jpeg(&src, &img);
		if (s != RF_OK) {
			check_failure(s, &img);
		} else {
			preprocess(&img, knob);
			rf_image_fini(&img);
		}
	}
	return 0;
}
