/*
** imagenet_seg.c: reading gtsegs_ijcv.mat through HDF5's C library (see imagenet_seg.h).
** Compute layer (L5; host only).
**
** Every HDF5 handle is closed on every path; HDF5's own error printing is switched off
** once (this is its only user), and failures become rf_error messages that name the
** file, the image and the object.
*/
#include "imagenet_seg.h"
#include "file_in.h"
#include "status.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As image.h decodes: 32768 per side, 2^28 pixels. */
#define MAX_SIDE 32768
#define MAX_PIXELS (1ll << 28)
/* Sizes a crafted file may claim without storing anything (fill values): bounded before
** anything is allocated. The benchmark has 4,276 images and one mask per cell. */
#define MAX_IMAGES (1ll << 20)
#define MAX_CELL 4096

struct rf_imagenet_seg {
	hid_t file;
	char *path;
	size_t count;
	hobj_ref_t *img, *gt;     /* column 0 of /value/img and /value/gt */
};

/* {===== references */

/* The [N, K] reference dataset `name` (K >= 1): its column 0 into *refs (malloc'd). */
static enum rf_status read_ref_column(hid_t file, const char *path, const char *name, hobj_ref_t **refs,
				      size_t *count)
{
	*refs = NULL;
	if (H5Lexists(file, "/value", H5P_DEFAULT) <= 0 || H5Lexists(file, name, H5P_DEFAULT) <= 0)
		return rf_error(RF_ERR_FORMAT, "%s: no dataset %s (not the ImageNet-segmentation layout: "
				"/value/img and /value/gt)", path, name);
	hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
	hid_t type = ds >= 0 ? H5Dget_type(ds) : -1, space = ds >= 0 ? H5Dget_space(ds) : -1;
	hsize_t dims[2] = { 0, 0 };
	enum rf_status s = RF_OK;
	if (ds < 0 || type < 0 || space < 0)
		s = rf_error(RF_ERR_FORMAT, "%s: %s is not a dataset", path, name);
	else if (H5Tequal(type, H5T_STD_REF_OBJ) <= 0)
		s = rf_error(RF_ERR_FORMAT, "%s: %s does not hold object references", path, name);
	else if (H5Sget_simple_extent_ndims(space) != 2 || H5Sget_simple_extent_dims(space, dims, NULL) != 2 ||
		 dims[1] < 1)
		s = rf_error(RF_ERR_FORMAT, "%s: %s must be a 2-d [N, 1] array of references", path, name);
	else if (dims[0] > MAX_IMAGES)
		s = rf_error(RF_ERR_UNSUPPORTED, "%s: %s claims %llu images (at most %lld)", path, name,
			     (unsigned long long)dims[0], MAX_IMAGES);
	hobj_ref_t *all = NULL;
	if (s == RF_OK && !(all = malloc((dims[0] ? (size_t)dims[0] : 1) * sizeof *all)))
		s = rf_error(RF_ERR_OOM_HOST, "%s: allocating %llu references", path,
			     (unsigned long long)dims[0]);
	/* Column 0 only (a selection), however many columns the file claims. */
	hsize_t start[2] = { 0, 0 }, rows[2] = { dims[0], 1 };
	hid_t column = s == RF_OK && dims[0] > 0 ? H5Screate_simple(1, dims, NULL) : -1;
	if (column >= 0 && (H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, rows, NULL) < 0 ||
			    H5Dread(ds, H5T_STD_REF_OBJ, column, space, H5P_DEFAULT, all) < 0))
		s = rf_error(RF_ERR_FORMAT, "%s: cannot read %s", path, name);
	if (column >= 0)
		H5Sclose(column);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	if (ds >= 0)
		H5Dclose(ds);
	if (s != RF_OK) {
		free(all);
		return s;
	}
	*refs = all;
	*count = (size_t)dims[0];
	return RF_OK;
}

/* Opens the dataset a reference points to; `what` names it in messages. */
static enum rf_status deref_dataset(rf_imagenet_seg *f, const hobj_ref_t *ref, const char *what,
				    size_t i, hid_t *out)
{
	hid_t obj = H5Rdereference2(f->file, H5P_DEFAULT, H5R_OBJECT, ref);
	if (obj < 0)
		return rf_error(RF_ERR_FORMAT, "%s: image %zu: the %s reference points nowhere", f->path, i, what);
	if (H5Iget_type(obj) != H5I_DATASET) {
		H5Oclose(obj);
		return rf_error(RF_ERR_FORMAT, "%s: image %zu: the %s reference is not a dataset", f->path, i, what);
	}
	*out = obj;
	return RF_OK;
}

/* }===== */

/* {===== arrays */

/* An integer dataset of rank `rank` (2 or 3) read as 8-bit values (HDF5 converts and
** clamps) into a malloc'd buffer; dims in the stored order. */
static enum rf_status read_u8(rf_imagenet_seg *f, hid_t ds, int rank, const char *what, size_t i,
			      hsize_t *dims, uint8_t **out)
{
	*out = NULL;
	hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
	enum rf_status s = RF_OK;
	if (type < 0 || space < 0 || H5Tget_class(type) != H5T_INTEGER)
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu: the %s is not an integer array", f->path, i, what);
	else if (H5Sget_simple_extent_ndims(space) != rank ||
		 H5Sget_simple_extent_dims(space, dims, NULL) != rank)
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu: the %s is not a %d-d array", f->path, i, what, rank);
	else if (rank == 3 && dims[0] != 3 && dims[0] != 1)   /* before allocating dims[0] planes */
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu has %llu channels (stored [3, W, H])", f->path, i,
			     (unsigned long long)dims[0]);
	hsize_t w = s == RF_OK ? dims[rank - 2] : 0, h = s == RF_OK ? dims[rank - 1] : 0;
	if (s == RF_OK && (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE || (long long)(w * h) > MAX_PIXELS))
		s = rf_error(RF_ERR_UNSUPPORTED, "%s: image %zu: the %s is %llu x %llu (sides 1..%d, 2^28 "
			     "pixels at most)", f->path, i, what, (unsigned long long)w, (unsigned long long)h,
			     MAX_SIDE);
	size_t n = s == RF_OK ? (size_t)(w * h) * (rank == 3 ? (size_t)dims[0] : 1) : 0;
	uint8_t *buf = NULL;
	if (s == RF_OK && !(buf = malloc(n)))
		s = rf_error(RF_ERR_OOM_HOST, "%s: image %zu: allocating %zu bytes", f->path, i, n);
	if (s == RF_OK && H5Dread(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu: cannot read the %s", f->path, i, what);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	if (s != RF_OK) {
		free(buf);
		return s;
	}
	*out = buf;
	return RF_OK;
}

/* }===== */

enum rf_status rf_imagenet_seg_open(const char *path, rf_imagenet_seg **out)
{
	*out = NULL;
	/* HDF5 opens the path itself: a FIFO would block that open forever, a folder or a
	** device would be read as a file. */
	enum rf_status checked = rf_file_check_regular(path);
	if (checked != RF_OK)
		return checked;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (H5Fis_hdf5(path) <= 0)
		return rf_error(RF_ERR_FORMAT, "%s: not an HDF5 file (the benchmark's gtsegs_ijcv.mat is "
				"MATLAB v7.3, which is HDF5)", path);
	rf_imagenet_seg *f = calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a reader", path);
	}
	f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	size_t images = 0, masks = 0;
	enum rf_status s = f->file < 0 ? rf_error(RF_ERR_IO, "%s: HDF5 cannot open it", path) : RF_OK;
	if (s == RF_OK)
		s = read_ref_column(f->file, path, "/value/img", &f->img, &images);
	if (s == RF_OK)
		s = read_ref_column(f->file, path, "/value/gt", &f->gt, &masks);
	if (s == RF_OK && images != masks)
		s = rf_error(RF_ERR_FORMAT, "%s: %zu images but %zu masks", path, images, masks);
	if (s != RF_OK) {
		rf_imagenet_seg_close(f);
		return s;
	}
	f->count = images;
	*out = f;
	return RF_OK;
}

void rf_imagenet_seg_close(rf_imagenet_seg *f)
{
	if (!f)
		return;
	if (f->file >= 0)
		H5Fclose(f->file);
	free(f->img);
	free(f->gt);
	free(f->path);
	free(f);
}

size_t rf_imagenet_seg_count(const rf_imagenet_seg *f)
{
	return f->count;
}

static enum rf_status check_index(const rf_imagenet_seg *f, size_t i)
{
	if (i >= f->count)
		return rf_error(RF_ERR_INVALID, "%s: image %zu is past the last one (%zu images, counted from 0)",
				f->path, i, f->count);
	return RF_OK;
}

enum rf_status rf_imagenet_seg_image(rf_imagenet_seg *f, size_t i, struct rf_image *out)
{
	*out = (struct rf_image){ 0 };
	hid_t ds;
	enum rf_status s = check_index(f, i);
	if (s != RF_OK || (s = deref_dataset(f, &f->img[i], "image", i, &ds)) != RF_OK)
		return s;
	hsize_t dims[3];
	uint8_t *raw;
	s = read_u8(f, ds, 3, "image", i, dims, &raw);
	H5Dclose(ds);
	if (s == RF_OK && dims[0] != 3 && dims[0] != 1) {
		free(raw);
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu has %llu channels (stored [3, W, H])", f->path, i,
			     (unsigned long long)dims[0]);
	}
	if (s != RF_OK)
		return s;
	size_t c = (size_t)dims[0], w = (size_t)dims[1], h = (size_t)dims[2];
	uint8_t *rgb = malloc(w * h * 3);
	if (!rgb) {
		free(raw);
		return rf_error(RF_ERR_OOM_HOST, "%s: image %zu: allocating its pixels", f->path, i);
	}
	/* Element [k, x, y] is channel k of the pixel in column x, row y. */
	for (size_t y = 0; y < h; y++)
		for (size_t x = 0; x < w; x++)
			for (size_t k = 0; k < 3; k++)
				rgb[(y * w + x) * 3 + k] = raw[((c == 3 ? k : 0) * w + x) * h + y];
	free(raw);
	*out = (struct rf_image){ .width = (int)w, .height = (int)h, .channels = 3, .pixels = rgb };
	return RF_OK;
}

/* The mask dataset of image i: cell = *gt[i], mask = *cell[0, 0]. */
static enum rf_status open_mask(rf_imagenet_seg *f, size_t i, hid_t *out)
{
	hid_t cell;
	enum rf_status s = deref_dataset(f, &f->gt[i], "mask cell", i, &cell);
	if (s != RF_OK)
		return s;
	hid_t type = H5Dget_type(cell), space = H5Dget_space(cell);
	hsize_t n = space >= 0 ? (hsize_t)H5Sget_simple_extent_npoints(space) : 0;
	hobj_ref_t *refs = NULL;
	if (type < 0 || H5Tequal(type, H5T_STD_REF_OBJ) <= 0 || n < 1)
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu: the mask cell holds no references", f->path, i);
	else if (n > MAX_CELL)
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu: the mask cell claims %llu references (at most %d)",
			     f->path, i, (unsigned long long)n, MAX_CELL);
	else if (!(refs = malloc((size_t)n * sizeof *refs)))
		s = rf_error(RF_ERR_OOM_HOST, "%s: image %zu: allocating the mask cell", f->path, i);
	else if (H5Dread(cell, H5T_STD_REF_OBJ, H5S_ALL, H5S_ALL, H5P_DEFAULT, refs) < 0)
		s = rf_error(RF_ERR_FORMAT, "%s: image %zu: cannot read the mask cell", f->path, i);
	if (s == RF_OK)
		s = deref_dataset(f, &refs[0], "mask", i, out);
	free(refs);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	H5Dclose(cell);
	return s;
}

enum rf_status rf_imagenet_seg_mask(rf_imagenet_seg *f, size_t i, struct rf_image *out)
{
	*out = (struct rf_image){ 0 };
	hid_t ds;
	enum rf_status s = check_index(f, i);
	if (s != RF_OK || (s = open_mask(f, i, &ds)) != RF_OK)
		return s;
	hsize_t dims[2];
	uint8_t *raw;
	s = read_u8(f, ds, 2, "mask", i, dims, &raw);
	H5Dclose(ds);
	if (s != RF_OK)
		return s;
	size_t w = (size_t)dims[0], h = (size_t)dims[1];
	uint8_t *px = malloc(w * h);
	if (!px) {
		free(raw);
		return rf_error(RF_ERR_OOM_HOST, "%s: image %zu: allocating its mask", f->path, i);
	}
	for (size_t y = 0; y < h; y++)
		for (size_t x = 0; x < w; x++)
			px[y * w + x] = raw[x * h + y];
	free(raw);
	*out = (struct rf_image){ .width = (int)w, .height = (int)h, .channels = 1, .pixels = px };
	return RF_OK;
}
