#!/usr/bin/python3
"""gen_tinyclip_inputs.py: writes tests/data/tinyclip/inputs_reference.safetensors, the
inputs of the bundled tinyclip-shapes model made without refract, so test_tinyclip checks
refract's preprocessing and tokenizer against other code rather than against its own
earlier output:

  pixels [12,3,64,64] f32   examples/<image> in captions.json's order, as open_clip's eval
                            transform makes them: PIL opens and converts to RGB; the
                            images are already the model's size, so Resize and CenterCrop
                            are the identity (checked here); ToTensor's float32 v / 255,
                            then Normalize's float32 (x - mean) / std (numpy, float32).
  text_tokens [23,77] i64   tests/data/tinyclip/prompts.json through the reference steps of
                            tests/data/tokenizer/README.md (gen_tokenizer_fuzz.Reference:
                            Python's html.unescape and str.lower, the regex module), then
                            [start] + ids + [end], cut to 77 with the end kept, zero padded.

Needs Debian's python3-pil, python3-numpy and python3-regex (developer tool, not part of
the build):

    M=scripts/data/models/tinyclip-shapes
    /usr/bin/python3 scripts/dev/gen_tinyclip_inputs.py $M scripts/data/bpe_simple_vocab_16e6.txt.gz \\
        tests/data/tinyclip/prompts.json tests/data/tinyclip/inputs_reference.safetensors
"""
import json
import os
import sys

import numpy as np
import PIL
import regex
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_tokenizer_fuzz import Reference  # noqa: E402
import safetensors_io  # noqa: E402

CONTEXT = 77


def pixels(model_dir):
    pre = json.load(open(f"{model_dir}/open_clip_config.json"))["preprocess_cfg"]
    size = pre["size"]
    mean = np.array(pre["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.array(pre["std"], dtype=np.float32).reshape(3, 1, 1)
    captions = json.load(open(f"{model_dir}/examples/captions.json"))
    out = []
    for e in captions:
        im = Image.open(f"{model_dir}/examples/{e['image']}").convert("RGB")
        if im.size != (size, size):
            sys.exit(f"{e['image']} is {im.size}, not {size}x{size}: this tool does not resize")
        x = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        out.append((x - mean) / std)
    return np.stack(out).astype(np.float32)


def tokens(vocab_gz, prompts_path):
    ref = Reference(vocab_gz)
    rows = []
    for text in json.load(open(prompts_path)):
        ids = ref.encode(text)
        if len(ids) > CONTEXT:
            ids = ids[:CONTEXT - 1] + [ids[-1]]
        rows.append(ids + [0] * (CONTEXT - len(ids)))
    return np.array(rows, dtype=np.int64)


def main():
    model_dir, vocab_gz, prompts_path, out_path = sys.argv[1:5]
    safetensors_io.write(out_path, {"pixels": pixels(model_dir), "text_tokens": tokens(vocab_gz, prompts_path)},
                      {"pillow": PIL.__version__, "numpy": np.__version__, "regex": regex.__version__})


if __name__ == "__main__":
    main()
