-- Developer tool: writes a CLIP checkpoint with random weights in open_clip's published
-- layout (open_clip_config.json + open_clip_model.safetensors), for tests and benchmarks
-- of full-size architectures without downloading them (never commit the output).
--
--   refract scripts/dev/random_clip.lua OUT_DIR [ARCH] [--dtype f32|f16|bf16] [--seed N]
--                                       [--vision-only]
-- ARCH: ViT-B-16 (default), ViT-B-32, ViT-L-14, ViT-H-14, tiny.
local refract = require("refract")
local util = require("refract.util")

local archs = {
  ["ViT-B-16"] = { embed = 512, image = 224, patch = 16, width = 768, layers = 12, head_width = 64,
                   text = { width = 512, heads = 8, layers = 12 }, quick_gelu = true },
  ["ViT-B-32"] = { embed = 512, image = 224, patch = 32, width = 768, layers = 12, head_width = 64,
                   text = { width = 512, heads = 8, layers = 12 }, quick_gelu = true },
  ["ViT-L-14"] = { embed = 768, image = 224, patch = 14, width = 1024, layers = 24, head_width = 64,
                   text = { width = 768, heads = 12, layers = 12 } },
  ["ViT-H-14"] = { embed = 1024, image = 224, patch = 14, width = 1280, layers = 32, head_width = 80,
                   text = { width = 1024, heads = 16, layers = 24 } },
  tiny = { embed = 32, image = 32, patch = 8, width = 64, layers = 3, head_width = 16,
           text = { width = 32, heads = 2, layers = 2 } },
}

local opts = util.parse_args(arg, { dtype = { arg = true }, seed = { arg = true }, vision_only = {} })
local out_dir, arch_name = opts._[1], opts._[2] or "ViT-B-16"
local arch = archs[arch_name]
if not out_dir or not arch then
  error("usage: refract scripts/dev/random_clip.lua OUT_DIR [ViT-B-16|ViT-B-32|ViT-L-14|ViT-H-14|tiny] "
    .. "[--dtype f32|f16|bf16] [--seed N] [--vision-only]", 0)
end
local dtype = opts.dtype or "f32"
local seed = tonumber(opts.seed or 0)

local tensors = {}
local count = 0
-- Normal(0, std) weights, or a constant, stored in the chosen dtype on the host.
local function put(name, shape, std, constant)
  count = count + 1
  local t = constant and refract.full(shape, constant) or refract.randn(shape, seed * 100000 + count) * std
  tensors[name] = t:to(dtype):host()
  t:free()
end

local function tower(prefix, width, layers)
  for l = 0, layers - 1 do
    local p = string.format("%stransformer.resblocks.%d.", prefix, l)
    put(p .. "ln_1.weight", { width }, nil, 1)
    put(p .. "ln_1.bias", { width }, 0.02)
    put(p .. "attn.in_proj_weight", { 3 * width, width }, width ^ -0.5)
    put(p .. "attn.in_proj_bias", { 3 * width }, 0.02)
    put(p .. "attn.out_proj.weight", { width, width }, width ^ -0.5 / math.sqrt(2 * layers))
    put(p .. "attn.out_proj.bias", { width }, 0.02)
    put(p .. "ln_2.weight", { width }, nil, 1)
    put(p .. "ln_2.bias", { width }, 0.02)
    put(p .. "mlp.c_fc.weight", { 4 * width, width }, (2 * width) ^ -0.5)
    put(p .. "mlp.c_fc.bias", { 4 * width }, 0.02)
    put(p .. "mlp.c_proj.weight", { width, 4 * width }, width ^ -0.5 / math.sqrt(2 * layers))
    put(p .. "mlp.c_proj.bias", { width }, 0.02)
  end
end

local w, grid = arch.width, arch.image // arch.patch
put("visual.conv1.weight", { w, 3, arch.patch, arch.patch }, w ^ -0.5)
put("visual.class_embedding", { w }, w ^ -0.5)
put("visual.positional_embedding", { grid * grid + 1, w }, w ^ -0.5)
put("visual.ln_pre.weight", { w }, nil, 1)
put("visual.ln_pre.bias", { w }, 0.02)
tower("visual.", w, arch.layers)
put("visual.ln_post.weight", { w }, nil, 1)
put("visual.ln_post.bias", { w }, 0.02)
put("visual.proj", { w, arch.embed }, w ^ -0.5)
local model_cfg = {
  embed_dim = arch.embed, quick_gelu = arch.quick_gelu or false,
  vision_cfg = { image_size = arch.image, patch_size = arch.patch, width = w, layers = arch.layers,
                 head_width = arch.head_width, mlp_ratio = 4.0 },
}
if not opts.vision_only then
  local t = arch.text
  put("token_embedding.weight", { 49408, t.width }, 0.02)
  put("positional_embedding", { 77, t.width }, 0.01)
  tower("", t.width, t.layers)
  put("ln_final.weight", { t.width }, nil, 1)
  put("ln_final.bias", { t.width }, 0.02)
  put("text_projection", { t.width, arch.embed }, t.width ^ -0.5)
  put("logit_scale", { 1 }, nil, math.log(1 / 0.07))
  tensors.logit_scale = tensors.logit_scale:reshape({})
  model_cfg.text_cfg = { context_length = 77, vocab_size = 49408, width = t.width, heads = t.heads,
                         layers = t.layers }
end

os.execute(string.format("mkdir -p '%s'", out_dir))
local config = { model_cfg = model_cfg, preprocess_cfg = { size = arch.image, mean = { 0.48145466, 0.4578275, 0.40821073 },
  std = { 0.26862954, 0.26130258, 0.27577711 }, interpolation = "bicubic", resize_mode = "shortest" } }
local f = assert(io.open(out_dir .. "/open_clip_config.json", "w"))
f:write(refract.json_encode(config, 2), "\n")
f:close()
refract.write(out_dir .. "/open_clip_model.safetensors", tensors)
print(string.format("wrote %s: random %s (%s, %d tensors, seed %d)", out_dir, arch_name, dtype, count, seed))
