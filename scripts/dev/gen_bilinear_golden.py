#!/usr/bin/python3
"""gen_bilinear_golden.py: writes tests/data/bilinear/bilinear.safetensors, PyTorch's own
torch.nn.functional.interpolate(mode="bilinear", align_corners=False) on random float
maps, so tests/lua/test_resize.lua can check refract.resize against the function the
paper's segmentation code calls: integer upsampling (the patch grid to the image, as
scale_factor=p does), non-integer up and down factors, one axis only, single pixels,
and several channels at once.

Needs Debian's python3-torch and python3-numpy (developer tool, not part of the build):

    /usr/bin/python3 scripts/dev/gen_bilinear_golden.py tests/data/bilinear/bilinear.safetensors

Tensors in.<i> [C, h, w] and out.<i> [C, h', w'] (float32, C = 1 or 3); metadata
case.<i> = "h w -> h' w'" and how it was called (size or scale_factor), torch = version.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

import safetensors_io

# (channels, h, w, h', w', scale_factor or None)
CASES = [
    (1, 4, 4, 32, 32, 8),     # the tiny-gelu segmentation: a 4x4 patch map, p = 8
    (1, 16, 16, 224, 224, 14),  # ViT-L-14 / ViT-H-14's grid to the input (1/14 is inexact)
    (1, 5, 7, 13, 11, None),  # odd, non-integer up factors
    (1, 31, 17, 6, 5, None),  # downscaling (no antialiasing)
    (1, 9, 12, 9, 30, None),  # one axis only
    (1, 1, 1, 5, 3, None),    # a single pixel spreads everywhere
    (1, 6, 6, 1, 1, None),    # down to one pixel
    (3, 8, 5, 20, 12, None),  # channels resized alike
    (1, 3, 4, 3, 4, None),    # same size: the input back
]


def main(out_path):
    torch.manual_seed(11)
    tensors, metadata = {}, {"torch": torch.__version__}
    for i, (c, h, w, oh, ow, scale) in enumerate(CASES):
        x = torch.randn(1, c, h, w, dtype=torch.float32) * 3
        if scale:
            y = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            how = f"scale_factor={scale}"
        else:
            y = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
            how = f"size=({oh}, {ow})"
        assert tuple(y.shape[2:]) == (oh, ow)
        tensors[f"in.{i}"] = x[0].numpy()
        tensors[f"out.{i}"] = y[0].numpy()
        metadata[f"case.{i}"] = f"{h} {w} -> {oh} {ow}, {how}"
    safetensors_io.write(out_path, [(n, np.asarray(tensors[n], dtype="<f4")) for n in sorted(tensors)],
                         metadata)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/bilinear/bilinear.safetensors")
