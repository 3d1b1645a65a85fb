#!/usr/bin/env python3
"""Developer tool: the PyTorch peer of `refract bench vit --peer torch`.

Runs an open_clip-layout CLIP vision tower, loaded from its safetensors file without
open_clip, in PyTorch on the CPU, and times it: plain encoding, and the two per-head
methods of the paper's code (Gandelsman et al., ICLR 2024) that refract's decomposition
replaces, as tests/data/tiny-gelu/README.md defines their outputs:

  encode           image embeddings e (F.linear, batched attention; the fastest plain path)
  head_no_spatial  attn_heads: per layer the [B, N, H, W] tensor of per-head outputs of
                   every query token (einsum 'bhnm,bhmd->bhnd', then each head's slice of
                   out_proj), whose CLS row the hook keeps; mlps; ln_post frozen; projected
  head             attn_spatial: per layer the [B, N, N, H, dh] tensor of alpha * v and the
                   [B, N, N, H, W] tensor of per-(query, source token, head) outputs, whose
                   CLS row the hook keeps, then the same finalisation

    /usr/bin/python3 scripts/dev/torch_vit_peer.py --model DIR --pixels P.safetensors
        --methods encode,head_no_spatial,head --dtype f32|f16 --seconds S --json OUT.json
        [--outputs OUT.safetensors] [--torch-threads T] [--blas-threads N]

`--pixels` holds `pixels` [B, 3, S, S] (refract's random pixels, so both sides compute on
the same inputs). `--dtype f16` keeps the weights in float16 and widens each to float32
where it is used (what refract's f16 storage does: a memory saving, f32 arithmetic).
Times whole batches for at least S seconds after one untimed batch (none for `head`,
whose single batch takes seconds to minutes and compiles nothing). Peak memory is the
process's peak resident set (VmHWM) above its resident set once the weights are loaded,
the peak reset through /proc/self/clear_refs before each method.

Thread settings (../shared/LAVAPIPE.md): PyTorch's own ops on T threads (default 1),
BLAS on N threads (default: all CPUs), OpenBLAS's pthread build put first on the library
path. OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs it does not know
(e.g. Intel model 207, Emerald Rapids: 5x slower than its SkylakeX kernels there), so
unless OPENBLAS_CORETYPE is set the script names the core the CPU's flags allow when
OpenBLAS's own choice is weaker. The script re-executes itself once with that
environment, since OpenBLAS reads it when it loads. A benchmark tool only: never used by
the product or by a test's verdict.
"""
import argparse
import ctypes
import json
import mmap
import os
import resource
import struct
import sys
import time

OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
ENV_MARK = "REFRACT_TORCH_PEER_ENV"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="open_clip checkpoint folder")
    p.add_argument("--pixels", required=True, help="safetensors file holding `pixels`")
    p.add_argument("--methods", default="encode,head_no_spatial,head")
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json", required=True, help="results are written here")
    p.add_argument("--outputs", help="writes image 1's results here (for comparison)")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--blas-threads", type=int, default=os.cpu_count() or 1)
    return p.parse_args()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def openblas_core():
    """The kernel set OpenBLAS chose (it reads OPENBLAS_CORETYPE when it loads), or None."""
    for name in (os.path.join(OPENBLAS_DIR, "libopenblas.so.0"), "libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    return None


def best_core():
    """The OpenBLAS core the CPU's flags allow, and the cores at least as good."""
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        return "SkylakeX", {"skylakex", "cooperlake", "sapphirerapids"}
    if {"avx2", "fma"} <= flags:
        return "Haswell", {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"}
    return None, set()


def reexec_with_blas_env(args):
    """OpenBLAS's thread count and library are fixed when it loads: set them, then exec."""
    if os.environ.get(ENV_MARK):
        return
    env = dict(os.environ)
    env[ENV_MARK] = "1"
    env["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    env["OMP_NUM_THREADS"] = str(args.torch_threads)
    env["MKL_NUM_THREADS"] = str(args.blas_threads)
    if os.path.isdir(OPENBLAS_DIR):
        env["LD_LIBRARY_PATH"] = OPENBLAS_DIR + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    if not env.get("OPENBLAS_CORETYPE"):
        best, good = best_core()
        core = openblas_core()
        if best and core and core.lower() not in good:
            env["OPENBLAS_CORETYPE"] = best
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


# {===== files

ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def read_safetensors(path, torch, dtype=None, only=None):
    """name -> torch tensor (a copy in memory, converted to `dtype` if given), for every
    tensor or for those named in `only`."""
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        (n,) = struct.unpack("<Q", m[:8])
        header = json.loads(m[8:8 + n])
        out = {}
        for name, e in header.items():
            if name == "__metadata__" or (only is not None and name not in only):
                continue
            if e["dtype"] not in ST_DTYPES:
                raise SystemExit(f"{path}: tensor {name} has dtype {e['dtype']}, expected F32, F16 or BF16")
            lo, hi = e["data_offsets"]
            raw = bytearray(m[8 + n + lo:8 + n + hi])
            t = torch.frombuffer(raw, dtype=getattr(torch, ST_DTYPES[e["dtype"]])).reshape(e["shape"])
            out[name] = t.to(dtype) if dtype is not None else t
    finally:
        m.close()
    return out

# }=====

# {===== memory


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    """Sets the peak resident set to the current one; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def blas_libraries():
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if any(s in path for s in ("blas", "lapack", "mkl")):
                libs.add(path)
    return sorted(libs)

# }=====


class Tower:
    """The vision tower's weights (float32, or float16 widened where used) and config."""

    def __init__(self, torch, model_dir, dtype):
        cfg = json.load(open(os.path.join(model_dir, "open_clip_config.json")))["model_cfg"]
        v = cfg["vision_cfg"]
        self.width, self.patch, self.layers = v["width"], v["patch_size"], v["layers"]
        self.heads = self.width // v.get("head_width", 64)
        self.dh = self.width // self.heads
        self.quick_gelu = bool(cfg.get("quick_gelu"))
        sd = read_safetensors(os.path.join(model_dir, "open_clip_model.safetensors"), torch, torch.float32)
        self.w = {k: t for k, t in sd.items() if k.startswith("visual.")}
        if dtype == "f16":
            # As refract stores them: the matrices of the products in f16, vectors
            # (biases, LayerNorms, class and position embeddings) in f32.
            for k, t in self.w.items():
                if k.endswith("weight") and t.dim() >= 2 or k == "visual.proj":
                    self.w[k] = t.half()
        self.bytes = sum(t.numel() * t.element_size() for t in self.w.values())
        self.blocks = [{k[len(f"visual.transformer.resblocks.{l}."):]: t for k, t in self.w.items()
                        if k.startswith(f"visual.transformer.resblocks.{l}.")} for l in range(self.layers)]
        self.tokens = (v["image_size"] // self.patch) ** 2 + 1

    def get(self, name, block=None):
        t = self.w[name] if block is None else self.blocks[block][name]
        return t.float()   # a no-op for f32; f16 weights are widened where they are used


def run_methods(torch, tower, pixels, methods):
    import torch.nn.functional as F
    W, H, dh = tower.width, tower.heads, tower.dh

    def ln(x, name, block=None):
        return F.layer_norm(x, (W,), tower.get(name + ".weight", block), tower.get(name + ".bias", block), 1e-5)

    def act(x):
        return x * torch.sigmoid(1.702 * x) if tower.quick_gelu else F.gelu(x)

    def embed(px):
        x = F.conv2d(px, tower.get("visual.conv1.weight"), stride=tower.patch).flatten(2).transpose(1, 2)
        cls = tower.get("visual.class_embedding").expand(x.shape[0], 1, W)
        x = torch.cat([cls, x], 1) + tower.get("visual.positional_embedding")
        return ln(x, "visual.ln_pre")

    def qkv(x, l):
        """q, k, v as [B, H, N, dh]."""
        y = F.linear(ln(x, "ln_1", l), tower.get("attn.in_proj_weight", l), tower.get("attn.in_proj_bias", l))
        return [t.reshape(x.shape[0], x.shape[1], H, dh).transpose(1, 2) for t in y.split(W, -1)]

    def probs(q, k):
        return (q @ k.transpose(-1, -2) * dh ** -0.5).softmax(-1)

    def mlp(x, l):
        h = act(F.linear(ln(x, "ln_2", l), tower.get("mlp.c_fc.weight", l), tower.get("mlp.c_fc.bias", l)))
        return F.linear(h, tower.get("mlp.c_proj.weight", l), tower.get("mlp.c_proj.bias", l))

    def encode(px):
        x = embed(px)
        for l in range(tower.layers):
            q, k, v = qkv(x, l)
            o = (probs(q, k) @ v).transpose(1, 2).reshape(x.shape)
            x = x + F.linear(o, tower.get("attn.out_proj.weight", l), tower.get("attn.out_proj.bias", l))
            x = x + mlp(x, l)
        return ln(x[:, 0], "visual.ln_post") @ tower.get("visual.proj")

    def decompose(px, spatial):
        """The paper's per-head forward and its PRS hook's finalisation."""
        x = embed(px)
        attentions, mlps = [], [x[:, 0]]
        for l in range(tower.layers):
            q, k, v = qkv(x, l)
            a = probs(q, k)
            w_o = tower.get("attn.out_proj.weight", l).reshape(W, H, dh).permute(1, 2, 0)   # [H, dh, W]
            bias = tower.get("attn.out_proj.bias", l)
            if spatial:
                t = torch.einsum("bhnm,bhmd->bnmhd", a, v)            # [B, N, N, H, dh]
                t = torch.einsum("bnmhd,hdc->bnmhc", t, w_o)          # [B, N, N, H, W]
                attentions.append(t[:, 0] + bias / (t.shape[2] * H))  # [B, N, H, W]
                x = x + t.sum((2, 3)) + bias
            else:
                t = torch.einsum("bhnm,bhmd->bhnd", a, v)             # [B, H, N, dh]
                t = torch.einsum("bhnd,hdc->bnhc", t, w_o)            # [B, N, H, W]
                attentions.append(t[:, 0] + bias / H)                 # [B, H, W]
                x = x + t.sum(2) + bias
            del t
            m = mlp(x, l)
            mlps.append(m[:, 0])
            x = x + m
        r = x[:, 0]
        mu = r.mean(-1, keepdim=True)
        sigma = (r.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
        e = ln(r, "visual.ln_post") @ tower.get("visual.proj")
        gamma, beta = tower.get("visual.ln_post.weight"), tower.get("visual.ln_post.bias")
        proj = tower.get("visual.proj")
        att = torch.stack(attentions, 1)                              # [B, L, (N,) H, W]
        mlp_t = torch.stack(mlps, 1)                                  # [B, L + 1, W]
        k_terms = 2 * tower.layers + 1
        share = k_terms * (att.shape[2] * att.shape[3] if spatial else att.shape[2])
        extra = (1,) * (att.dim() - 2)
        norm = e.norm(dim=-1)
        att = ((gamma * (att - mu.view(-1, 1, *extra) / share)) / sigma.view(-1, 1, *extra) + beta / share) @ proj
        mlp_t = ((gamma * (mlp_t - mu.view(-1, 1, 1) / k_terms)) / sigma.view(-1, 1, 1) + beta / k_terms) @ proj
        out = {"attn_spatial" if spatial else "attn_heads": att / norm.view(-1, 1, *extra),
               "mlps": mlp_t / norm.view(-1, 1, 1), "image_embeds": e}
        return out

    fns = {"encode": lambda px: {"image_embeds": encode(px)},
           "head_no_spatial": lambda px: decompose(px, False),
           "head": lambda px: decompose(px, True)}
    return {m: fns[m] for m in methods}


def time_method(torch, fn, pixels, seconds, warm_up):
    """images/s over whole batches for at least `seconds`, and the peak memory above the
    resident set at the start; returns the last batch's outputs too."""
    rss0 = status_kib("VmRSS")
    reset_ok = reset_peak()
    if warm_up:
        out = fn(pixels)
        del out
    runs, start = 0, time.perf_counter()
    while True:
        out = fn(pixels)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
        del out
    peak = status_kib("VmHWM") if reset_ok else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images_per_s": runs * pixels.shape[0] / elapsed, "runs": runs, "seconds": elapsed,
            "peak_above_weights": max(0, peak - rss0) * 1024, "peak_exact": reset_ok}, out


def main():
    args = parse_args()
    reexec_with_blas_env(args)
    import torch
    torch.set_num_threads(args.torch_threads)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in ("encode", "head_no_spatial", "head"):
            raise SystemExit(f"unknown method {m}: expected encode, head_no_spatial or head")
    pixels = read_safetensors(args.pixels, torch, only={"pixels"})
    if "pixels" not in pixels:
        raise SystemExit(f"{args.pixels}: no tensor named pixels")
    pixels = pixels["pixels"].float()
    tower = Tower(torch, args.model, args.dtype)
    result = {"peer": "torch", "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "blas_threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")), "blas": blas_libraries(),
              "blas_core": openblas_core(),
              "dtype": args.dtype, "batch": int(pixels.shape[0]), "weight_bytes": tower.bytes,
              "resident_with_weights": status_kib("VmRSS") * 1024, "methods": {}}
    outputs = {}
    with torch.inference_mode():
        for name, fn in run_methods(torch, tower, pixels, methods).items():
            r, out = time_method(torch, fn, pixels, args.seconds, warm_up=name != "head")
            result["methods"][name] = r
            for k, t in out.items():
                outputs[f"{name}.{k}"] = t if k == "image_embeds" else t[:1]
            del out
            print(f"torch {name}: {r['images_per_s']:.3f} images/s, peak {r['peak_above_weights'] / 2**20:.1f} MiB "
                  "above the weights", flush=True)
    if args.outputs:
        # Imported here, not at the top: NumPy loads OpenBLAS, which must see the
        # environment this script sets before it re-executes itself.
        import safetensors_io
        safetensors_io.write(args.outputs, {n: t.detach().float().contiguous().numpy() for n, t in outputs.items()})
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
