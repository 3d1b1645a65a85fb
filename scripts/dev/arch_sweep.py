#!/usr/bin/env python3
"""Developer tool: checks refract on many unusual but legal CLIP architectures against a
float64 PyTorch implementation of the definitions in tests/data/tiny-gelu/README.md.

    /usr/bin/python3 scripts/dev/arch_sweep.py BUILD_DIR SCRATCH_DIR [CASE_NAME_SUBSTRING]

For each case it writes a random checkpoint (open_clip or Hugging Face layout, f32, f16 or
bf16 weights), random pixels and tokens, runs scripts/dev/arch_sweep_run.lua with refract,
and prints the largest |refract - reference| of every output beside its tolerance (the
golden's, scaled by the model's size where the README's are for the tiny model). Never
used by the product or by the test suite's pass/fail.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

import safetensors_io

torch.set_default_dtype(torch.float64)


def bf16_bits(a):
    """Round-to-nearest-even bfloat16 bits of float32 array a, and their float64 values."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return bits, (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


# {===== the random model (open_clip names, float64 values as stored)

def random_weights(a, rng):
    w, p, g, D = a["width"], a["patch"], a["image"] // a["patch"], a["embed"]
    sd = {}

    def put(name, shape, std, const=None):
        sd[name] = np.full(shape, const) if const is not None else rng.standard_normal(shape) * std

    def tower(prefix, width, layers, mlp):
        for l in range(layers):
            q = f"{prefix}transformer.resblocks.{l}."
            put(q + "ln_1.weight", (width,), 0.1)
            sd[q + "ln_1.weight"] += 1
            put(q + "ln_1.bias", (width,), 0.1)
            put(q + "attn.in_proj_weight", (3 * width, width), width ** -0.5)
            put(q + "attn.in_proj_bias", (3 * width,), 0.1)
            put(q + "attn.out_proj.weight", (width, width), width ** -0.5)
            put(q + "attn.out_proj.bias", (width,), 0.1)
            put(q + "ln_2.weight", (width,), 0.1)
            sd[q + "ln_2.weight"] += 1
            put(q + "ln_2.bias", (width,), 0.1)
            put(q + "mlp.c_fc.weight", (mlp, width), width ** -0.5)
            put(q + "mlp.c_fc.bias", (mlp,), 0.1)
            put(q + "mlp.c_proj.weight", (width, mlp), mlp ** -0.5)
            put(q + "mlp.c_proj.bias", (width,), 0.1)

    put("visual.conv1.weight", (w, 3, p, p), (3 * p * p) ** -0.5)
    put("visual.class_embedding", (w,), 0.5)
    put("visual.positional_embedding", (g * g + 1, w), 0.5)
    put("visual.ln_pre.weight", (w,), 0.1)
    sd["visual.ln_pre.weight"] += 1
    put("visual.ln_pre.bias", (w,), 0.1)
    tower("visual.", w, a["layers"], a["mlp"])
    put("visual.ln_post.weight", (w,), 0.1)
    sd["visual.ln_post.weight"] += 1
    put("visual.ln_post.bias", (w,), 0.1)
    put("visual.proj", (w, D), w ** -0.5)
    if a.get("text"):
        t = a["text"]
        put("token_embedding.weight", (49408, t["width"]), 0.5)
        put("positional_embedding", (t["context"], t["width"]), 0.1)
        tower("", t["width"], t["layers"], t["mlp"])
        put("ln_final.weight", (t["width"],), 0.1)
        sd["ln_final.weight"] += 1
        put("ln_final.bias", (t["width"],), 0.1)
        put("text_projection", (t["width"], D), t["width"] ** -0.5)
        put("logit_scale", (), 0, 4.6052)
    return sd


def stored(sd, dtype):
    """The state dict rounded to `dtype`: {name: (safetensors dtype, array)} and the values."""
    out, values = {}, {}
    for k, v in sd.items():
        if dtype == "bf16":
            bits, val = bf16_bits(v.astype(np.float32))
            out[k], values[k] = ("BF16", bits), val
        else:
            npd = np.float16 if dtype == "f16" else np.float32
            a = v.astype(npd)
            out[k], values[k] = ("F16" if dtype == "f16" else "F32", a), a.astype(np.float64)
    return out, values


def hf_state(oc):
    """open_clip names -> Hugging Face CLIPModel names (q, k, v split; projections transposed)."""
    hf = {}
    for k, (dt, a) in oc.items():
        def put(name, arr):
            hf[name] = (dt, np.ascontiguousarray(arr))
        vision = k.startswith("visual.")
        pre = "vision_model." if vision else "text_model."
        rest = k[len("visual."):] if vision else k
        if k == "visual.proj":
            put("visual_projection.weight", a.T)
        elif k == "text_projection":
            put("text_projection.weight", a.T)
        elif k == "logit_scale":
            put("logit_scale", a)
        elif rest.startswith("transformer.resblocks."):
            parts = rest.split(".")
            l, tail = parts[2], ".".join(parts[3:])
            q = f"{pre}encoder.layers.{l}."
            if tail in ("attn.in_proj_weight", "attn.in_proj_bias"):
                w = a.shape[0] // 3
                kind = "weight" if tail.endswith("weight") else "bias"
                for i, n in enumerate("qkv"):
                    put(f"{q}self_attn.{n}_proj.{kind}", a[i * w:(i + 1) * w])
            else:
                m = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
                     "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
                base, kind = tail.rsplit(".", 1)
                put(f"{q}{m[base]}.{kind}", a)
        else:
            m = {"conv1.weight": "embeddings.patch_embedding.weight", "class_embedding": "embeddings.class_embedding",
                 "positional_embedding": "embeddings.position_embedding.weight",
                 "token_embedding.weight": "embeddings.token_embedding.weight",
                 "ln_pre.weight": "pre_layrnorm.weight", "ln_pre.bias": "pre_layrnorm.bias",
                 "ln_post.weight": "post_layernorm.weight", "ln_post.bias": "post_layernorm.bias",
                 "ln_final.weight": "final_layer_norm.weight", "ln_final.bias": "final_layer_norm.bias"}
            put(pre + m[rest], a)
    return hf


def write_model(a, dir_, dtype, layout, rng):
    os.makedirs(dir_, exist_ok=True)
    oc, values = stored(random_weights(a, rng), dtype)
    act = a["act"]
    if layout == "open_clip":
        vcfg = {"image_size": a["image"], "patch_size": a["patch"], "width": a["width"], "layers": a["layers"],
                "head_width": a["width"] // a["heads"], "mlp_ratio": a["mlp"] / a["width"]}
        cfg = {"embed_dim": a["embed"], "vision_cfg": vcfg}
        if a.get("eps"):
            vcfg["norm_kwargs"] = {"eps": a["eps"]}
        if act == "quick_gelu":
            cfg["quick_gelu"] = True
        if a.get("text"):
            t = a["text"]
            cfg["text_cfg"] = {"context_length": t["context"], "vocab_size": 49408, "width": t["width"],
                               "heads": t["heads"], "layers": t["layers"], "mlp_ratio": t["mlp"] / t["width"]}
            if a.get("eps"):
                cfg["text_cfg"]["norm_kwargs"] = {"eps": a["eps"]}
        with open(f"{dir_}/open_clip_config.json", "w") as f:
            json.dump({"model_cfg": cfg, "preprocess_cfg": {"size": a["image"]}}, f)
        safetensors_io.write(f"{dir_}/open_clip_model.safetensors", oc)
    else:
        v = {"image_size": a["image"], "patch_size": a["patch"], "hidden_size": a["width"],
             "num_hidden_layers": a["layers"], "num_attention_heads": a["heads"], "intermediate_size": a["mlp"],
             "hidden_act": act}
        cfg = {"model_type": "clip", "projection_dim": a["embed"], "vision_config": v}
        if a.get("text"):
            t = a["text"]
            cfg["text_config"] = {"hidden_size": t["width"], "num_hidden_layers": t["layers"],
                                  "num_attention_heads": t["heads"], "intermediate_size": t["mlp"],
                                  "max_position_embeddings": t["context"], "vocab_size": 49408, "hidden_act": act}
        for tower in ("vision_config", "text_config"):
            if a.get("eps") and tower in cfg:
                cfg[tower]["layer_norm_eps"] = a["eps"]
            if a.get("config_dict") and tower in cfg:
                # Old transformers layout: the _dict's values win over a stale plain object.
                cfg[tower + "_dict"] = cfg[tower]
                cfg[tower] = {"hidden_act": "gelu_new", "hidden_size": 7}
        with open(f"{dir_}/config.json", "w") as f:
            json.dump(cfg, f)
        safetensors_io.write(f"{dir_}/model.safetensors", hf_state(oc))
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in values.items()}

# }=====

# {===== the float64 reference


EPS = [1e-5]  # the LayerNorm epsilon of the case being checked


def ln(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = (x * x).mean(-1, keepdim=True) - mu * mu
    return (x - mu) / torch.sqrt(var + EPS[0]) * w + b


def act_fn(h, act):
    return h * torch.sigmoid(1.702 * h) if act == "quick_gelu" else F.gelu(h)


def layer(sd, prefix, l):
    q = f"{prefix}transformer.resblocks.{l}."
    return {k[len(q):]: v for k, v in sd.items() if k.startswith(q)}


def block(x, p, heads, act, causal, rec=None, zero_head=None):
    n, W = x.shape[-2], x.shape[-1]
    dh = W // heads
    u = ln(x, p["ln_1.weight"], p["ln_1.bias"])
    qkv = u @ p["attn.in_proj_weight"].T + p["attn.in_proj_bias"]
    q, k, v = qkv.split(W, -1)
    sp = lambda t: t.reshape(*t.shape[:-1], heads, dh).transpose(-3, -2)  # [B, H, N, dh]
    q, k, v = sp(q), sp(k), sp(v)
    s = q @ k.transpose(-1, -2) / dh ** 0.5
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
    alpha = s.softmax(-1)
    hv = alpha @ v  # [B, H, N, dh]
    if zero_head is not None:
        hv[:, zero_head] = 0
    heads_out = hv.transpose(-3, -2).reshape(*x.shape[:-1], W)
    attn = heads_out @ p["attn.out_proj.weight"].T + p["attn.out_proj.bias"]
    y = x + attn
    h = act_fn(ln(y, p["ln_2.weight"], p["ln_2.bias"]) @ p["mlp.c_fc.weight"].T + p["mlp.c_fc.bias"], act)
    mlp = h @ p["mlp.c_proj.weight"].T + p["mlp.c_proj.bias"]
    if rec is not None:
        # c[b, m, h, :] = alpha_h[0, m] v_h[m] W_O,h^T
        WO = p["attn.out_proj.weight"].reshape(W, heads, dh)  # [W, H, dh]
        contrib = torch.einsum("bhm,bhmd,whd->bmhw", alpha[:, :, 0, :], v, WO)
        rec["c"].append(contrib)
        rec["bias"].append(p["attn.out_proj.bias"])
        rec["mlp"].append(mlp[:, 0])
        rec["probs"], rec["heads"], rec["mlp_out"] = alpha, heads_out, mlp
    return y + mlp


def reference(sd, a, pixels, tokens):
    act, heads, L, D = a["act"], a["heads"], a["layers"], a["embed"]
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=a["patch"]).flatten(2).transpose(1, 2)
    B, W = x.shape[0], a["width"]
    x = torch.cat([sd["visual.class_embedding"].expand(B, 1, W), x], 1) + sd["visual.positional_embedding"]
    z0 = ln(x, sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
    rec = {"c": [], "bias": [], "mlp": []}
    x = z0
    for l in range(L):
        x = block(x, layer(sd, "visual.", l), heads, act, False, rec)
    r = x[:, 0]
    gamma, beta, proj = sd["visual.ln_post.weight"], sd["visual.ln_post.bias"], sd["visual.proj"]
    e = ln(r, gamma, beta) @ proj
    mu = r.mean(-1, keepdim=True)
    sigma = torch.sqrt((r * r).mean(-1, keepdim=True) - mu * mu + EPS[0])
    N = x.shape[1]
    K = 2 * L + 1
    norm = e.norm(dim=-1, keepdim=True)

    def phi(t, w, exact):
        # t [..., B?] handled by broadcasting: mu, sigma, norm are [B, 1] aligned to the first axis.
        shape = (B,) + (1,) * (t.dim() - 1)
        m = t.mean(-1, keepdim=True) if exact else w * mu.reshape(shape)
        return ((gamma * (t - m) / sigma.reshape(shape) + w * beta) @ proj) / norm.reshape(shape)

    out = {}
    for exact in (False, True):
        spatial = torch.stack([phi(c + b / (N * heads), 1 / (K * N * heads), exact)
                               for c, b in zip(rec["c"], rec["bias"])], 1)  # [B, L, N, H, D]
        mlps = torch.stack([phi(z0[:, 0], 1 / K, exact)] + [phi(m, 1 / K, exact) for m in rec["mlp"]], 1)
        out["exact" if exact else "ref"] = (spatial, mlps)
    zl = z0
    for l in range(L):
        zl = block(zl, layer(sd, "visual.", l), heads, act, False, None, zero_head=heads - 1 if l == L - 1 else None)
    edited = ln(zl[:, 0], gamma, beta) @ proj
    res = {"image_embeds": e, "spatial": out["ref"][0], "mlps": out["ref"][1], "exact.spatial": out["exact"][0],
           "exact.mlps": out["exact"][1], "ln_post_mean": mu, "ln_post_std": sigma,
           "tap.probs": rec["probs"], "tap.heads": rec["heads"], "tap.mlp_out": rec["mlp_out"],
           "edit.zero_last_head": edited}
    if tokens is not None:
        t = a["text"]
        y = sd["token_embedding.weight"][tokens] + sd["positional_embedding"]
        for l in range(t["layers"]):
            y = block(y, layer(sd, "", l), t["heads"], act, True)
        y = ln(y, sd["ln_final.weight"], sd["ln_final.bias"])
        res["text_embeds"] = y[torch.arange(y.shape[0]), tokens.argmax(-1)] @ sd["text_projection"]
    return res

# }=====


def check(name, a, dtype, layout, build, scratch, seed):
    EPS[0] = a.get("eps") or 1e-5
    rng = np.random.default_rng(seed)
    dir_ = f"{scratch}/{name}"
    sd = write_model(a, dir_, dtype, layout, rng)
    S, B = a["image"], 2
    pixels = rng.standard_normal((B, 3, S, S)).astype(np.float32)
    inputs = {"pixels": ("F32", pixels)}
    tokens = None
    if a.get("text"):
        ctx = a["text"]["context"]
        tok = rng.integers(1, 49406, size=(3, ctx))
        for i, end in enumerate((ctx - 1, 1, ctx // 2)):
            tok[i, 0], tok[i, end], tok[i, end + 1:] = 49406, 49407, 0
        inputs["text_tokens"] = ("I64", tok.astype(np.int64))
        tokens = torch.from_numpy(tok)
    safetensors_io.write(f"{dir_}/inputs.safetensors", inputs)
    run = subprocess.run([f"{build}/refract", "scripts/dev/arch_sweep_run.lua", dir_, f"{dir_}/inputs.safetensors",
                          f"{dir_}/out.safetensors"], capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        print(f"FAIL {name}: refract exited {run.returncode}: {run.stderr.strip()[-600:]}")
        return False
    ours = {k: torch.from_numpy(v.astype(np.float64)) for k, v in safetensors_io.read(f"{dir_}/out.safetensors").items()}
    with torch.no_grad():
        ref = reference(sd, a, torch.from_numpy(pixels.astype(np.float64)), tokens)
    sp, mlps, P = ref["spatial"], ref["mlps"], ours["project"]
    pairs = {
        "image_embeds": (ours["image_embeds"], ref["image_embeds"], 2e-5),
        "spatial": (ours["spatial.attn_spatial"], sp, 1e-6),
        "heads": (ours["heads.attn_heads"], sp.sum(2), 1e-6),
        "spatial.attn_heads": (ours["spatial.attn_heads"], sp.sum(2), 1e-6),
        "mlps": (ours["heads.mlps"], mlps, 5e-6),
        "cls_attn": (ours["heads.cls_attn"], sp[:, :, 0].sum(2), 1e-6),
        "ln_post_mean": (ours["heads.ln_post_mean"], ref["ln_post_mean"], 2e-6),
        "ln_post_std": (ours["heads.ln_post_std"], ref["ln_post_std"], 2e-6),
        "exact.spatial": (ours["exact.attn_spatial"], ref["exact.spatial"], 1e-6),
        "exact.mlps": (ours["exact.mlps"], ref["exact.mlps"], 5e-6),
        "decomposer": (ours["decomposer.attn_spatial"], sp, 1e-6),
        "identity": (sp.sum((1, 2, 3)) + mlps.sum(1), ref["image_embeds"] / ref["image_embeds"].norm(dim=-1, keepdim=True), 1e-5),
        "ours_identity": (ours["spatial.attn_spatial"].sum((1, 2, 3)) + ours["spatial.mlps"].sum(1),
                          ours["image_embeds"] / ours["image_embeds"].norm(dim=-1, keepdim=True), 1e-5),
        "tap.probs": (ours["tap.probs"], ref["tap.probs"], 1e-5),
        "tap.heads": (ours["tap.heads"], ref["tap.heads"], 2e-5),
        "tap.mlp_out": (ours["tap.mlp_out"], ref["tap.mlp_out"], 2e-5),
        "edit.zero_last_head": (ours["edit.zero_last_head"], ref["edit.zero_last_head"], 2e-5),
    }
    axes = {"layers": 1, "tokens": 2, "heads": 3}
    for red in ("layers", "tokens", "heads", "layers+heads", "layers+tokens", "tokens+heads", "layers+tokens+heads"):
        dims = tuple(axes[x] for x in red.split("+"))
        want = sp.sum(dims)
        wm = mlps.sum(1) if "layers" in red else mlps
        pairs["reduce." + red] = (ours[f"reduce.{red}.attn_spatial"], want, 1e-6 * len(dims) * 4)
        pairs["reduce.mlps." + red] = (ours[f"reduce.{red}.mlps"], wm, 5e-6)
        pairs["project." + red] = (ours[f"project.{red}.attn_spatial"], want @ P, 4e-6 * len(dims) * 4)
        pairs["project.mlps." + red] = (ours[f"project.{red}.mlps"], wm @ P, 2e-5)
    if tokens is not None:
        pairs["text_embeds"] = (ours["text_embeds"], ref["text_embeds"], 5e-5)
    # Tolerances scale with the number of terms summed in float32 (the golden's are for W = 64, L = 3).
    grow = max(1.0, (a["width"] / 64) ** 0.5 * (a["layers"] / 3) ** 0.5)
    ok, worst = True, []
    for k, (got, want, tol) in pairs.items():
        if tuple(got.shape) != tuple(want.shape):
            print(f"FAIL {name}: {k} shape {tuple(got.shape)} != {tuple(want.shape)}")
            ok = False
            continue
        err = (got - want).abs().max().item() if got.numel() else 0.0
        scale = max(1.0, want.abs().max().item()) if k.startswith(("tap", "edit", "image", "text", "project")) else 1.0
        if not err <= tol * grow * scale:
            print(f"FAIL {name}: {k} max |diff| {err:.3e} > {tol * grow * scale:.1e}")
            ok = False
        worst.append((err / (tol * grow * scale), k, err))
    worst.sort(reverse=True)
    print(f"{'ok  ' if ok else 'BAD '} {name}: worst {worst[0][1]} {worst[0][2]:.2e} ({worst[0][0]:.2f} of tol); "
          f"spatial {pairs['spatial'][0].sub(pairs['spatial'][1]).abs().max().item():.1e}, "
          f"identity {pairs['ours_identity'][0].sub(pairs['ours_identity'][1]).abs().max().item():.1e}")
    return ok


def arch(width, heads, layers, patch, image, embed, mlp, act="gelu", text=None, **extra):
    return dict({"width": width, "heads": heads, "layers": layers, "patch": patch, "image": image, "embed": embed,
                 "mlp": mlp, "act": act, "text": text}, **extra)


def text(width, heads, layers, mlp, context=77):
    return {"width": width, "heads": heads, "layers": layers, "mlp": mlp, "context": context}


CASES = [
    # name, arch, dtype, layout
    ("w24h3", arch(24, 3, 2, 8, 32, 16, 96), "f32", "open_clip"),
    ("w24h1", arch(24, 1, 2, 8, 32, 24, 96), "f32", "open_clip"),
    ("hw12", arch(36, 3, 2, 7, 28, 20, 90), "f32", "open_clip"),
    ("hw20_hf", arch(60, 3, 2, 7, 49, 30, 150, "quick_gelu"), "f32", "hf"),
    ("w40_mlp2.5", arch(40, 2, 2, 14, 28, 40, 100), "f32", "open_clip"),
    ("odd_mlp_hf", arch(48, 4, 2, 14, 98, 17, 131), "f32", "hf"),
    ("grid1", arch(32, 2, 2, 32, 32, 16, 64), "f32", "open_clip"),
    ("grid1_hf", arch(32, 2, 2, 14, 14, 16, 64, "quick_gelu"), "f32", "hf"),
    ("grid2", arch(32, 4, 2, 14, 28, 8, 64), "f32", "open_clip"),
    ("layers1", arch(32, 2, 1, 8, 32, 16, 128), "f32", "open_clip"),
    ("layers1_hf", arch(32, 2, 1, 8, 32, 16, 128), "f32", "hf"),
    ("layers22", arch(32, 4, 22, 16, 32, 16, 128), "f32", "open_clip"),
    ("embed_gt_width", arch(32, 2, 2, 8, 32, 96, 128), "f32", "open_clip"),
    ("quick_f16", arch(48, 6, 3, 8, 32, 24, 192, "quick_gelu"), "f16", "open_clip"),
    ("gelu_bf16", arch(48, 6, 3, 8, 32, 24, 192), "bf16", "open_clip"),
    ("hf_f16", arch(48, 3, 2, 8, 32, 24, 192), "f16", "hf"),
    ("hf_bf16", arch(48, 3, 2, 8, 32, 24, 192, "quick_gelu"), "bf16", "hf"),
    ("text_oc", arch(24, 3, 2, 8, 16, 16, 96, "gelu", text(20, 5, 2, 50)), "f32", "open_clip"),
    ("text_hf_ctx16", arch(24, 3, 2, 8, 16, 16, 96, "quick_gelu", text(12, 1, 1, 30, 16)), "f32", "hf"),
    ("text_oc_ctx33_bf16", arch(24, 2, 1, 8, 16, 16, 96, "gelu", text(36, 3, 3, 72, 33)), "bf16", "open_clip"),
    ("p32_224", arch(24, 2, 1, 32, 224, 16, 48), "f32", "open_clip"),
    ("w100h5", arch(100, 5, 2, 16, 48, 50, 250), "f32", "hf"),
    ("eps1e-6_oc", arch(24, 3, 2, 8, 16, 16, 96, "gelu", text(12, 2, 1, 48), eps=1e-6), "f32", "open_clip"),
    ("eps1e-3_hf", arch(24, 3, 2, 8, 16, 16, 96, "gelu", text(12, 2, 1, 48), eps=1e-3), "f32", "hf"),
    ("config_dict_hf", arch(24, 3, 2, 8, 16, 16, 96, "gelu", text(12, 2, 1, 48), config_dict=True), "f32", "hf"),
]


def main():
    build, scratch = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    os.makedirs(scratch, exist_ok=True)
    bad = 0
    for i, (name, a, dtype, layout) in enumerate(CASES):
        if only in name:
            bad += not check(name, a, dtype, layout, build, scratch, 1000 + i)
    print(f"{bad} case(s) failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
