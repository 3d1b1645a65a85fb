#!/usr/bin/python3
"""make_imagenet_seg_hostile.py: writes the crafted ImageNet-segmentation files that
tests/lua/test_imagenet_seg.lua feeds the reader, each in the layout of
make_imagenet_seg_fixture.py (/value/img and /value/gt, [N, 1] object references, one
image [3, W, H] and one mask cell) but claiming sizes it does not store (HDF5 fill
values), which the reader once allocated before looking:

  claims_columns.mat   /value/img and /value/gt are [1, 2^40] (only column 0 is used)
  claims_channels.mat  the image is [2^30, 4, 4] (2^30 channels: 16 GiB)
  claims_cell.mat      the mask cell holds 2^40 references
  claims_images.mat    /value/img and /value/gt claim 2^21 images

Needs Debian's python3-h5py and python3-numpy (developer tool, not part of the build):

    /usr/bin/python3 scripts/dev/make_imagenet_seg_hostile.py tests/data/imagenet-seg
"""
import os
import sys

import h5py
import numpy as np


def write(path, refs_shape=(1, 1), image_shape=(3, 4, 4), cell_points=1):
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        image = refs.create_dataset("img", shape=image_shape, dtype="u1", chunks=(1, 4, 4))
        mask = refs.create_dataset("mask", data=np.ones((4, 4), "u1"))
        cell = refs.create_dataset("cell", shape=(cell_points,), dtype=h5py.ref_dtype, chunks=(1,))
        cell[0] = mask.ref
        value = f.create_group("value")
        for name, ref in (("img", image.ref), ("gt", cell.ref)):
            d = value.create_dataset(name, shape=refs_shape, dtype=h5py.ref_dtype, chunks=(1, 1))
            d[0, 0] = ref


def main():
    out = sys.argv[1]
    write(os.path.join(out, "claims_columns.mat"), refs_shape=(1, 1 << 40))
    write(os.path.join(out, "claims_channels.mat"), image_shape=(1 << 30, 4, 4))
    write(os.path.join(out, "claims_cell.mat"), cell_points=1 << 40)
    write(os.path.join(out, "claims_images.mat"), refs_shape=(1 << 21, 1))


if __name__ == "__main__":
    main()
