#!/usr/bin/python3
"""gen_resize_golden.py: writes tests/data/resize/resize.safetensors, PIL's own output for
Image.resize on random 8-bit images, so test_image can check rf_image_resize bit for bit
beyond the few sizes of the tiny-gelu goldens: down- and up-scaling, one axis only, large
factors, gray+alpha and RGBA (premultiplied path), palette and 1-bit images (PIL forces
NEAREST), and explicit NEAREST.

Needs Debian's python3-pil and python3-numpy (developer tool, not part of the build):

    /usr/bin/python3 scripts/dev/gen_resize_golden.py tests/data/resize/resize.safetensors

Tensors: in.<i> [h, w, c] and out.<i> [h', w', c] (uint8); metadata case.<i> =
"<mode> <filter>" where mode is PIL's (L, LA, RGB, RGBA, P, 1) and filter bicubic or
nearest. P and 1 inputs are stored expanded (convert("RGB") / convert("L")) and outputs
converted the same way, which is what refract's decoder gives for such files.

Decoding: png.<j> holds the bytes of a PNG that PIL wrote (every mode, 1/4/8-bit palettes
and gray, transparency chunks) and pixels.<j> what PIL decodes from them, expanded as
above; metadata decode.<j> is the mode PIL opens the file as.
"""
import io
import sys

import numpy as np
import PIL
from PIL import Image

import safetensors_io

# (mode, input w x h, output w x h, filter)
CASES = [
    ("L", (37, 23), (16, 11), "bicubic"),
    ("L", (13, 9), (40, 31), "bicubic"),
    ("L", (48, 30), (24, 10), "bicubic"),
    ("RGB", (50, 20), (21, 20), "bicubic"),
    ("RGB", (20, 50), (20, 7), "bicubic"),
    ("RGB", (64, 48), (17, 13), "bicubic"),
    ("RGB", (300, 6), (7, 6), "bicubic"),
    ("RGB", (9, 7), (61, 50), "bicubic"),
    ("RGB", (31, 29), (30, 30), "bicubic"),
    ("RGBA", (40, 30), (23, 17), "bicubic"),
    ("RGBA", (11, 7), (30, 19), "bicubic"),
    ("LA", (33, 21), (12, 40), "bicubic"),
    ("P", (19, 13), (7, 30), "bicubic"),
    ("1", (25, 17), (11, 8), "bicubic"),
    ("L", (37, 23), (16, 11), "nearest"),
    ("RGB", (10, 50), (33, 7), "nearest"),
    ("RGBA", (7, 9), (20, 5), "nearest"),
]


def random_image(rng, mode, size):
    w, h = size
    if mode == "P":
        im = Image.fromarray(rng.randint(0, 16, (h, w), dtype=np.uint8), "P")
        im.putpalette(rng.randint(0, 256, 16 * 3, dtype=np.uint8).tobytes())
        return im
    if mode == "1":
        return Image.fromarray((rng.randint(0, 2, (h, w)) * 255).astype(np.uint8), "L").convert("1")
    bands = len(mode)
    px = rng.randint(0, 256, (h, w, bands), dtype=np.uint8)
    if "A" in mode:
        # Alpha with exact 0 and 255 too: both are special cases of un-premultiplying.
        px[..., -1] = rng.choice([0, 1, 77, 128, 200, 254, 255], (h, w))
    return Image.fromarray(px if bands > 1 else px[..., 0], mode)


def as_array(im):
    if im.mode == "P":
        im = im.convert("RGB")
    elif im.mode == "1":
        im = im.convert("L")
    a = np.asarray(im, dtype=np.uint8)
    return a.reshape(a.shape[0], a.shape[1], -1)


def decode_cases(rng):
    """(label, image, save options): PNGs in the modes PIL writes and reads back."""
    p16 = random_image(rng, "P", (13, 7))
    p256 = Image.fromarray(rng.randint(0, 256, (9, 11), dtype=np.uint8), "P")
    p256.putpalette(rng.randint(0, 256, 768, dtype=np.uint8).tobytes())
    return [
        ("L", random_image(rng, "L", (17, 5)), {}),
        ("L+tRNS", random_image(rng, "L", (6, 9)), {"transparency": 17}),
        ("LA", random_image(rng, "LA", (8, 8)), {}),
        ("RGB", random_image(rng, "RGB", (12, 10)), {}),
        ("RGB+tRNS", random_image(rng, "RGB", (5, 4)), {"transparency": (1, 2, 3)}),
        ("RGBA", random_image(rng, "RGBA", (9, 6)), {}),
        ("P/16", p16, {"bits": 4}),
        ("P/256", p256, {}),
        ("P+tRNS", p16, {"transparency": bytes(range(0, 256, 16))}),
        ("1", random_image(rng, "1", (21, 3)), {}),
        ("L/4", random_image(rng, "L", (7, 7)).point(lambda v: v // 17 * 17), {"bits": 4}),
    ]


def png_tensors(rng):
    tensors, meta = [], {}
    for j, (label, im, opts) in enumerate(decode_cases(rng)):
        buf = io.BytesIO()
        im.save(buf, "PNG", **opts)
        data = buf.getvalue()
        back = Image.open(io.BytesIO(data))
        back.load()
        tensors += [("png.%d" % j, np.frombuffer(data, dtype=np.uint8)),
                    ("pixels.%d" % j, as_array(back))]
        meta["decode.%d" % j] = "%s %s" % (back.mode, label)
    return tensors, meta


def main():
    rng = np.random.RandomState(20240611)
    tensors, meta = [], {"pillow": PIL.__version__}
    for i, (mode, size, out, flt) in enumerate(CASES):
        im = random_image(rng, mode, size)
        res = im.resize(out, Image.BICUBIC if flt == "bicubic" else Image.NEAREST)
        tensors += [("in.%d" % i, as_array(im)), ("out.%d" % i, as_array(res))]
        meta["case.%d" % i] = "%s %s" % (mode, flt)
    more, more_meta = png_tensors(rng)
    meta.update(more_meta)
    safetensors_io.write(sys.argv[1], tensors + more, meta)


if __name__ == "__main__":
    main()
