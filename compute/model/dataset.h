/*
** dataset.h: image datasets (a folder searched recursively, a list file, or given paths)
** and a loader that decodes and preprocesses batches on worker threads while the device
** works on the previous batch. Compute layer (L5; host only).
*/
#ifndef RF_COMPUTE_MODEL_DATASET_H
#define RF_COMPUTE_MODEL_DATASET_H

#include "image.h"

typedef struct rf_dataset rf_dataset;
typedef struct rf_loader rf_loader;

/* Every .png/.jpg/.jpeg (any case) under `dir`, recursively, sorted by path (byte order),
** so the order is the same on every run and machine. */
enum rf_status rf_dataset_from_dir(const char *dir, rf_dataset **out);
/* One path per line (blank lines and lines starting with # skipped); relative paths are
** relative to the list file's folder. */
enum rf_status rf_dataset_from_list(const char *list, rf_dataset **out);
enum rf_status rf_dataset_from_paths(const char *const *paths, size_t count, rf_dataset **out);
void rf_dataset_destroy(rf_dataset *ds);
size_t rf_dataset_count(const rf_dataset *ds);
const char *rf_dataset_path(const rf_dataset *ds, size_t i);

/* Starts `workers` threads (0: one per core) preprocessing images [first, end) of the
** dataset (0-based; end is clamped to the dataset's size) in batches of `batch` that start
** at `first`, keeping up to `depth` batches ready. */
enum rf_status rf_loader_create(const rf_dataset *ds, const struct rf_preprocess *pre, int batch,
				int workers, int depth, size_t first, size_t end, rf_loader **out);
/* The next batch: *pixels points to count*3*S*S floats (valid until the next call), *index
** to the dataset index of its first image. *count is 0 at the end. An image that cannot be
** decoded fails the call with the image's error message. */
enum rf_status rf_loader_next(rf_loader *ld, const float **pixels, size_t *index, int *count);
/* Stops the workers and frees everything. NULL ok. */
void rf_loader_destroy(rf_loader *ld);

#endif
