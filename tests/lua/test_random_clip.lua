-- refract.random_clip (the random-weight checkpoint writer) as a library: what it writes
-- loads as the architecture asked for, a seed gives the same weights again, and bad
-- arguments are refused; `refract bench vit` runs on what it writes.
local refract = require("refract")
local random_clip = require("refract.random_clip")
local T = require("testlib")

local base = os.tmpname()   -- an empty file whose unique name prefixes our folders
local dirs = {}
local function tmpdir(name)
  dirs[#dirs + 1] = base .. "_" .. name
  return dirs[#dirs]
end

local arch = random_clip.archs.tiny
local full = tmpdir("full")
T.eq(random_clip.write(full, "tiny", { seed = 3 }), 74, "tensors written (vision and text towers)")
local m = refract.load(full)
local c = m:config()
T.eq({ c.embed_dim, c.image_size, c.patch_size, c.width, c.layers, c.heads },
  { arch.embed, arch.image, arch.patch, arch.width, arch.layers, arch.width // arch.head_width },
  "the vision tower of the architecture")
T.eq({ c.has_text, c.text_width, c.text_layers, c.text_heads },
  { true, arch.text.width, arch.text.layers, arch.text.heads }, "the text tower")
T.eq(m:encode_images(refract.randn({ 2, 3, c.image_size, c.image_size }, 1)):shape(), { 2, arch.embed },
  "it encodes")
m:free()

-- The same seed writes the same weights; another seed others. f16 is stored as f16.
local again, other, half = tmpdir("again"), tmpdir("other"), tmpdir("half")
random_clip.write(again, "tiny", { seed = 3, vision_only = true })
random_clip.write(other, "tiny", { seed = 4, vision_only = true })
random_clip.write(half, "tiny", { seed = 3, vision_only = true, dtype = "f16" })
local function weight(dir) return refract.read(dir .. "/open_clip_model.safetensors", "visual.proj") end
local w3, w3b, w4, h3 = weight(full), weight(again), weight(other), weight(half)
T.eq((w3 - w3b):abs():max():item(), 0, "same seed, same weights")
T.ok((w3 - w4):abs():max():item() > 0.01, "another seed, other weights")
T.eq(h3:dtype(), "f16", "f16 storage")
T.ok((h3:to("f32") - w3):abs():max():item() <= 1e-3 * w3:abs():max():item(), "f16 rounds the same weights")
T.ok(refract.load(again):config().has_text == false, "vision_only leaves the text tower out")

T.fails(function() random_clip.write(tmpdir("bad"), "ViT-Z-99") end,
  "unknown architecture 'ViT-Z-99' (ViT-B-16, ViT-B-32, ViT-H-14, ViT-L-14, tiny)")
T.fails(function() random_clip.write(tmpdir("bad"), "tiny", { dtype = "i8" }) end,
  "dtype must be f32, f16 or bf16, not 'i8'")
T.fails(function() random_clip.write(tmpdir("bad"), "tiny", { seed = 1.5 }) end, "seed must be an integer")

-- bench vit writes its random model with the library (no subprocess) and times it.
local r = require("refract.bench_vit").run({ "--arch", "tiny", "--seconds", "0.01", "--no-f16" })
T.ok(r["encode f32"] > 0 and r["decompose heads"] > 0 and r["decompose spatial"] > 0, "bench vit rates")

for _, dir in ipairs(dirs) do os.execute(string.format("rm -rf '%s'", dir)) end
os.remove(base)
T.done()
