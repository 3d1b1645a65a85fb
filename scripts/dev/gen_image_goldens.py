#!/usr/bin/python3
"""gen_image_goldens.py: writes the small test images of tests/data/images/ and what PIL
makes of them, so test_image_decode can check refract's decoders (libpng, libjpeg-turbo,
stb_image) against the reference pipeline bit for bit.

Needs Debian's python3-pil and python3-numpy (developer tool, not part of the build):

    /usr/bin/python3 scripts/dev/gen_image_goldens.py tests/data/images

Images: PNGs written here by a small encoder (every colour type and bit depth, every row
filter, Adam7 interlacing, PLTE/tRNS), JPEGs written by PIL (libjpeg-turbo: gray,
4:4:4, 4:2:2, 4:2:0, progressive, optimised tables, CMYK with and without the Adobe
marker, YCCK), BMP/GIF/TGA/PNM written by PIL, and two extreme aspect ratios.

goldens.safetensors, per image <name> (the file name without its extension):
  rgb.<name>     uint8 [h, w, 3]: np.asarray(Image.open(f).convert("RGB"))
  stored.<name>  uint8 [h, w, c]: np.asarray(Image.open(f)) for modes L, LA and RGBA (for
                 RGB it is rgb.<name>)
  pixels.<name>  float32 [3, S, S]: the reference evaluation transform (S = 24): PIL's
                 resize of the shorter side to S with BICUBIC on the image as opened
                 (mode as stored: P and 1 are resized NEAREST by PIL, RGBA and LA
                 premultiplied, CMYK per channel), centre crop with Python's round,
                 convert("RGB"), (v / 255 - mean) / std in float32. Not written for mode I
                 (16-bit gray), which PIL resizes in 32-bit integers.
metadata: mode.<name> = the mode PIL opens the file as; file.<name> = the file name;
pillow = PIL's version.
"""
import io
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import PIL
from PIL import Image

import safetensors_io

S = 24
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

# {===== a PNG encoder that can write what PIL cannot (sub-byte gray, 16-bit colour,
# interlacing, every filter type)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, depth):
    """One row of samples (a flat list of ints) as bytes at `depth` bits per sample."""
    if depth == 16:
        return np.asarray(samples, dtype=">u2").tobytes()
    if depth == 8:
        return bytes(int(v) for v in samples)
    out, acc, nbits = bytearray(), 0, 0
    for v in samples:
        acc = (acc << depth) | int(v)
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if prev is not None and i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def encode_rows(px, depth, channels, first_filter):
    """Filtered scanlines of px [h, w, channels], filter types cycling from first_filter."""
    bpp = max(1, channels * depth // 8)
    data, prev = b"", None
    for y in range(px.shape[0]):
        row = pack_row(px[y].reshape(-1), depth)
        data += filter_row((first_filter + y) % 5, row, prev, bpp)
        prev = row
    return data


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def write_png(px, depth, color, plte=None, trns=None, interlace=False, before=(), after=()):
    """px: [h, w, channels] samples (palette indices for colour type 3); before/after:
    extra (type, data) chunks before the image data and after it."""
    h, w, channels = px.shape
    head = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0,
                                                                int(interlace)))
    if plte is not None:
        head += png_chunk(b"PLTE", bytes(plte))
    if trns is not None:
        head += png_chunk(b"tRNS", bytes(trns))
    for kind, data in before:
        head += png_chunk(kind, data)
    if interlace:
        raw = b""
        for i, (x0, y0, dx, dy) in enumerate(ADAM7):
            sub = px[y0::dy, x0::dx]
            if sub.size:
                raw += encode_rows(sub, depth, channels, i)
    else:
        raw = encode_rows(px, depth, channels, 0)
    # Two IDAT chunks: the decoder must join them.
    z = zlib.compress(raw, 9)
    half = len(z) // 2
    tail = b"".join(png_chunk(kind, data) for kind, data in after)
    return (head + png_chunk(b"IDAT", z[:half]) + png_chunk(b"IDAT", z[half:]) + tail +
            png_chunk(b"IEND", b""))

# }=====

# {===== pictures


def smooth(rng, h, w, channels, top):
    """A smooth random picture with some noise, samples in [0, top]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, channels))
    for c in range(channels):
        fx, fy, ph = rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4), rng.uniform(0, 6.3)
        v = 0.5 + 0.4 * np.sin(fx * x + ph) * np.cos(fy * y - ph) + rng.normal(0, 0.05, (h, w))
        out[..., c] = np.clip(v, 0, 1) * top
    return np.rint(out).astype(np.int64)


def with_alpha(rng, px, top):
    """Alpha with exact 0 and top (both special when un-premultiplying) and values between."""
    a = rng.choice([0, 1, top // 3, top // 2, top - 1, top], px.shape[:2])
    return np.concatenate([px, a[..., None]], axis=2)


def pngs(rng):
    out = {}
    out["png_gray1"] = (write_png(rng.randint(0, 2, (13, 21, 1)), 1, 0), "png")
    out["png_gray2"] = (write_png(rng.randint(0, 4, (11, 17, 1)), 2, 0), "png")
    out["png_gray4"] = (write_png(smooth(rng, 19, 23, 1, 15), 4, 0), "png")
    out["png_gray8"] = (write_png(smooth(rng, 29, 41, 1, 255), 8, 0), "png")
    g16 = smooth(rng, 17, 23, 1, 65535)
    g16[0, :6, 0] = [0, 1, 255, 256, 1000, 65535]   # PIL clips 16-bit gray to 255
    g16[1:, :, 0] //= rng.choice([1, 64, 256], (16, 23))
    out["png_gray16"] = (write_png(g16, 16, 0), "png")
    out["png_gray8_trns"] = (write_png(smooth(rng, 20, 30, 1, 255), 8, 0, trns=[0, 77]), "png")
    out["png_graya8"] = (write_png(with_alpha(rng, smooth(rng, 31, 22, 1, 255), 255), 8, 4), "png")
    out["png_graya16"] = (write_png(with_alpha(rng, smooth(rng, 18, 35, 1, 65535), 65535), 16, 4),
                          "png")
    out["png_rgb8"] = (write_png(smooth(rng, 37, 45, 3, 255), 8, 2), "png")
    out["png_rgb16"] = (write_png(smooth(rng, 27, 33, 3, 65535), 16, 2), "png")
    out["png_rgb8_trns"] = (write_png(smooth(rng, 25, 19, 3, 255), 8, 2, trns=[0, 1, 0, 2, 0, 3]),
                            "png")
    out["png_rgba8"] = (write_png(with_alpha(rng, smooth(rng, 43, 36, 3, 255), 255), 8, 6), "png")
    out["png_rgba16"] = (write_png(with_alpha(rng, smooth(rng, 26, 39, 3, 65535), 65535), 16, 6),
                         "png")
    for depth, n in ((1, 2), (2, 3), (4, 11), (8, 200)):
        plte = rng.randint(0, 256, 3 * n).tolist()
        idx = rng.randint(0, n, (23, 29, 1))
        out["png_pal%d" % depth] = (write_png(idx, depth, 3, plte=plte), "png")
    plte = rng.randint(0, 256, 3 * 40).tolist()
    trns = rng.randint(0, 256, 25).tolist()
    out["png_pal8_trns"] = (write_png(rng.randint(0, 40, (34, 27, 1)), 8, 3, plte=plte, trns=trns), "png")
    out["png_rgb8_adam7"] = (write_png(smooth(rng, 35, 29, 3, 255), 8, 2, interlace=True), "png")
    out["png_rgba16_adam7"] = (write_png(with_alpha(rng, smooth(rng, 13, 11, 3, 65535), 65535), 16, 6,
                                         interlace=True), "png")
    plte = rng.randint(0, 256, 3 * 16).tolist()
    out["png_pal4_adam7"] = (write_png(rng.randint(0, 16, (21, 18, 1)), 4, 3, plte=plte,
                                       interlace=True), "png")
    out["png_gray2_adam7"] = (write_png(rng.randint(0, 4, (9, 14, 1)), 2, 0, interlace=True), "png")
    # Ancillary chunks PIL reads but never applies to pixels, a private one, and a text
    # chunk after the data whose CRC is wrong (PIL does not check CRCs after the data).
    before = [(b"gAMA", struct.pack(">I", 45455)), (b"sRGB", b"\x00"), (b"pHYs", b"\0\0\x0b\x13" * 2 + b"\x01"),
              (b"tEXt", b"Comment\0ancillary chunks"), (b"zTXt", b"Title\0\0" + zlib.compress(b"x" * 5000)),
              (b"iCCP", b"junk profile\0\0" + zlib.compress(b"not a profile")), (b"prVt", b"private"),
              (b"bKGD", b"\0\x10\0\x20\0\x30"), (b"sBIT", b"\x05\x06\x05")]
    # (its own generator, so the files written before it was added stay as they were)
    d = write_png(smooth(np.random.RandomState(7), 15, 18, 3, 255), 8, 2, before=before,
                  after=[(b"tEXt", b"After\0the data")])
    i = d.rindex(b"the data") + len(b"the data")
    out["png_rgb8_chunks"] = (d[:i] + bytes([d[i] ^ 1]) + d[i + 1:], "png")
    # Extreme aspect ratios that PIL accepts.
    out["png_tall_1x20000"] = (write_png(smooth(rng, 20000, 1, 1, 255), 8, 0), "png")
    out["png_wide_6000x2"] = (write_png(smooth(rng, 2, 6000, 1, 255), 8, 0), "png")
    return out


def pil_bytes(im, fmt, **opts):
    b = io.BytesIO()
    im.save(b, fmt, **opts)
    return b.getvalue()


def adobe_segment(d):
    """(start, end) of the APP14 "Adobe" segment of a JPEG."""
    i = d.index(b"Adobe") - 4
    assert d[i:i + 2] == b"\xff\xee"
    return i, i + 2 + struct.unpack(">H", d[i + 2:i + 4])[0]


def jpegs(rng):
    out = {}
    rgb = lambda h, w: Image.fromarray(smooth(rng, h, w, 3, 255).astype(np.uint8), "RGB")
    out["jpeg_gray"] = (pil_bytes(Image.fromarray(smooth(rng, 29, 37, 1, 255)[..., 0].astype(np.uint8), "L"),
                                  "JPEG", quality=85), "jpg")
    # Odd sizes, so the chroma planes have partial blocks at the right and bottom.
    out["jpeg_444"] = (pil_bytes(rgb(37, 43), "JPEG", quality=90, subsampling=0), "jpg")
    out["jpeg_422"] = (pil_bytes(rgb(35, 41), "JPEG", quality=80, subsampling=1), "jpg")
    out["jpeg_420"] = (pil_bytes(rgb(45, 39), "JPEG", quality=75, subsampling=2), "jpg")
    out["jpeg_420_optimized"] = (pil_bytes(rgb(33, 47), "JPEG", quality=92, subsampling=2,
                                           optimize=True), "jpg")
    out["jpeg_progressive"] = (pil_bytes(rgb(41, 38), "JPEG", quality=85, subsampling=2,
                                         progressive=True), "jpg")
    out["jpeg_progressive_gray"] = (pil_bytes(rgb(27, 30).convert("L"), "JPEG", quality=70,
                                              progressive=True), "jpg")
    cmyk = Image.fromarray(smooth(rng, 31, 26, 4, 255).astype(np.uint8), "CMYK")
    d = pil_bytes(cmyk, "JPEG", quality=90)
    out["jpeg_cmyk_adobe"] = (d, "jpg")
    a, b = adobe_segment(d)
    out["jpeg_cmyk_plain"] = (d[:a] + d[b:], "jpg")
    # The same data declared YCCK (Adobe transform 2): libjpeg converts it to CMYK.
    t = d.index(b"Adobe") + 11
    out["jpeg_ycck"] = (d[:t] + b"\x02" + d[t + 1:], "jpg")
    # Damaged entropy-coded data: libjpeg warns, fills in, and PIL ignores the warnings.
    d = out["jpeg_420"][0]
    scan = d.index(b"\xff\xda")
    bad = bytearray(d)
    for at in (scan + (len(d) - scan) * 2 // 5, scan + (len(d) - scan) * 3 // 5):
        bad[at:at + 6] = bytes(rng.randint(0, 255, 6).tolist())   # never 0xff: no marker
    out["jpeg_corrupt_data"] = (bytes(bad), "jpg")
    # Bytes after the end-of-image marker are never read.
    out["jpeg_trailing_bytes"] = (out["jpeg_444"][0] + b"trailing bytes\xff\xd8", "jpg")
    out["jpeg_tall_3x2000"] = (pil_bytes(rgb(2000, 3), "JPEG", quality=80, subsampling=2), "jpg")
    return out


def others(rng):
    out = {}
    rgb = Image.fromarray(smooth(rng, 21, 27, 3, 255).astype(np.uint8), "RGB")
    out["bmp_rgb"] = (pil_bytes(rgb, "BMP"), "bmp")
    pal = Image.fromarray(rng.randint(0, 30, (17, 23)).astype(np.uint8), "P")
    pal.putpalette(rng.randint(0, 256, 3 * 30).astype(np.uint8).tobytes())
    out["bmp_pal8"] = (pil_bytes(pal, "BMP"), "bmp")
    out["gif_pal"] = (pil_bytes(pal, "GIF"), "gif")
    out["tga_rgb"] = (pil_bytes(rgb, "TGA"), "tga")
    out["pnm_rgb"] = (pil_bytes(rgb, "PPM"), "ppm")
    out["pnm_gray"] = (pil_bytes(rgb.convert("L"), "PPM"), "pgm")
    return out

# }=====

# {===== the reference


def reference_pixels(im):
    """open_clip's evaluation transform (torchvision over PIL) on the image as opened."""
    w, h = im.size
    if w <= h:
        size = (S, int(S * h / w))
    else:
        size = (int(S * w / h), S)
    if size != im.size:
        im = im.resize(size, Image.BICUBIC)
    w, h = im.size
    left, top = int(round((w - S) / 2.0)), int(round((h - S) / 2.0))
    im = im.crop((left, top, left + S, top + S)).convert("RGB")
    x = np.asarray(im, dtype=np.uint8).astype(np.float32) / np.float32(255)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


# }=====


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_image_goldens.py OUTDIR")
    outdir = sys.argv[1]
    # PIL warns when a palette image with tRNS alpha is converted to RGB: dropping it is
    # what the reference does.
    warnings.filterwarnings("ignore", "Palette images with Transparency")
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.RandomState(20240611)
    files = {}
    files.update(pngs(rng))
    files.update(jpegs(rng))
    files.update(others(rng))
    tensors, meta = {}, {"pillow": PIL.__version__, "size": str(S)}
    for name, (data, ext) in sorted(files.items()):
        fname = "%s.%s" % (name, ext)
        with open(os.path.join(outdir, fname), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        im.load()
        meta["mode." + name] = im.mode
        meta["file." + name] = fname
        tensors["rgb." + name] = np.asarray(im.convert("RGB"), dtype=np.uint8)
        if im.mode in ("L", "LA", "RGBA"):
            a = np.asarray(im, dtype=np.uint8)
            tensors["stored." + name] = a.reshape(a.shape[0], a.shape[1], -1)
        if im.mode != "I":
            tensors["pixels." + name] = reference_pixels(im)
        print("%-24s %-5s %5d x %-5d %6d bytes" % (fname, im.mode, im.size[0], im.size[1], len(data)))
    safetensors_io.write(os.path.join(outdir, "goldens.safetensors"), [(n, tensors[n]) for n in sorted(tensors)],
                         meta)


if __name__ == "__main__":
    main()
