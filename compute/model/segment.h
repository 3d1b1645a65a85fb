/*
** segment.h: the scoring half of zero-shot segmentation, as the paper's evaluation code
** (Gandelsman et al., after Chefer et al.) defines it; tests/data/tiny-gelu/README.md,
** item 5, steps 4 to 7, has the exact definitions. The map itself (a class's per-patch
** score, upsampled) is made from the decomposition by lua/lib/refract/segment.lua.
** Compute layer (L5; host only, no state, thread-safe).
*/
#ifndef RF_COMPUTE_MODEL_SEGMENT_H
#define RF_COMPUTE_MODEL_SEGMENT_H

#include "image.h"

/* One image's numbers against its ground truth (labels 0 = background, 1 = object). */
struct rf_seg_score {
	double threshold;        /* the mean relevance: mask = relevance > threshold */
	int64_t correct;         /* pixels where mask == label */
	int64_t labeled;         /* pixels scored (all of them) */
	int64_t inter[2];        /* per class c: #(mask == c and label == c) */
	int64_t uni[2];          /* per class c: #(mask == c or label == c) */
	double ap;               /* average precision over the 2n (score, positive) samples */
};

/* Step 4, in float32 as the reference computes it: U clamped to [0, max U], then
** relevance = (U - min) / (max - min). A constant map gives NaN everywhere (the
** reference's 0/0), which rf_seg_score treats as nothing found. n >= 1. */
void rf_seg_relevance(const float *u, size_t n, float *relevance);

/* Steps 5 and 7: mask[i] = relevance[i] > mean relevance (0/1), and with `labels` (0/1,
** may be NULL: mask and threshold only) every metric. AP: each pixel gives the samples
** (1 - relevance in float32, positive if label 0) and (relevance, positive if label 1);
** AP = sum over distinct scores t, high to low, of (recall(t) - recall(previous t)) *
** precision(t), ties forming one step (scikit-learn's average_precision_score). NaN
** relevance scores 0 (the reference's nan_to_num). RF_ERR_OOM_HOST on allocation failure. */
enum rf_status rf_seg_score(const float *relevance, const uint8_t *labels, size_t n, uint8_t *mask,
			    struct rf_seg_score *out);

/* Step 6: the ground truth of a mask image (any channels; the first is read) for a
** size x size input: the whole mask resized with PIL's NEAREST (aspect not kept, no crop),
** then label 1 where it is foreground: value 1 in a mask whose values are all 0 or 1 (the
** ImageNet-segmentation benchmark's masks), else value >= 128 (8-bit masks, 0 or 255).
** labels holds size * size bytes. */
enum rf_status rf_seg_labels(const struct rf_image *mask, int size, uint8_t *labels);

#endif
