-- refract.random_clip: a CLIP checkpoint with random weights in open_clip's published
-- layout (open_clip_config.json + open_clip_model.safetensors), for benchmarks and tests
-- of full-size architectures without downloading them (never commit the output).
--
--   local random_clip = require("refract.random_clip")
--   random_clip.write(dir, "ViT-B-16", { dtype = "f16", seed = 1, vision_only = true })
local refract = require("refract")

local M = {}

-- The architectures it writes, by open_clip's names (tiny: a small one for tests).
M.archs = {
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

-- The names of M.archs, sorted, joined by ", " (for messages).
function M.arch_names()
  local names = {}
  for name in pairs(M.archs) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

-- The weights of `arch` as a table of name -> host tensor: Normal(0, std) weights or
-- constants, in `dtype`, from a seeded generator (each tensor its own stream).
local function weights(arch, dtype, seed, vision_only)
  local tensors, count = {}, 0
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
  if not vision_only then
    local t = arch.text
    put("token_embedding.weight", { 49408, t.width }, 0.02)
    put("positional_embedding", { 77, t.width }, 0.01)
    tower("", t.width, t.layers)
    put("ln_final.weight", { t.width }, nil, 1)
    put("ln_final.bias", { t.width }, 0.02)
    put("text_projection", { t.width, arch.embed }, t.width ^ -0.5)
    put("logit_scale", { 1 }, nil, math.log(1 / 0.07))
    local scale = tensors.logit_scale
    tensors.logit_scale = scale:reshape({})
    scale:free()
  end
  return tensors, count
end

-- open_clip_config.json's table for `arch`.
local function config(arch, vision_only)
  local model_cfg = {
    embed_dim = arch.embed, quick_gelu = arch.quick_gelu or false,
    vision_cfg = { image_size = arch.image, patch_size = arch.patch, width = arch.width,
                   layers = arch.layers, head_width = arch.head_width, mlp_ratio = 4.0 },
  }
  if not vision_only then
    local t = arch.text
    model_cfg.text_cfg = { context_length = 77, vocab_size = 49408, width = t.width, heads = t.heads,
                           layers = t.layers }
  end
  return { model_cfg = model_cfg, preprocess_cfg = { size = arch.image,
    mean = { 0.48145466, 0.4578275, 0.40821073 }, std = { 0.26862954, 0.26130258, 0.27577711 },
    interpolation = "bicubic", resize_mode = "shortest" } }
end

-- Writes a random checkpoint of architecture `arch_name` (a key of M.archs) into `dir`
-- (created if needed). opts: dtype ("f32", "f16" or "bf16"; default "f32"), seed (an
-- integer; default 0), vision_only (no text tower). Returns the number of tensors.
function M.write(dir, arch_name, opts)
  require("refract.util").check_options(opts, "random_clip.write", { "dtype", "seed", "vision_only" })
  opts = opts or {}
  local arch = M.archs[arch_name]
  if not arch then
    error(string.format("random_clip: unknown architecture '%s' (%s)", tostring(arch_name), M.arch_names()), 0)
  end
  local dtype = opts.dtype or "f32"
  if dtype ~= "f32" and dtype ~= "f16" and dtype ~= "bf16" then
    error(string.format("random_clip: dtype must be f32, f16 or bf16, not '%s'", tostring(dtype)), 0)
  end
  local seed = math.tointeger(opts.seed or 0)
  if not seed then error("random_clip: seed must be an integer", 0) end
  local ok, err = pcall(refract.mkdir, dir)
  if not ok then error("random_clip: " .. tostring(err), 0) end
  local tensors, count = weights(arch, dtype, seed, opts.vision_only)
  refract.write_text(dir .. "/open_clip_config.json", refract.json_encode(config(arch, opts.vision_only), 2) .. "\n")
  refract.write(dir .. "/open_clip_model.safetensors", tensors)
  for _, t in pairs(tensors) do t:free() end
  return count
end

return M
