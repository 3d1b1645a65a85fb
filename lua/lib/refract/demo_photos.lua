-- refract.demo_photos: `refract demo --model DIR`: what applies to a real CLIP checkpoint on
-- the bundled photos (scripts/data/images): zero-shot classification with ImageNet's
-- classes and the bundled templates (refract.classifier; probabilities with the model's
-- logit scale), each photo's zero-shot segmentation map for its top class
-- (refract.segment), and what each head of the last layer adds to that class, patch by
-- patch. One decomposition serves the last two, projected on the photos' top classes and
-- on the mean of all classes (what the segmentation subtracts), so it stays small for any
-- model. Prints a summary and writes a report folder.
--
--   require("refract.demo_photos").run({ report = "out", model = "ViT-B-16" })
local refract = require("refract")
local util = require("refract.util")
local data = require("refract.data")
local classifier = require("refract.classifier")
local segment = require("refract.segment")
local provenance = require("refract.provenance")
local report = require("refract.report")
local Progress = require("refract.progress")

local M = {}

M.top = 5          -- classes listed per photo
M.thumbnail = 112  -- side of each head's picture

local function fill(h, w, v)
  return refract.full({ h, w, 3 }, v)
end

-- The picture of the last layer's heads: one row per photo, one column per head, each
-- cell what the head adds to the photo's top class per patch (its direct contribution
-- projected on the class minus the mean over the classes), over the model's input.
-- Cells of a row share one scale (0 to the row's largest value), so brighter adds more.
local function heads_picture(path, images, head_maps)
  local gap, side = 4, M.thumbnail
  local rows = {}
  for i, maps in ipairs(head_maps) do
    local top = 1e-12
    for _, m in ipairs(maps) do top = math.max(top, m:max():item()) end
    local image = refract.resize(images[i], side, side):permute(2, 3, 1)
    local cells = { fill(side, gap, 1) }
    for _, m in ipairs(maps) do
      cells[#cells + 1] = refract.overlay(image, m, { alpha = 0.7, colormap = "magma", vmin = 0, vmax = top }):float() / 255
      cells[#cells + 1] = fill(side, gap, 1)
    end
    local row = refract.cat(cells, 2)
    if #rows == 0 then rows[1] = fill(gap, row:shape(2), 1) end
    rows[#rows + 1] = row
    rows[#rows + 1] = fill(gap, row:shape(2), 1)
  end
  refract.write_png(path, refract.cat(rows, 1))
end

-- For each image i and its class best[i] (a column of the classifier k [D, C], from 1):
-- the segmentation's patch map [P, P] (as refract.segment.maps_from makes it: the
-- class's score minus the mean over the classes), the last layer's per-head maps (the
-- same through each head alone) and each last-layer head's whole direct contribution to
-- that score. From one decomposition projected on the classes in `best` and on the mean
-- of k's columns (the mean over the classes of the projections is the projection on
-- their mean): [B, L, N, H, S + 1] for S distinct classes, small for any model.
function M.class_maps(model, pixels, k, best)
  local c = model:config()
  local columns, column_of = {}, {}
  for _, b in ipairs(best) do
    if not column_of[b] then
      columns[#columns + 1] = b
      column_of[b] = #columns
    end
  end
  local mean_column = #columns + 1
  local chosen, centre = k:index(2, columns), k:mean(2, true)
  local directions = refract.cat({ chosen, centre }, 2)                               -- [D, S + 1]
  chosen:free()
  centre:free()
  local d = model:decompose(pixels, { spatial = true, project = directions })       -- [B, L, N, H, S + 1]
  local summed = d.attn_spatial:sum({ 2, 4 })                                       -- [B, N, S + 1]
  local per_head = d.attn_heads:select(2, c.layers)                                 -- [B, H, S + 1]
  local maps, head_maps, contributions = {}, {}, {}
  local function score(t, col)   -- [..., S + 1] -> the class's score minus the mean
    return t:select(-1, col) - t:select(-1, mean_column)
  end
  for i, b in ipairs(best) do
    local col = column_of[b]
    local patches = summed[i]:slice(1, 2, c.tokens)                                 -- [P*P, S + 1]
    maps[i] = score(patches, col):reshape(c.grid, c.grid)
    local last = d.attn_spatial[i][c.layers]:slice(1, 2, c.tokens)                  -- [P*P, H, S + 1]
    head_maps[i] = {}
    for h = 1, c.heads do head_maps[i][h] = score(last:select(2, h), col):reshape(c.grid, c.grid) end
    contributions[i] = score(per_head[i], col):totable()
  end
  for _, t in pairs(d) do t:free() end
  summed:free()
  per_head:free()
  directions:free()
  return maps, head_maps, contributions
end

function M.run(opts)
  util.check_options(opts, "demo_photos.run", { "report", "model", "dtype", "classes", "templates", "home" })
  local start = refract.clock()
  local home = opts.home or refract.home()
  local dir = opts.report
  local r = report.new(dir)
  report.check_dir(dir .. "/segmentation", "--report")
  local classes_file = opts.classes or (home .. "/scripts/data/text/imagenet_classes.txt")
  local templates_file = opts.templates or (home .. "/scripts/data/text/templates.txt")
  local names = data.read_list(classes_file, "class names")
  local templates, lines = data.read_list(templates_file, "templates")
  local where = {}
  for i, l in ipairs(lines) do where[i] = templates_file .. ":" .. l end
  classifier.check_templates(templates, where)
  local items = segment.folder({ dir = home .. "/scripts/data/images" })

  local model = refract.load(opts.model, { dtype = opts.dtype })
  local c = model:config()
  if not c.has_text then error(opts.model .. ": the model has no text tower, which zero-shot classification needs", 0) end
  print(string.format("model: %s (%s)", opts.model, c.description))
  local record = provenance.new({ model = opts.model, command = "demo", inputs = { classes_file, templates_file } })
  print(string.format("zero-shot classifier: %d classes x %d templates", #names, #templates))
  local progress = Progress.new(#names, "classes")
  local k = classifier.build(model, names, templates, { progress = function(n) progress:add(n) end })
  progress:finish()

  -- 1. zero-shot: probabilities softmax(exp(logit_scale) * cosine)
  local paths = {}
  for i, item in ipairs(items) do paths[i] = item.path end
  local pixels = refract.preprocess(paths, model)
  local embeds = model:encode_images(pixels)
  local cosine = embeds:normalize(2):matmul(k)
  local scale = math.exp(c.logit_scale or math.log(100))
  local probs = (cosine * scale):softmax(2)
  local values, indices = probs:topk(math.min(M.top, #names), 2)
  values, indices = values:totable(), indices:totable()

  -- 2. one decomposition for the segmentation maps and the heads' pictures
  local best, images = {}, {}
  local mean = refract.tensor(c.mean):reshape(3, 1, 1)
  local std = refract.tensor(c.std):reshape(3, 1, 1)
  for i = 1, #items do
    best[i] = indices[i][1]
    images[i] = (pixels[i] * std + mean):clamp(0, 1)
  end
  local maps, head_maps, contributions = M.class_maps(model, pixels, k, best)
  heads_picture(dir .. "/heads.png", images, head_maps)
  local entries = {}
  for i, item in ipairs(items) do entries[i] = { file = item.file, picture = item.picture } end
  local given = false
  local seg = segment.run(model, k, function()
    if given then return nil end
    given = true
    return pixels, entries, best, maps
  end, { pictures = dir .. "/segmentation", class_names = names })

  -- the report
  local seconds = refract.clock() - start
  r:heading(1, "refract demo: " .. opts.model .. " on the bundled photos")
  r:paragraph(string.format("Model `%s` (%s). Zero-shot classifier from %d classes (`%s`) x %d templates "
    .. "(`%s`); probabilities are softmax(exp(logit_scale) x cosine) with logit_scale %s. Layers and heads "
    .. "are numbered from 1. Made in %.1f s by refract %s; `results.json` holds every number and the "
    .. "provenance.", opts.model, c.description, #names, classes_file:match("([^/]+)$"), #templates,
    templates_file:match("([^/]+)$"), c.logit_scale and string.format("%.3f", c.logit_scale)
    or "unknown (100 assumed)", seconds, refract.version))
  r:heading(2, "1. Zero-shot classification")
  local rows, results = {}, { photos = {}, provenance = record, logit_scale = c.logit_scale, seconds = seconds }
  for i, item in ipairs(items) do
    local list, listed = {}, {}
    for j = 1, #values[i] do
      list[j] = string.format("%s (%.1f%%)", names[indices[i][j]], 100 * values[i][j])
      listed[j] = { class = indices[i][j] - 1, name = names[indices[i][j]], probability = values[i][j] }
    end
    rows[#rows + 1] = { item.file, table.concat(list, "<br>") }
    results.photos[i] = { file = item.file, top = listed, last_layer_heads = contributions[i] }
  end
  r:table({ "photo", "top classes (probability)" }, rows)
  r:heading(2, "2. Zero-shot segmentation for the top class")
  r:paragraph("Every patch scores the direct contributions of all heads reading it, projected on the top "
    .. "class minus the mean over the classes; upsampled, scaled to [0, 1], thresholded at its mean "
    .. "(white: the mask). No ground truth here, so no scores.")
  rows = {}
  for i, item in ipairs(items) do
    local stem = "segmentation/" .. item.picture
    rows[#rows + 1] = { item.file .. "<br>" .. names[best[i]], report.image("relevance", stem .. "_heatmap.png"),
                        report.image("overlay", stem .. "_overlay.png"), report.image("mask", stem .. "_mask.png") }
  end
  r:table({ "photo, class", "relevance", "overlay", "mask" }, rows)
  r:heading(2, string.format("3. What each head of the last layer (%d) adds to the top class", c.layers))
  r:paragraph(string.format("One row per photo (%s), one column per head (1..%d): each patch's direct "
    .. "contribution through the head, projected on the photo's top class minus the mean over the classes "
    .. "(magma, from 0 to the row's largest value: brighter adds more; negative values are dark).",
    table.concat((function() local f = {} for i, it in ipairs(items) do f[i] = it.file end return f end)(), ", "),
    c.heads))
  r:picture("the last layer's heads, per photo", "heads.png")
  local header = { "photo, class" }
  for h = 1, c.heads do header[#header + 1] = string.format("%d.%d", c.layers, h) end
  local align = { "l" }
  for h = 1, c.heads do align[h + 1] = "r" end
  rows = {}
  for i, item in ipairs(items) do
    local row = { item.file .. ", " .. names[best[i]] }
    for h = 1, c.heads do row[#row + 1] = string.format("%.4f", contributions[i][h]) end
    rows[#rows + 1] = row
  end
  r:paragraph("Each head's whole direct contribution to the class score (cosine units, minus the mean over "
    .. "the classes):")
  r:table(header, rows, align)
  local report_path = r:write("report.md")
  results.segmentation = seg
  data.write_text(r:path("results.json"), refract.json_encode(results, 1) .. "\n")

  print("")
  for i, item in ipairs(items) do
    local top_head, top_value = 1, -math.huge
    for h, v in ipairs(contributions[i]) do if v > top_value then top_head, top_value = h, v end end
    print(string.format("%-24s %-28s %5.1f%%   head %d.%d adds most to it", item.file, names[best[i]],
      100 * values[i][1], c.layers, top_head))
  end
  print(string.format("wrote %s in %.1f s", report_path, refract.clock() - start))
  return results
end

return M
