-- refract.segment: zero-shot segmentation from the decomposition (Gandelsman et al., ICLR
-- 2024, with the benchmark protocol of Chefer et al.), exactly as tests/data/tiny-gelu/
-- README.md item 5 defines it:
--   1. the image's class c* = argmax of its embedding times the classifier;
--   2. per patch, the direct contributions of every layer and head reading that patch,
--      projected on the classifier's columns (the decomposition with spatial terms,
--      layers and heads summed, projected: nothing larger than [N, C] is formed), minus
--      their mean over the classes, at c*;
--   3. upsampled bilinearly to the input size; 4. clamped and scaled to [0, 1]
--      (relevance); 5. thresholded at its mean; 6-7. scored against the ground truth
--      (the whole mask resized to the input with NEAREST) as pixel accuracy, IoU per class
--      (background, object) and average precision.
--
--   local segment = require("refract.segment")
--   local items = segment.folder({ dir = "photos" })          -- photos/masks/* if present
--   local result = segment.run(model, classifier, segment.batches_of(items, model, 8))
--
-- Classes in results count from 0 (the classifier's columns); images are listed by file.
local refract = require("refract")

local M = {}

-- Without opening it: io.open(path .. "/.") needs read permission, so a folder that may
-- be searched but not listed was "no such folder".
local function is_dir(path)
  return refract.file_type(path) == "directory"
end

local function strip_slashes(p)
  p = p:gsub("/+$", "")
  return p == "" and "/" or p
end

local function stem(path)
  return (path:gsub("%.[^./]*$", ""))
end

local function basename(path)
  return path:match("([^/]+)$") or path
end

-- {===== image sources

-- Masks under `dir` by their path relative to it without extension ("a/photo" ->
-- "dir/a/photo.png"); two files with the same stem are an error.
local function mask_index(dir)
  local ok, ds = pcall(refract.dataset, { dir = dir })
  if not ok then
    -- The dataset's own reason when the folder cannot be read (permissions), not "no masks".
    local why = tostring(ds):gsub("^dataset: ", "")
    if why:sub(1, #dir + 2) == dir .. ": " then why = why:sub(#dir + 3) end
    if why:find("no images", 1, true) then why = "no mask files (.png, .jpg, .jpeg) in it" end
    error(string.format("--masks %s: %s", dir, why), 0)
  end
  local index = {}
  for i = 1, #ds do
    local path = ds:path(i)
    local key = stem(path:sub(#dir + 2))
    if index[key] then
      error(string.format("masks %s and %s have the same name without extension", index[key], path), 0)
    end
    index[key] = path
  end
  ds:free()
  return index
end

-- The images of a folder or a file list, each with its mask when masks are known:
-- a list of { path =, file = (the name results use), picture = (a unique file name stem
-- for pictures), mask = path or nil }.
-- opts.dir: every .png/.jpg/.jpeg under it (sorted); files under the masks folder are
-- masks, never images; opts.pattern / opts.exclude: globs that pick the images under dir
-- (refract.dataset's). opts.images: a list of paths. opts.masks: the masks folder
-- (default for dir: DIR/masks if it exists). Masks match images by name without
-- extension: the path relative to dir (photo.jpg <-> masks/photo.png, a/b.jpg <->
-- masks/a/b.png), or for opts.images the file name.
function M.folder(opts)
  for key in pairs(opts) do
    if key ~= "dir" and key ~= "images" and key ~= "masks" and key ~= "pattern" and key ~= "exclude" then
      error("segment.folder: unknown option " .. tostring(key), 2)
    end
  end
  local masks = opts.masks and strip_slashes(opts.masks)
  if masks and not is_dir(masks) then error("--masks " .. masks .. ": no such folder", 0) end
  local items = {}
  if opts.dir then
    local dir = strip_slashes(opts.dir)
    if not is_dir(dir) then error("--dir " .. dir .. ": no such folder", 0) end
    if not masks and is_dir(dir .. "/masks") then masks = dir .. "/masks" end
    local ds = refract.dataset({ dir = dir, pattern = opts.pattern, exclude = opts.exclude })
    for i = 1, #ds do
      local path = ds:path(i)
      if not (masks and path:sub(1, #masks + 1) == masks .. "/") then
        items[#items + 1] = { path = path, file = path:sub(#dir + 2) }
      end
    end
    ds:free()
  else
    for _, path in ipairs(opts.images or {}) do
      items[#items + 1] = { path = path, file = path, picture = M.picture_name(basename(path)) }
    end
  end
  -- Pictures are named after the file; two files of the same name get numbered.
  local taken = {}
  for _, item in ipairs(items) do
    local name = item.picture or M.picture_name(item.file)
    local unique, n = name, 1
    while taken[unique] do
      n = n + 1
      unique = name .. "_" .. n
    end
    taken[unique] = true
    item.picture = unique
  end
  if #items == 0 then error("no images found" .. (opts.dir and (" under " .. opts.dir) or ""), 0) end
  if masks then
    local index = mask_index(masks)
    for _, item in ipairs(items) do
      local key = opts.dir and stem(item.file) or stem(basename(item.path))
      item.mask = index[key]
      if not item.mask then
        error(string.format("no mask for %s in %s (looked for %s.png, .jpg or .jpeg)", item.file,
          masks, masks .. "/" .. key), 0)
      end
    end
  end
  return items, masks
end

-- Batches of preprocessed images from a folder list: an iterator of (pixels, entries)
-- where entries[i] = { file =, labels = function(size) or nil }.
function M.batches_of(items, model, batch)
  local paths = {}
  for i, item in ipairs(items) do paths[i] = item.path end
  local ds = refract.dataset({ files = paths })
  local next_batch = ds:batches({ batch = batch, model = model })
  return function()
    local pixels, first, count = next_batch()
    if not pixels then
      ds:free()
      return nil
    end
    local entries = {}
    for k = 1, count do
      local item = items[first + k - 1]
      entries[k] = { file = item.file, picture = item.picture, labels = item.mask and function(size)
        -- A mask of another size than its image (1 x 1, or another picture's) was resized
        -- onto it and scored without a word.
        local mask, image = refract.image_load(item.mask), refract.image_load(item.path)
        local mh, mw, ih, iw = mask:shape(1), mask:shape(2), image:shape(1), image:shape(2)
        image:free()
        if mh ~= ih or mw ~= iw then
          mask:free()
          error(string.format("%s: the mask is %d x %d pixels but its image %s is %d x %d", item.mask,
            mw, mh, item.path, iw, ih), 0)
        end
        local labels = refract.mask_labels(mask, size)
        mask:free()
        return labels
      end }
    end
    return pixels, entries
  end
end

-- Batches from the ImageNet-segmentation file (refract.imagenet_seg): image i of the file
-- (counted from 0, as the paper's loader indexes it) is "NAME:i".
function M.batches_of_imagenet_seg(seg, name, model, batch, limit)
  local total = math.min(#seg, limit or #seg)
  local first = 1
  return function()
    if first > total then return nil end
    local count = math.min(batch, total - first + 1)
    local pixels = seg:pixels(first, count, model)
    local entries = {}
    for k = 1, count do
      local i = first + k - 1
      entries[k] = { file = string.format("%s:%d", name, i - 1),
                     picture = string.format("%s_%d", M.picture_name(name), i - 1), labels = function(size)
        return refract.mask_labels(seg:mask(i), size)
      end }
    end
    first = first + count
    return pixels, entries
  end, total
end

-- }=====

-- {===== maps and scores

-- Steps 1 and 2 from a decomposition `d` of a batch (model:decompose with spatial = true):
-- the chosen classes (1-based) and the patch maps [P, P] (the class's score minus the mean
-- over classes), one per image. d.attn_spatial is either already summed over layers and
-- heads and projected on the classifier, [B, N, C], or whole, [B, L, N, H, D] (summed and
-- projected here: the projection is linear, so both give the same maps). `d` is left as it
-- was; `c` is the model's config.
function M.maps_from(d, classifier, c)
  local logits = d.image_embeds:matmul(classifier)
  local best = logits:argmax(2):totable()
  logits:free()
  local spatial = d.attn_spatial
  local projected
  if spatial:ndim() == 5 then
    local summed = spatial:sum({ 2, 4 })                                     -- [B, N, D]
    projected = summed:matmul(classifier)                                    -- [B, N, C]
    summed:free()
    spatial = projected
  end
  local maps = {}
  for i, k in ipairs(best) do
    local patches = spatial[i]:slice(1, 2, c.tokens)                        -- [P*P, C]
    maps[i] = (patches:select(2, k) - patches:mean(2)):reshape(c.grid, c.grid)
    patches:free()
  end
  if projected then projected:free() end
  return best, maps
end

-- The decomposer step 1 needs: per-token terms summed over layers and heads, projected on
-- the classifier's columns (so nothing of size N x H x D is formed).
function M.decomposer(model, classifier)
  return model:decomposer({ spatial = true, reduce = { "layers", "heads" }, project = classifier })
end

-- Step 1 and 2 for a batch: the chosen classes (1-based) and the patch maps [P, P]
-- (host values of the class's score minus the mean over classes), one per image. A loop
-- passes the decomposer of M.decomposer (its fold is built once); without one, a
-- decomposer is made for this batch.
function M.patch_maps(model, pixels, classifier, decomposer)
  local d
  if decomposer then
    d = decomposer:run(pixels)
  else
    local once <close> = M.decomposer(model, classifier)
    d = once:run(pixels)
  end
  local best, maps = M.maps_from(d, classifier, model:config())
  for _, t in pairs(d) do t:free() end
  return best, maps
end

-- Steps 3 and 4: the relevance map [S, S] of a patch map.
function M.relevance(patch_map, size)
  local upsampled = refract.resize(patch_map, size, size)
  local relevance = refract.segment_relevance(upsampled)
  upsampled:free()
  return relevance
end

-- Aggregates of per-image scores, as the benchmark's code computes them: pixel accuracy
-- = sum correct / (eps + sum labeled), IoU per class = sum inter / (eps + sum union), mIoU
-- their mean, mAP the mean AP (fractions, not percent).
function M.aggregate(scores)
  local eps = 2.220446049250313e-16
  local correct, labeled, inter, union, ap = 0, 0, { 0, 0 }, { 0, 0 }, 0
  for _, s in ipairs(scores) do
    correct, labeled, ap = correct + s.correct, labeled + s.labeled, ap + s.ap
    for c = 1, 2 do
      inter[c] = inter[c] + s.inter[c]
      union[c] = union[c] + s.union[c]
    end
  end
  local iou = { inter[1] / (eps + union[1]), inter[2] / (eps + union[2]) }
  return { pixel_accuracy = correct / (eps + labeled), iou = iou, miou = (iou[1] + iou[2]) / 2,
           map = #scores > 0 and ap / #scores or 0 }
end

-- The baseline that calls every pixel the object, from each image's count of object
-- pixels: { pixel_accuracy, iou, miou }.
function M.all_foreground(object_pixels, labeled)
  local scores = {}
  for i, n in ipairs(object_pixels) do
    scores[i] = { correct = n, labeled = labeled[i], inter = { 0, n }, union = { labeled[i] - n, labeled[i] }, ap = 0 }
  end
  local a = M.aggregate(scores)
  return { pixel_accuracy = a.pixel_accuracy, iou = a.iou, miou = a.miou }
end

-- }=====

-- {===== pictures

-- Nearest upsampling of [S, S] or [S, S, 3] by an integer factor.
local function blow_up(t, k)
  if k == 1 then return t end
  local s = t:shape()
  if #s == 2 then
    return t:reshape(s[1], 1, s[2], 1):expand(s[1], k, s[2], k):contiguous():reshape(s[1] * k, s[2] * k)
  end
  return t:reshape(s[1], 1, s[2], 1, s[3]):expand(s[1], k, s[2], k, s[3]):contiguous()
    :reshape(s[1] * k, s[2] * k, s[3])
end

-- The picture scale for an input of side S: about 192 pixels, at least 1.
function M.picture_scale(size)
  return math.max(1, math.ceil(192 / size))
end

-- Writes <dir>/<name>_heatmap.png (relevance, viridis, 0 to 1), <name>_mask.png (the
-- predicted mask in white; with labels: object found white, false alarm red, missed
-- object blue, background black) and <name>_overlay.png (the heat map over the model's
-- input, the centre crop). image: f32 [3, S, S] in 0..1.
function M.write_pictures(dir, name, image, relevance, mask, labels)
  local size = relevance:shape(1)
  local k = M.picture_scale(size)
  local side = size * k
  local heat = refract.heatmap(relevance, { size = { side, side }, vmin = 0, vmax = 1 })
  refract.write_png(string.format("%s/%s_heatmap.png", dir, name), heat)
  local m = mask:float()
  local rgb
  if labels then
    local l = labels:float()
    rgb = refract.stack({ m, m * l, l }, 3)
  else
    rgb = refract.stack({ m, m, m }, 3)
  end
  refract.write_png(string.format("%s/%s_mask.png", dir, name), blow_up(rgb, k))
  local big = refract.resize(image, side, side):permute(2, 3, 1)
  refract.write_png(string.format("%s/%s_overlay.png", dir, name),
    refract.overlay(big, relevance, { alpha = 0.5, vmin = 0, vmax = 1 }))
end

-- A file name from an image's name: folders and the extension become part of it.
function M.picture_name(file)
  return (stem(file):gsub("[/:]", "_"):gsub("^%.+", ""))
end

-- }=====

-- {===== the whole run

-- Segments every batch of `batches` (an iterator of pixels, entries as batches_of
-- makes: entries hold file, picture (a file name stem) and labels) with the classifier
-- [D, C]. An iterator that has decomposed the batch itself (to use the decomposition for
-- more than segmentation) returns the chosen classes and patch maps of M.maps_from as
-- third and fourth values; otherwise they are computed here. opts: pictures = folder,
-- pictures_max = pictures of the first N images only, class_names = list, progress =
-- function(count). Returns { per_image = {...}, and with ground truth the aggregates
-- pixel_accuracy, iou, miou, map and all_foreground }.
function M.run(model, classifier, batches, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "pictures" and key ~= "pictures_max" and key ~= "class_names" and key ~= "progress" then
      error("segment.run: unknown option " .. tostring(key), 2)
    end
  end
  local c = model:config()
  if classifier:ndim() ~= 2 or classifier:shape(1) ~= c.embed_dim then
    error(string.format("the classifier is [%s], but the model's embeddings have %d dimensions: "
      .. "a classifier is [D, C] with D = %d", table.concat(classifier:shape(), ", "), c.embed_dim,
      c.embed_dim), 0)
  end
  local size = c.image_size
  local mean = refract.tensor(c.mean):reshape(3, 1, 1)
  local std = refract.tensor(c.std):reshape(3, 1, 1)
  local per_image, scores, object_pixels, labeled = {}, {}, {}, {}
  local decomposer   -- made at the first batch that brings no maps of its own
  for pixels, entries, best, maps in batches do
    if not maps then
      decomposer = decomposer or M.decomposer(model, classifier)
      best, maps = M.patch_maps(model, pixels, classifier, decomposer)
    end
    for i, entry in ipairs(entries) do
      local relevance = M.relevance(maps[i], size)
      local labels = entry.labels and entry.labels(size)
      local score, mask = refract.segment_score(relevance, labels)
      local row = { file = entry.file, class = best[i] - 1 }
      if opts.class_names then row.class_name = opts.class_names[best[i]] end
      if labels then
        row.correct, row.labeled, row.inter, row.union, row.ap =
          score.correct, score.labeled, score.inter, score.union, score.ap
        scores[#scores + 1] = score
        object_pixels[#object_pixels + 1] = labels:float():sum():item()
        labeled[#labeled + 1] = score.labeled
      end
      per_image[#per_image + 1] = row
      if opts.pictures and #per_image <= (opts.pictures_max or math.huge) then
        local image = (pixels[i] * std + mean):clamp(0, 1)
        M.write_pictures(opts.pictures, entry.picture or M.picture_name(entry.file), image, relevance, mask, labels)
        image:free()
      end
      relevance:free()
      maps[i]:free()
    end
    if opts.progress then opts.progress(#entries) end
    pixels:free()
  end
  if decomposer then decomposer:free() end
  local result = { per_image = per_image, images = #per_image, classes = classifier:shape(2),
                   image_size = size }
  if #scores > 0 then
    if #scores < #per_image then error("some images have ground truth and some have not", 0) end
    for k, v in pairs(M.aggregate(scores)) do result[k] = v end
    result.all_foreground = M.all_foreground(object_pixels, labeled)
  end
  return result
end

-- }=====

return M
