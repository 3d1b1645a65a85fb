/*
** imagenet_seg.h: the ImageNet-segmentation benchmark (Guillaumin et al.), as published in
** `gtsegs_ijcv.mat` (MATLAB v7.3, which is HDF5) and read the way the paper's code reads
** it (Chefer et al.'s ImagenetSegmentation dataset):
**   /value/img  [N, 1] object references; image i is the dataset /value/img[i, 0] points
**               to, stored [3, W, H] (MATLAB's column order), so pixel (x, y) of channel c
**               is element [c, x, y]: transposed here to rows of RGB.
**   /value/gt   [N, 1] object references to cells (datasets of references); the mask of
**               image i is what cell[0, 0] points to, stored [W, H], values 0 or 1.
** Read through Debian's HDF5 library. Compute layer (L5; host only, one thread at a time).
*/
#ifndef RF_COMPUTE_MODEL_IMAGENET_SEG_H
#define RF_COMPUTE_MODEL_IMAGENET_SEG_H

#include "image.h"

typedef struct rf_imagenet_seg rf_imagenet_seg;

/* Opens the file and reads both reference lists. RF_ERR_IO if it cannot be opened;
** RF_ERR_FORMAT (naming the path and the object) if it is not HDF5 or lacks the layout
** above (missing datasets, not references, other shapes, image and mask counts that
** differ). */
enum rf_status rf_imagenet_seg_open(const char *path, rf_imagenet_seg **out);
void rf_imagenet_seg_close(rf_imagenet_seg *f);
size_t rf_imagenet_seg_count(const rf_imagenet_seg *f);

/* Image i (0-based) as an 8-bit RGB image (a [1, W, H] image is gray, replicated). The
** stored integers are converted to 8 bits by HDF5 (clamped). */
enum rf_status rf_imagenet_seg_image(rf_imagenet_seg *f, size_t i, struct rf_image *out);
/* The mask of image i as a 1-channel 8-bit image (values as stored: 0 and 1). */
enum rf_status rf_imagenet_seg_mask(rf_imagenet_seg *f, size_t i, struct rf_image *out);

#endif
