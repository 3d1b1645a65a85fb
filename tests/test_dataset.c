/*
** test_dataset.c: the dataset loader's worker threads. Every batch that the loader hands
** out, for many worker counts, batch sizes, queue depths and index ranges, holds exactly
** the pixels that decoding its images one by one on this thread gives; an image that
** cannot be decoded fails its own batch with its path in the message and the batches after
** it still arrive; destroying a loader while its workers are busy loses nothing and leaks
** nothing. Host only (no Vulkan device). This is the test the ThreadSanitizer build runs
** (tests/README.md): every interleaving it sees must be free of data races.
*/
#include "harness.h"
#include "dataset.h"
#include "filetest.h"

#include <stdlib.h>
#include <string.h>

enum { SIZE = 24 };   /* small crops: the threads, not the resize, are under test */

static const char *const image_names[] = {
	"png_rgb8.png", "jpeg_420.jpg", "png_gray8.png", "jpeg_progressive.jpg", "png_pal8.png",
	"jpeg_cmyk_adobe.jpg", "png_rgba16.png", "bmp_rgb.bmp", "gif_pal.gif", "png_gray2_adam7.png",
	"jpeg_444.jpg", "png_graya8.png", "pnm_rgb.ppm", "jpeg_gray.jpg",
};
enum { N_IMAGES = sizeof image_names / sizeof image_names[0] };

static const char *paths[N_IMAGES];   /* valid until rf_ft_cleanup */
static const size_t image_floats = 3 * SIZE * SIZE;

/* Every image decoded on this thread: what each batch must hold. */
static float *decode_serially(const char *const *list, size_t n, const struct rf_preprocess *pre)
{
	float *all = malloc(n * image_floats * sizeof *all);
	for (size_t i = 0; all && i < n; i++)
		CHECK_OK(rf_image_load_preprocessed(list[i], pre, all + i * image_floats));
	return all;
}

/* Runs one loader over [first, end) and checks the order, sizes and pixels of its batches. */
static void check_loader(const rf_dataset *ds, const struct rf_preprocess *pre, const float *want,
			 int batch, int workers, int depth, size_t first, size_t end)
{
	rf_loader *ld = NULL;
	CHECK_OK(rf_loader_create(ds, pre, batch, workers, depth, first, end, &ld));
	if (!ld)
		return;
	size_t expect = first, last = RF_MIN(end, rf_dataset_count(ds));
	for (;;) {
		const float *pixels;
		size_t index;
		int count;
		CHECK_OK(rf_loader_next(ld, &pixels, &index, &count));
		if (count == 0)
			break;
		CHECK(index == expect);
		CHECK(count == (int)RF_MIN((size_t)batch, last - expect));
		if (index != expect || index + (size_t)count > last)
			break;
		if (memcmp(pixels, want + index * image_floats, (size_t)count * image_floats * sizeof(float))) {
			fprintf(stderr, "batch at %zu (batch %d, %d workers, depth %d) differs from serial decoding\n",
				index, batch, workers, depth);
			rf_test_failures++;
		}
		expect += (size_t)count;
	}
	CHECK(expect == RF_MAX(first, last) || first >= last);
	rf_loader_destroy(ld);
}

static void test_batches_match_serial_decoding(const struct rf_preprocess *pre)
{
	const char *list[N_IMAGES];
	for (int i = 0; i < N_IMAGES; i++)
		list[i] = paths[i];
	rf_dataset *ds = NULL;
	CHECK_OK(rf_dataset_from_paths(list, N_IMAGES, &ds));
	float *want = decode_serially(list, N_IMAGES, pre);
	if (!ds || !want)
		goto done;
	static const int batches[] = { 1, 4, 7, N_IMAGES + 3 };
	static const int workers[] = { 1, 2, 3, 8 };
	static const int depths[] = { 1, 2, 5 };
	for (size_t b = 0; b < RF_ARRAY_LEN(batches); b++)
		for (size_t w = 0; w < RF_ARRAY_LEN(workers); w++)
			for (size_t d = 0; d < RF_ARRAY_LEN(depths); d++)
				check_loader(ds, pre, want, batches[b], workers[w], depths[d], 0, N_IMAGES);
	/* Ranges: a middle window, one past the end (clamped), empty, and first past the end. */
	check_loader(ds, pre, want, 3, 4, 2, 3, N_IMAGES - 2);
	check_loader(ds, pre, want, 5, 2, 1, 1, N_IMAGES + 100);
	check_loader(ds, pre, want, 2, 3, 2, 6, 6);
	check_loader(ds, pre, want, 2, 3, 2, N_IMAGES + 1, N_IMAGES + 9);
done:
	free(want);
	rf_dataset_destroy(ds);
}

/* A truncated PNG among good images: its batch fails naming it, the others are exact. */
static void test_bad_image_fails_its_batch_only(const struct rf_preprocess *pre)
{
	const char *bad = rf_ft_tmp("truncated.png");
	size_t n;
	uint8_t *good = rf_ft_read(paths[0], &n);
	CHECK(good && n > 100);
	if (good)
		rf_ft_write(bad, good, 100);
	free(good);

	const char *list[9];
	for (int i = 0; i < 9; i++)
		list[i] = paths[i];
	list[4] = bad;
	float *want = decode_serially(list, 4, pre);   /* the images before it */
	rf_dataset *ds = NULL;
	CHECK_OK(rf_dataset_from_paths(list, 9, &ds));
	rf_loader *ld = NULL;
	if (ds)
		CHECK_OK(rf_loader_create(ds, pre, 3, 4, 3, 0, 9, &ld));
	const float *pixels;
	size_t index;
	int count;
	if (ld && want) {
		CHECK_OK(rf_loader_next(ld, &pixels, &index, &count));
		CHECK(index == 0 && count == 3 &&
		      !memcmp(pixels, want, 3 * image_floats * sizeof(float)));
		CHECK_FAILS(rf_loader_next(ld, &pixels, &index, &count), RF_ERR_FORMAT, "truncated.png");
		CHECK(pixels == NULL && count == 0);
		CHECK_OK(rf_loader_next(ld, &pixels, &index, &count));
		CHECK(index == 6 && count == 3);
		CHECK_OK(rf_loader_next(ld, &pixels, &index, &count));
		CHECK(count == 0);
	}
	rf_loader_destroy(ld);
	rf_dataset_destroy(ds);
	free(want);
}

/* Destroyed after 0, 1 or 2 batches while the workers still decode the rest. */
static void test_destroy_while_busy(const struct rf_preprocess *pre)
{
	const char *list[N_IMAGES * 4];
	for (size_t i = 0; i < RF_ARRAY_LEN(list); i++)
		list[i] = paths[i % N_IMAGES];
	rf_dataset *ds = NULL;
	CHECK_OK(rf_dataset_from_paths(list, RF_ARRAY_LEN(list), &ds));
	for (int round = 0; ds && round < 12; round++) {
		rf_loader *ld = NULL;
		CHECK_OK(rf_loader_create(ds, pre, 1 + round % 4, 1 + round % 5, 1 + round % 3, 0,
					  RF_ARRAY_LEN(list), &ld));
		for (int taken = 0; ld && taken < round % 3; taken++) {
			const float *pixels;
			size_t index;
			int count;
			CHECK_OK(rf_loader_next(ld, &pixels, &index, &count));
			CHECK(count > 0);
		}
		rf_loader_destroy(ld);
	}
	rf_dataset_destroy(ds);
}

int main(void)
{
	rf_ft_setup();
	for (int i = 0; i < N_IMAGES; i++) {
		char rel[64];
		snprintf(rel, sizeof rel, "images/%s", image_names[i]);
		paths[i] = rf_ft_data(rel);
	}
	struct rf_preprocess pre = rf_preprocess_openai(SIZE);
	test_batches_match_serial_decoding(&pre);
	test_bad_image_fails_its_batch_only(&pre);
	test_destroy_while_busy(&pre);
	rf_ft_cleanup();
	if (rf_test_failures)
		fprintf(stderr, "%d check(s) failed\n", rf_test_failures);
	return rf_test_failures ? 1 : 0;
}
