/*
** image_write.h: writing 8-bit images as PNG files (stb_image_write), the way out for
** heatmaps and overlays. Compute layer (L5; host only, thread-safe).
*/
#ifndef RF_COMPUTE_MODEL_IMAGE_WRITE_H
#define RF_COMPUTE_MODEL_IMAGE_WRITE_H

#include "image.h"

/* Writes `img` (1 gray, 2 gray+alpha, 3 RGB or 4 RGBA channels, rows top to bottom) as a
** PNG file. The file appears complete or not at all (written to `path.tmp`, then renamed).
** RF_ERR_INVALID for sides outside 1..32768, over 2^28 pixels or channels outside 1..4;
** RF_ERR_OOM_HOST; RF_ERR_IO naming the path and the reason. */
enum rf_status rf_image_write_png(const char *path, const struct rf_image *img);

#endif
