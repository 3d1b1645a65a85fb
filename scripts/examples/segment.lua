-- Example: zero-shot segmentation from per-patch contributions. Projects every source
-- token's contribution (summed over layers and heads) onto the text embeddings of the
-- shape names, keeps the image's best class, and writes the patch map as a heatmap
-- overlaid on the image. Then it checks its own results (ctest runs it): the terms add
-- up to the embedding, and each map scores the object's patches (from the image's
-- ground-truth mask) above the background's.
--   refract scripts/examples/segment.lua [OUT_DIR]
local refract = require("refract")

local out_dir = arg[1] or "."
local dir = refract.home() .. "/scripts/data/models/tinyclip-shapes"
local model <close> = refract.load(dir)
local c = model:config()
local shapes = { "circle", "square", "triangle", "star", "cross", "diamond", "heart", "ring" }
local prompts = {}
for i, s in ipairs(shapes) do prompts[i] = "a photo of a " .. s .. "." end
local classes = model:encode_texts(prompts):normalize(2):t()            -- [D, C]

local files = { dir .. "/examples/01.png", dir .. "/examples/04.png", dir .. "/examples/11.png" }
local pixels = refract.preprocess(files, model)
local d = model:decompose(pixels, { spatial = true, reduce = { "layers", "heads" }, project = classes })
local maps = d.attn_spatial                                              -- [B, N, C]
local best = d.image_embeds:matmul(classes):argmax(2)                    -- [B] 1-based

-- The decomposition is exact: every token's term plus the MLP terms (all projected) is
-- the normalised embedding projected on the classes.
local total = maps:sum(2) + d.mlps                                       -- [B, C]
local err = (total - d.image_embeds:normalize(2):matmul(classes)):abs():max():item()
print(string.format("tokens + MLPs = e/||e|| on the classes, max |diff| %.1e", err))
assert(err <= 1e-5, "the contributions do not add up to the embedding")

-- Mean of a [P, P] map over the patches where `weight` [P, P] is 1.
local function mean_where(heat, weight)
  return (heat * weight):sum():item() / weight:sum():item()
end

local size, p = c.image_size, c.image_size // c.grid
for i, file in ipairs(files) do
  local k = best:totable()[i]
  local patches = maps[i]:slice(1, 2, c.tokens)                          -- drop CLS: [P*P, C]
  local score = patches:select(2, k) - patches:mean(2)                   -- class vs the rest
  local heat = score:reshape(c.grid, c.grid)
  local image = refract.image_load(file)
  local path = string.format("%s/segment_%d_%s.png", out_dir, i, shapes[k])
  refract.write_png(path, refract.overlay(image, heat, { alpha = 0.6 }))
  -- The object's share of each patch, from the ground-truth mask (0 or 255).
  local mask = refract.image_load(file:gsub("%.png$", "_mask.png")):float()
  local share = mask:reshape(c.grid, p, c.grid, p):mean({ 2, 4 }) / 255  -- [P, P]
  local inside, outside = mean_where(heat, share:ge(0.5)), mean_where(heat, share:eq(0))
  print(string.format("%s: %s -> %s (object %.4f, background %.4f)", file:match("[^/]+$"),
    shapes[k], path, inside, outside))
  assert(mask:shape()[1] == size and inside > outside, "the map does not find the object in " .. file)
end
