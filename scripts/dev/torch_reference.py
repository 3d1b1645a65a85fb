#!/usr/bin/env python3
"""Developer tool: embeddings of an open_clip-layout CLIP checkpoint computed with PyTorch
from the architecture's definition, to check refract against an independent implementation.

    refract encode --model DIR --images ... --texts ... --out ours.safetensors
    /usr/bin/python3 scripts/dev/torch_reference.py DIR ours.safetensors OUT.safetensors

Reads `pixels` [B,3,S,S] and `text_tokens` [T,77] from the second file (so both sides
see the same inputs), computes image and text embeddings in float32 and float64, and
writes pixels, text_tokens, image_embeds, text_embeds (float32 run) and *_f64 (float64
run, stored as float32) to OUT. Needs Debian's python3-torch and python3-numpy only;
never used by the product or by the test suite's pass/fail.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

import safetensors_io

def layer_norm(x, w, b):
    # As open_clip (torch LayerNorm, eps 1e-5).
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def attention(x, p, heads, causal):
    n, width = x.shape[-2], x.shape[-1]
    qkv = x @ p["attn.in_proj_weight"].T + p["attn.in_proj_bias"]
    q, k, v = qkv.split(width, dim=-1)
    dh = width // heads
    def split(t):
        return t.reshape(*t.shape[:-1], heads, dh).transpose(-3, -2)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / (dh ** 0.5)
    if causal:
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        scores = scores.masked_fill(mask, float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(-3, -2).reshape(*x.shape[:-1], width)
    return out @ p["attn.out_proj.weight"].T + p["attn.out_proj.bias"]


def block(x, p, heads, act, causal):
    x = x + attention(layer_norm(x, p["ln_1.weight"], p["ln_1.bias"]), p, heads, causal)
    h = layer_norm(x, p["ln_2.weight"], p["ln_2.bias"]) @ p["mlp.c_fc.weight"].T + p["mlp.c_fc.bias"]
    h = h * torch.sigmoid(1.702 * h) if act == "quick_gelu" else F.gelu(h)
    return x + h @ p["mlp.c_proj.weight"].T + p["mlp.c_proj.bias"]


def blocks(sd, prefix, layers):
    out = []
    for l in range(layers):
        key = f"{prefix}transformer.resblocks.{l}."
        out.append({k[len(key):]: v for k, v in sd.items() if k.startswith(key)})
    return out


def encode_images(sd, cfg, pixels, act):
    v = cfg["vision_cfg"]
    width, patch = v["width"], v["patch_size"]
    heads = width // v.get("head_width", 64)
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, width)
    x = torch.cat([cls, x], 1) + sd["visual.positional_embedding"]
    x = layer_norm(x, sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
    for p in blocks(sd, "visual.", v["layers"]):
        x = block(x, p, heads, act, False)
    x = layer_norm(x[:, 0], sd["visual.ln_post.weight"], sd["visual.ln_post.bias"])
    return x @ sd["visual.proj"]


def encode_texts(sd, cfg, tokens, act):
    t = cfg["text_cfg"]
    x = sd["token_embedding.weight"][tokens] + sd["positional_embedding"]
    for p in blocks(sd, "", t["layers"]):
        x = block(x, p, t["heads"], act, True)
    x = layer_norm(x, sd["ln_final.weight"], sd["ln_final.bias"])
    return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ sd["text_projection"]


def main():
    model_dir, inputs_path, out_path = sys.argv[1:4]
    cfg = json.load(open(f"{model_dir}/open_clip_config.json"))["model_cfg"]
    act = "quick_gelu" if cfg.get("quick_gelu") else "gelu"
    weights = safetensors_io.read(f"{model_dir}/open_clip_model.safetensors")
    inputs = safetensors_io.read(inputs_path)
    out = {"pixels": inputs["pixels"], "text_tokens": inputs["text_tokens"]}
    tokens = torch.from_numpy(inputs["text_tokens"].astype(np.int64))
    for dtype, suffix in ((torch.float32, ""), (torch.float64, "_f64")):
        sd = {k: torch.from_numpy(v.astype(np.float64)).to(dtype) for k, v in weights.items()}
        pixels = torch.from_numpy(inputs["pixels"]).to(dtype)
        with torch.no_grad():
            out["image_embeds" + suffix] = encode_images(sd, cfg, pixels, act).float().numpy()
            out["text_embeds" + suffix] = encode_texts(sd, cfg, tokens, act).float().numpy()
    safetensors_io.write(out_path, out)
    for k in ("image_embeds", "text_embeds"):
        print(f"{k}: float32 vs float64 max |diff| {np.abs(out[k] - out[k + '_f64']).max():.3e}")


if __name__ == "__main__":
    main()
