#!/usr/bin/python3
"""make_imagenet_seg_fixture.py: writes a small file in the layout of the ImageNet-
segmentation benchmark's gtsegs_ijcv.mat (MATLAB v7.3, which is HDF5), made from a folder
of images and a folder of masks matched by name (photo.jpg <-> masks/photo.png), so the
`--imagenet-seg` reader can be tested without the 1.3 GB original.

The layout is what MATLAB writes for a struct `value` with cell fields `img` and `gt`, and
what the paper's code (Chefer et al.'s ImagenetSegmentation) reads:
  /value/img   [N, 1] object references; img[i, 0] -> uint8 [3, W, H] (the RGB image,
               stored transposed: np.array(img).transpose(2, 1, 0))
  /value/gt    [N, 1] object references; gt[i, 0] -> a cell [1, 1] of references whose
               [0, 0] entry -> uint8 [W, H], 1 on the object, 0 elsewhere (transposed)
The referenced datasets live in the group /#refs#, as MATLAB puts them; MATLAB_class
attributes and the 512-byte MAT-file header in the user block make MATLAB itself accept
it. Images are decoded with PIL and converted to RGB first (the benchmark stores RGB;
an alpha channel is dropped, a gray image replicated). A mask pixel is foreground where
it is 255 (8-bit masks, 0 or 255).

Needs Debian's python3-h5py, python3-numpy and python3-pil (developer tool, not part of
the build):

    /usr/bin/python3 scripts/dev/make_imagenet_seg_fixture.py IMAGES_DIR OUT.mat

e.g. with IMAGES_DIR = tests/data/tiny-gelu/images (masks in IMAGES_DIR/masks, or give
--masks DIR). Images are taken in sorted name order. --without-gt leaves /value/gt out
(a file of the wrong layout, for the reader's error test).
"""
import argparse
import os
import time

import h5py
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def mat_header():
    text = ("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: %s HDF5 schema 1.00 ."
            % time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(0)))
    header = text.encode().ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM"
    return header.ljust(512, b"\0")


def pairs(images_dir, masks_dir):
    for name in sorted(os.listdir(images_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS or not os.path.isfile(os.path.join(images_dir, name)):
            continue
        mask = os.path.join(masks_dir, stem + ".png")
        if not os.path.exists(mask):
            raise SystemExit(f"no mask {mask} for {name}")
        yield name, os.path.join(images_dir, name), mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--masks", help="masks folder (default: IMAGES/masks)")
    ap.add_argument("--without-gt", action="store_true", help="leave /value/gt out")
    args = ap.parse_args()
    masks_dir = args.masks or os.path.join(args.images, "masks")
    items = list(pairs(args.images, masks_dir))
    with h5py.File(args.out, "w", userblock_size=512, libver="earliest") as f:
        refs = f.create_group("#refs#")
        value = f.create_group("value")
        value.attrs["MATLAB_class"] = np.bytes_("struct")
        ref_dtype = h5py.special_dtype(ref=h5py.Reference)
        img = value.create_dataset("img", (len(items), 1), dtype=ref_dtype)
        gt = refs.create_dataset("unused_gt", (len(items), 1), dtype=ref_dtype) if args.without_gt \
            else value.create_dataset("gt", (len(items), 1), dtype=ref_dtype)
        for d in (img, gt):
            d.attrs["MATLAB_class"] = np.bytes_("cell")
        for i, (name, image_path, mask_path) in enumerate(items):
            rgb = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.uint8)
            mask = (np.asarray(Image.open(mask_path)) == 255).astype(np.uint8)
            if mask.ndim == 3:
                mask = mask[:, :, 0]
            image_ds = refs.create_dataset(f"img{i}", data=rgb.transpose(2, 1, 0))
            mask_ds = refs.create_dataset(f"gt{i}", data=mask.transpose(1, 0))
            cell = refs.create_dataset(f"cell{i}", (1, 1), dtype=ref_dtype)
            for d, cls in ((image_ds, "uint8"), (mask_ds, "uint8"), (cell, "cell")):
                d.attrs["MATLAB_class"] = np.bytes_(cls)
            cell[0, 0] = mask_ds.ref
            img[i, 0] = image_ds.ref
            gt[i, 0] = cell.ref
            print(f"{i}: {name} {rgb.shape[1]}x{rgb.shape[0]}, mask {mask.sum()} object pixels")
    with open(args.out, "r+b") as f:
        f.write(mat_header())


if __name__ == "__main__":
    main()
