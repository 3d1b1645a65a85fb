/*
** segment.c: relevance, threshold, pixel metrics and average precision of zero-shot
** segmentation (see segment.h). Compute layer (L5; host only).
*/
#include "segment.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rf_seg_relevance(const float *u, size_t n, float *relevance)
{
	float hi = u[0];
	for (size_t i = 1; i < n; i++)
		hi = fmaxf(hi, u[i]);
	/* torch.clip(U, 0, max U): with max U < 0 every value becomes max U. */
	float lo = INFINITY;
	for (size_t i = 0; i < n; i++) {
		float c = hi < 0 ? hi : fminf(fmaxf(u[i], 0.0f), hi);
		relevance[i] = c;
		lo = fminf(lo, c);
	}
	float range = hi < 0 ? 0.0f : hi - lo;
	for (size_t i = 0; i < n; i++)
		relevance[i] = range > 0 ? (relevance[i] - lo) / range : NAN;
}

/* {===== average precision */

struct sample {
	float score;
	uint8_t positive;
};

static int by_score_desc(const void *a, const void *b)
{
	float x = ((const struct sample *)a)->score, y = ((const struct sample *)b)->score;
	return (x < y) - (x > y);
}

/* Each pixel gives exactly one positive sample, so there are n positives. */
static double average_precision(const struct sample *s, size_t count, size_t positives)
{
	double ap = 0, prev_recall = 0;
	size_t tp = 0;
	for (size_t i = 0; i < count;) {
		float t = s[i].score;
		for (; i < count && s[i].score == t; i++)
			tp += s[i].positive;
		double recall = (double)tp / (double)positives, precision = (double)tp / (double)i;
		ap += (recall - prev_recall) * precision;
		prev_recall = recall;
	}
	return ap;
}

/* }===== */

enum rf_status rf_seg_score(const float *relevance, const uint8_t *labels, size_t n, uint8_t *mask,
			    struct rf_seg_score *out)
{
	memset(out, 0, sizeof *out);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += relevance[i];
	out->threshold = n ? sum / (double)n : NAN;
	for (size_t i = 0; i < n; i++)
		mask[i] = relevance[i] > out->threshold;   /* false for NaN */
	if (!labels)
		return RF_OK;
	for (size_t i = 0; i < n; i++) {
		int m = mask[i], l = labels[i] != 0;
		out->correct += m == l;
		out->inter[l] += m == l;
		out->uni[0] += m == 0 || l == 0;
		out->uni[1] += m == 1 || l == 1;
	}
	out->labeled = (int64_t)n;
	struct sample *s = malloc((n ? 2 * n : 1) * sizeof *s);
	if (!s)
		return rf_error(RF_ERR_OOM_HOST, "segmentation: allocating %zu samples", 2 * n);
	for (size_t i = 0; i < n; i++) {
		float r = relevance[i];
		bool nan = isnan(r);
		s[2 * i] = (struct sample){ nan ? 0.0f : 1.0f - r, labels[i] == 0 };
		s[2 * i + 1] = (struct sample){ nan ? 0.0f : r, labels[i] != 0 };
	}
	qsort(s, 2 * n, sizeof *s, by_score_desc);
	out->ap = n ? average_precision(s, 2 * n, n) : 0;
	free(s);
	return RF_OK;
}

enum rf_status rf_seg_labels(const struct rf_image *mask, int size, uint8_t *labels)
{
	size_t pixels = (size_t)mask->width * (size_t)mask->height, ch = (size_t)mask->channels;
	bool binary = true;
	for (size_t i = 0; i < pixels && binary; i++)
		binary = mask->pixels[i * ch] <= 1;
	struct rf_image small;
	enum rf_status s = rf_image_resize_nearest(mask, size, size, &small);
	if (s != RF_OK)
		return s;
	for (size_t i = 0; i < (size_t)size * (size_t)size; i++) {
		uint8_t v = small.pixels[i * ch];
		labels[i] = binary ? v == 1 : v >= 128;
	}
	rf_image_fini(&small);
	return RF_OK;
}
