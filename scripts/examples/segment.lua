-- Example: zero-shot segmentation from per-patch contributions. Projects every source
-- token's contribution (summed over layers and heads) onto the text embeddings of the
-- shape names, keeps the image's best class, and writes the patch map as a heatmap
-- overlaid on the image.
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

for i, file in ipairs(files) do
  local k = best:totable()[i]
  local patches = maps[i]:slice(1, 2, c.tokens)                          -- drop CLS: [P*P, C]
  local score = patches:select(2, k) - patches:mean(2)                   -- class vs the rest
  local heat = score:reshape(c.grid, c.grid)
  local image = refract.image_load(file)
  local path = string.format("%s/segment_%d_%s.png", out_dir, i, shapes[k])
  refract.write_png(path, refract.overlay(image, heat, { alpha = 0.6 }))
  print(string.format("%s: %s -> %s", file:match("[^/]+$"), shapes[k], path))
end
