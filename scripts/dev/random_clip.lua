-- Developer tool: writes a CLIP checkpoint with random weights in open_clip's published
-- layout, from the command line (the writer is the library module refract.random_clip,
-- which `refract bench vit` uses too). Never commit the output.
--
--   refract scripts/dev/random_clip.lua OUT_DIR [ARCH] [--dtype f32|f16|bf16] [--seed N]
--                                       [--vision-only]
-- ARCH: ViT-B-16 (default), ViT-B-32, ViT-L-14, ViT-H-14, tiny.
local util = require("refract.util")
local random_clip = require("refract.random_clip")

local opts = util.parse_args(arg, { dtype = { arg = true }, seed = { arg = true }, vision_only = {} })
local out_dir, arch = opts._[1], opts._[2] or "ViT-B-16"
if not out_dir or opts.help then
  error("usage: refract scripts/dev/random_clip.lua OUT_DIR [" .. random_clip.arch_names()
    .. "] [--dtype f32|f16|bf16] [--seed N] [--vision-only]", 0)
end
local seed = tonumber(opts.seed or "0")
local count = random_clip.write(out_dir, arch, { dtype = opts.dtype, seed = seed, vision_only = opts.vision_only })
print(string.format("wrote %s: random %s (%s, %d tensors, seed %d)", out_dir, arch, opts.dtype or "f32",
  count, seed or 0))
