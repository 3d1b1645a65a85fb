#!/usr/bin/env python3
"""Developer tool: damaged variants of a small random CLIP checkpoint (both layouts), each
loaded and run by refract, to check that every one ends in a clear error naming the file
(never a crash, a hang, a sanitizer report or a silent result).

    /usr/bin/python3 scripts/dev/malformed_sweep.py BUILD_DIR SCRATCH_DIR [CASE_SUBSTRING]

Prints one line per variant: "error" with refract's message, "LOADED" (refract accepted
it: a finding unless the variant is legal), or "CRASH". Never used by the product or by
the test suite's pass/fail.
"""
import copy
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arch_sweep as A  # noqa: E402
import safetensors_io  # noqa: E402

RUN = ('local refract = require("refract"); local m = refract.load(arg[1]); local c = m:config(); '
       'local px = refract.randn({1, 3, c.image_size, c.image_size}, 1); m:encode_images(px); '
       'm:decompose(px, {spatial = true}); if c.has_text then m:encode_texts({"a cat"}) end; print("LOADED")')


def base(layout):
    a = A.arch(24, 3, 2, 8, 16, 16, 96, "gelu", A.text(12, 2, 1, 48))
    rng = np.random.default_rng(1)
    oc, _ = A.stored(A.random_weights(a, rng), "f32")
    if layout == "open_clip":
        cfg = {"model_cfg": {"embed_dim": 16, "vision_cfg": {"image_size": 16, "patch_size": 8, "width": 24,
                                                            "layers": 2, "head_width": 8, "mlp_ratio": 4.0},
                             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 12, "heads": 2,
                                          "layers": 1, "mlp_ratio": 4.0}}}
        return cfg, oc
    cfg = {"model_type": "clip", "projection_dim": 16,
           "vision_config": {"image_size": 16, "patch_size": 8, "hidden_size": 24, "num_hidden_layers": 2,
                             "num_attention_heads": 3, "intermediate_size": 96, "hidden_act": "gelu"},
           "text_config": {"hidden_size": 12, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "intermediate_size": 48, "max_position_embeddings": 77, "hidden_act": "gelu"}}
    return cfg, A.hf_state(oc)


def write(dir_, layout, cfg, st):
    os.makedirs(dir_, exist_ok=True)
    for f in os.listdir(dir_):
        os.remove(os.path.join(dir_, f))
    cname, wname = ("open_clip_config.json", "open_clip_model.safetensors") if layout == "open_clip" else \
        ("config.json", "model.safetensors")
    with open(os.path.join(dir_, cname), "w") as f:
        json.dump(cfg, f)
    safetensors_io.write(os.path.join(dir_, wname), st)


def cases():
    """(name, layout, edit(cfg, st)) with edit changing them in place."""
    out = []
    oc_v, hf_v = "visual.", "vision_model."

    def add(name, layout, fn):
        out.append((name, layout, fn))

    for lay, conv, pos, qkv, proj in (("open_clip", "visual.conv1.weight", "visual.positional_embedding",
                                       "visual.transformer.resblocks.0.attn.in_proj_weight", "visual.proj"),
                                      ("hf", "vision_model.embeddings.patch_embedding.weight",
                                       "vision_model.embeddings.position_embedding.weight",
                                       "vision_model.encoder.layers.0.self_attn.q_proj.weight",
                                       "visual_projection.weight")):
        def tr(name):
            def f(cfg, st):
                dt, a = st[name]
                st[name] = (dt, np.ascontiguousarray(a.reshape(a.shape[::-1]) if a.ndim != 2 else a.T))
            return f

        def extra_dim(name):
            def f(cfg, st):
                dt, a = st[name]
                st[name] = (dt, a[None])
            return f

        def off_by_one(name, axis=0):
            def f(cfg, st):
                dt, a = st[name]
                st[name] = (dt, np.concatenate([a, a.take([0], axis)], axis))
            return f

        def drop(name):
            def f(cfg, st):
                del st[name]
            return f

        def retype(name, dt, npd):
            def f(cfg, st):
                st[name] = (dt, st[name][1].astype(npd))
            return f

        def with_extra(name, shape):
            def f(cfg, st):
                st[name] = ("F32", np.ones(shape, np.float32))
            return f

        add(f"{lay}_conv_transposed", lay, tr(conv))
        add(f"{lay}_pos_off_by_one", lay, off_by_one(pos))
        add(f"{lay}_pos_extra_dim", lay, extra_dim(pos))
        add(f"{lay}_qkv_transposed", lay, tr(qkv))
        add(f"{lay}_proj_transposed", lay, tr(proj))
        add(f"{lay}_missing_pos", lay, drop(pos))
        add(f"{lay}_i64_conv", lay, retype(conv, "I64", np.int64))
        add(f"{lay}_f64_pos", lay, lambda cfg, st, p=pos: st.__setitem__(p, ("F64", st[p][1].astype(np.float64))))
        add(f"{lay}_f64_conv", lay, lambda cfg, st, p=conv: st.__setitem__(p, ("F64", st[p][1].astype(np.float64))))
        add(f"{lay}_proj_off_by_one", lay, off_by_one(proj, 1))
    # Layer scale tensors present (the config does not say ls_init_value): weights refract ignores.
    add("open_clip_layer_scale_tensors", "open_clip",
        lambda cfg, st: [st.__setitem__(f"visual.transformer.resblocks.{l}.ls_{i}.gamma",
                                        ("F32", np.full(24, 0.5, np.float32))) for l in range(2) for i in (1, 2)])
    add("open_clip_text_layer_scale_tensors", "open_clip",
        lambda cfg, st: [st.__setitem__(f"transformer.resblocks.0.ls_{i}.gamma", ("F32", np.full(12, 0.5, np.float32)))
                         for i in (1, 2)])
    add("open_clip_attn_pool_tensors", "open_clip",
        lambda cfg, st: st.__setitem__("visual.attn_pool.query", ("F32", np.ones((4, 24), np.float32))))
    add("hf_position_ids_buffer", "hf",
        lambda cfg, st: st.__setitem__("vision_model.embeddings.position_ids", ("I64", np.arange(5)[None])))
    # Configs.
    v = lambda cfg: cfg["model_cfg"]["vision_cfg"]
    add("oc_heads_not_dividing", "open_clip", lambda cfg, st: v(cfg).__setitem__("head_width", 7))
    add("oc_patch_not_dividing", "open_clip", lambda cfg, st: v(cfg).__setitem__("patch_size", 5))
    add("oc_image_bigger_pos_mismatch", "open_clip", lambda cfg, st: v(cfg).__setitem__("image_size", 24))
    add("oc_image_size_list", "open_clip", lambda cfg, st: v(cfg).__setitem__("image_size", [16, 16]))
    add("oc_image_size_list_nonsquare", "open_clip", lambda cfg, st: v(cfg).__setitem__("image_size", [16, 24]))
    add("oc_patch_size_list", "open_clip", lambda cfg, st: v(cfg).__setitem__("patch_size", [8, 8]))
    add("oc_global_average_pool", "open_clip", lambda cfg, st: v(cfg).__setitem__("global_average_pool", True))
    add("oc_norm_kwargs_eps", "open_clip", lambda cfg, st: v(cfg).__setitem__("norm_kwargs", {"eps": 1e-6}))
    add("oc_act_kwargs", "open_clip", lambda cfg, st: v(cfg).__setitem__("act_kwargs", {"approximate": "tanh"}))
    add("oc_text_ls_init", "open_clip", lambda cfg, st: cfg["model_cfg"]["text_cfg"].__setitem__("ls_init_value", 0.1))
    add("oc_text_norm_kwargs", "open_clip",
        lambda cfg, st: cfg["model_cfg"]["text_cfg"].__setitem__("norm_kwargs", {"eps": 1e-6}))
    add("oc_mlp_ratio_mismatch", "open_clip", lambda cfg, st: v(cfg).__setitem__("mlp_ratio", 4.5))
    add("oc_quick_gelu_string", "open_clip", lambda cfg, st: cfg["model_cfg"].__setitem__("quick_gelu", "true"))
    add("oc_layers_zero", "open_clip", lambda cfg, st: v(cfg).__setitem__("layers", 0))
    add("oc_layers_fewer", "open_clip", lambda cfg, st: v(cfg).__setitem__("layers", 1))
    add("oc_layers_more", "open_clip", lambda cfg, st: v(cfg).__setitem__("layers", 3))
    add("oc_embed_dim_wrong", "open_clip", lambda cfg, st: cfg["model_cfg"].__setitem__("embed_dim", 17))
    add("oc_context_mismatch", "open_clip", lambda cfg, st: cfg["model_cfg"]["text_cfg"].__setitem__("context_length", 76))
    add("oc_vocab_small", "open_clip", lambda cfg, st: cfg["model_cfg"]["text_cfg"].__setitem__("vocab_size", 100))
    hv = lambda cfg: cfg["vision_config"]
    add("hf_heads_not_dividing", "hf", lambda cfg, st: hv(cfg).__setitem__("num_attention_heads", 5))
    add("hf_only_vision_config_dict", "hf",
        lambda cfg, st: cfg.__setitem__("vision_config_dict", cfg.pop("vision_config")))
    add("hf_config_dict_overrides", "hf",
        lambda cfg, st: (cfg.__setitem__("vision_config_dict", copy.deepcopy(cfg["vision_config"])),
                         hv(cfg).__setitem__("hidden_act", "quick_gelu")))
    add("hf_num_channels_1", "hf", lambda cfg, st: hv(cfg).__setitem__("num_channels", 1))
    add("hf_act_gelu_new", "hf", lambda cfg, st: hv(cfg).__setitem__("hidden_act", "gelu_new"))
    add("hf_eps_1e-6", "hf", lambda cfg, st: (hv(cfg).__setitem__("layer_norm_eps", 1e-6),
                                              cfg["text_config"].__setitem__("layer_norm_eps", 1e-6)))
    add("hf_vision_model_type_root", "hf",
        lambda cfg, st: (cfg.clear(), cfg.update(dict(model_type="clip_vision_model", projection_dim=16,
                                                       image_size=16, patch_size=8, hidden_size=24,
                                                       num_hidden_layers=2, num_attention_heads=3,
                                                       intermediate_size=96, hidden_act="gelu"))))
    return out


def main():
    build, scratch = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    for name, layout, fn in cases():
        if only not in name:
            continue
        cfg, st = base(layout)
        st = dict(st)
        fn(cfg, st)
        d = os.path.join(scratch, name)
        write(d, layout, cfg, st)
        try:
            r = subprocess.run([f"{build}/refract", "-e", RUN, d], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
        except subprocess.TimeoutExpired:
            print(f"HANG   {name}")
            continue
        text = (r.stdout + r.stderr).strip()
        if "Sanitizer" in text or "runtime error" in text or r.returncode < 0 or r.returncode > 1:
            print(f"CRASH  {name}: rc {r.returncode}: {text[-800:]}")
        elif "LOADED" in r.stdout:
            print(f"LOADED {name}")
        else:
            print(f"error  {name}: {text.splitlines()[0][:220] if text else ''}")


if __name__ == "__main__":
    main()
