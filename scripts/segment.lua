-- refract segment: zero-shot segmentation maps, scored against masks or ImageNet-segmentation
local refract = require("refract")
local util = require("refract.util")
local data = require("refract.data")
local segment = require("refract.segment")
local provenance = require("refract.provenance")
local Progress = require("refract.progress")

local usage = [==[
usage: refract segment --model DIR --classifier FILE[:NAME]
                       (--images FILE... | --dir DIR [--pattern GLOB] [--exclude GLOB] |
                        --imagenet-seg FILE.mat)
                       [--masks DIR] [--limit N] [--pictures DIR] [--batch N]
                       [--dtype f32|f16] --out SEG.json

Zero-shot segmentation of Gandelsman et al. (ICLR 2024): each image's class is the
classifier's best column; every patch scores the direct contributions of all heads
reading it, projected on that class, minus their mean over the classes; the patch map
is upsampled bilinearly to the input, clamped at 0, scaled to [0, 1] and thresholded at
its mean. With ground truth each image is scored as the paper's benchmark code does
(the whole mask resized to the input with NEAREST; pixel accuracy, IoU of background
and object, average precision). Definitions: tests/data/tiny-gelu/README.md, item 5.

  --model DIR          a CLIP checkpoint directory
  --classifier F[:N]   a zero-shot classifier [D, C] (`refract classifier`; tensor N of
                       a .safetensors file, default classifier, or .npy)
  --images FILE...     images to segment
  --dir DIR            every .png/.jpg/.jpeg under DIR (sorted), except the masks
  --pattern GLOB       with --dir: only the images matching GLOB (a file name glob such
                       as '*.png', or with a '/' a glob of the path below DIR)
  --exclude GLOB       with --dir: leave out the images matching GLOB
  --masks DIR          ground-truth masks, matched to images by name without extension
                       (photo.jpg <-> DIR/photo.png; for --dir the path below it); 8-bit,
                       object where >= 128 (or where 1 in 0/1 masks). Default with --dir:
                       DIR/masks if it exists
  --imagenet-seg FILE  the ImageNet-segmentation benchmark, gtsegs_ijcv.mat (MATLAB v7.3),
                       read as the paper's code reads it; image i (from 0) is "FILE:i"
  --limit N            only the first N images of --imagenet-seg
  --pictures DIR       per image NAME_heatmap.png (relevance), NAME_mask.png (the mask:
                       with ground truth, found object white, false alarm red, missed
                       object blue) and NAME_overlay.png (the heat map over the model's
                       input, its centre crop)
  --batch N            images per device batch (default 16)
  --dtype f32|f16      weights on the device (default f32)
  --out FILE.json      per image {file, class (from 0), class_name when the classifier
                       records names, and with ground truth correct, labeled, inter,
                       union, ap}; with ground truth the aggregates pixel_accuracy, iou
                       (background, object), miou, map (fractions) and all_foreground
                       (the same scores for a mask that calls everything the object);
                       the provenance (version, arguments, checksums)
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, classifier = { arg = true }, images = { arg = true, many = true },
  dir = { arg = true }, masks = { arg = true }, imagenet_seg = { arg = true }, limit = { arg = true },
  pictures = { arg = true }, batch = { arg = true }, dtype = { arg = true }, out = { arg = true },
  pattern = { arg = true }, exclude = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
for _, name in ipairs({ "model", "classifier", "out" }) do
  if not opts[name] then usage_error("--" .. name .. " is required") end
end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
local sources = (opts.images and 1 or 0) + (opts.dir and 1 or 0) + (opts.imagenet_seg and 1 or 0)
if sources ~= 1 then usage_error("give exactly one of --images, --dir or --imagenet-seg") end
if opts.masks and opts.imagenet_seg then usage_error("--masks goes with --images or --dir") end
if opts.limit and not opts.imagenet_seg then usage_error("--limit goes with --imagenet-seg") end
if (opts.pattern or opts.exclude) and not opts.dir then usage_error("--pattern and --exclude go with --dir") end
local batch = util.positive_option(opts, "batch", 16, usage_error)
local limit = util.positive_option(opts, "limit", nil, usage_error)
data.check_out(opts.out, { "json" })
if opts.pictures then
  data.make_dir(opts.pictures, "--pictures")
  data.check_out(opts.pictures .. "/picture.png", { "png" }, "--pictures")
end

-- The images and masks are found before the model is loaded, so a wrong path fails fast.
local items, masks_dir, seg
if opts.imagenet_seg then
  seg = refract.imagenet_seg(opts.imagenet_seg)
else
  items, masks_dir = segment.folder({ dir = opts.dir, images = opts.images, masks = opts.masks,
                                      pattern = opts.pattern, exclude = opts.exclude })
end
local model = refract.load(opts.model, { dtype = opts.dtype or "f32" })
local classifier, class_names = require("refract.classifier").read(opts.classifier)

local batches, total
if seg then
  batches, total = segment.batches_of_imagenet_seg(seg, opts.imagenet_seg:match("([^/]+)$"), model, batch, limit)
else
  batches, total = segment.batches_of(items, model, batch), #items
end
local inputs = { opts.classifier }
if opts.imagenet_seg then inputs[#inputs + 1] = opts.imagenet_seg end
local record = provenance.new({ model = opts.model, inputs = inputs })

local progress = Progress.new(total)
local result = segment.run(model, classifier, batches, {
  pictures = opts.pictures, class_names = class_names, progress = function(n) progress:add(n) end,
})
local elapsed, rate = progress:finish()
if seg then seg:close() end
if masks_dir then result.masks = masks_dir end
result.provenance = record
data.write_text(opts.out, refract.json_encode(result, 1) .. "\n")

print(string.format("segmented %d images in %.1f s (%.2f images/s) into %s%s", result.images, elapsed, rate,
  opts.out, opts.pictures and (", pictures in " .. opts.pictures) or ""))
if result.miou then
  local b = result.all_foreground
  print(string.format("  pixel accuracy %.2f%%, mIoU %.2f%% (background %.2f%%, object %.2f%%), mAP %.2f%%",
    100 * result.pixel_accuracy, 100 * result.miou, 100 * result.iou[1], 100 * result.iou[2], 100 * result.map))
  print(string.format("  all-foreground baseline: pixel accuracy %.2f%%, mIoU %.2f%%", 100 * b.pixel_accuracy,
    100 * b.miou))
else
  print("  no ground truth (give --masks, or --dir with a masks folder), so no scores")
end
