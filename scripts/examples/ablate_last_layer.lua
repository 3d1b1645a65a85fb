-- Example: the indirect effect of each head of the last layer. Mean-ablates one head at a
-- time (its output replaced by its mean over the images) in a real forward pass, so the
-- change flows through the layer's MLP and ln_post, and reports how far the image
-- embedding turns (1 - cosine similarity), next to the head's direct term.
--   refract scripts/examples/ablate_last_layer.lua [MODEL_DIR]
local refract = require("refract")

local dir = arg[1] or (refract.home() .. "/scripts/data/models/tinyclip-shapes")
local model <close> = refract.load(dir)
local c = model:config()
local examples = refract.dataset({ dir = dir .. "/examples" })
local files = {}
for i = 1, #examples do
  local p = examples:path(i)
  if not p:match("_mask") then files[#files + 1] = p end
end
local pixels = refract.preprocess(files, model)

-- One clean pass taps the last layer's head outputs (before out_proj), [B, N, W].
local last = c.layers
local clean = model:forward(pixels, { taps = { "heads." .. last } })
local mean = clean.taps["heads." .. last]:mean(1)                -- [N, W]
local e0 = clean.image_embeds:normalize(2)
local direct = model:decompose(pixels).attn_heads:select(2, last) -- [B, H, D]

print(string.format("%s: last layer (%d), %d images", dir:match("[^/]+$"), last, #files))
print("head  1-cos (indirect, mean over images)  |direct term| (mean)")
for h = 1, c.heads do
  local value = mean:narrow(2, (h - 1) * c.head_width + 1, c.head_width)   -- [N, dh]
  local edited = model:forward(pixels, { edits = {
    { site = "head", layer = last, head = h, kind = "mean", value = value } } })
  local change = (1 - (edited.image_embeds:normalize(2) * e0):sum(2)):mean():item()
  assert(change >= -1e-6 and change == change, "a cosine change must be a number >= 0")
  print(string.format("%4d  %10.5f %36.5f", h, change, direct:select(2, h):norm(2):mean():item()))
end
