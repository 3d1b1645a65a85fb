-- refract segment reproduces the tiny-gelu golden (item 5) from the command line: the
-- chosen class, correct, inter and union identical and AP within the README's 0.02 for
-- every PNG (the JPEG's decoder differs from libjpeg by a few levels, so its counts may
-- move by a few pixels); the same numbers through the ImageNet-segmentation layout
-- (.mat fixture; its RGBA image is stored converted to RGB, so it is checked against a
-- run on that RGB image); pictures that show what they claim; clear errors.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local mat = home .. "/tests/data/imagenet-seg/gtsegs_tiny.mat"
local exe = refract.executable()
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function run(args)
  local cmd = string.format("'%s' segment %s > '%s/out.txt' 2>&1", exe, args, tmp)
  local ok = os.execute(cmd)
  local f = io.open(tmp .. "/out.txt")
  local text = f:read("a")
  f:close()
  return ok, text
end

local golden = refract.json_read(g .. "/segmentation.json").per_image
local base = string.format("--model %s/model --classifier %s/segmentation.safetensors:classifier", g, g)

local function check_identical(got, want, what)
  T.eq(got.class, want.chosen_class, what .. ": class")
  T.eq({ got.correct, got.labeled }, { want.correct, want.labeled }, what .. ": correct, labeled")
  T.eq(got.inter, want.inter, what .. ": inter")
  T.eq(got.union, want.union, what .. ": union")
  T.near(got.ap, want.ap, 0.02, what .. ": ap")
end

-- The aggregates follow from the per-image numbers as the benchmark's code sums them.
local function check_aggregates(r)
  local c, l, i1, i2, u1, u2, ap = 0, 0, 0, 0, 0, 0, 0
  for _, p in ipairs(r.per_image) do
    c, l, ap = c + p.correct, l + p.labeled, ap + p.ap
    i1, i2, u1, u2 = i1 + p.inter[1], i2 + p.inter[2], u1 + p.union[1], u2 + p.union[2]
  end
  T.near(r.pixel_accuracy, c / l, 1e-12, "pixel_accuracy")
  T.near(r.iou, { i1 / u1, i2 / u2 }, 1e-12, "iou")
  T.near(r.miou, (i1 / u1 + i2 / u2) / 2, 1e-12, "miou")
  T.near(r.map, ap / #r.per_image, 1e-12, "map")
end

-- {===== a folder with its masks/ subfolder, pictures
local ok, text = run(string.format("%s --dir %s/images --pictures %s/pics --out %s/seg.json", base, g, tmp, tmp))
T.ok(ok, "segment --dir runs: " .. text)
T.matches(text, "mIoU", "prints the scores")
local r = refract.json_read(tmp .. "/seg.json")
T.eq(#r.per_image, 8, "eight images (mask files are not images)")
T.eq(r.masks, g .. "/images/masks")
for i, want in ipairs(golden) do
  local got = r.per_image[i]
  T.eq(got.file, want.file, "file")
  if want.file:match("%.png$") then
    check_identical(got, want, want.file)
  else
    T.eq(got.class, want.chosen_class, want.file .. ": class")
    T.ok(math.abs(got.correct - want.correct) <= 10, want.file .. ": correct within 1% (JPEG decoding)")
    T.near(got.ap, want.ap, 0.02, want.file .. ": ap")
  end
end
check_aggregates(r)
T.near(r.all_foreground.miou, 0.099853515625, 1e-12, "all-foreground baseline")
T.eq(r.provenance.command, "segment")
T.ok(r.provenance.model.files["open_clip_model.safetensors"] ~= nil, "provenance: model checksums")

-- the pictures: 6x the 32-pixel input; the mask picture's white pixels are the object
-- pixels found (inter[2]), red the false alarms, blue the missed ones
for i, p in ipairs(r.per_image) do
  local name = p.file:gsub("%.%w+$", "")
  local heat = refract.image_load(string.format("%s/pics/%s_heatmap.png", tmp, name))
  local over = refract.image_load(string.format("%s/pics/%s_overlay.png", tmp, name))
  T.eq(heat:shape(), { 192, 192, 3 }, name .. ": heat map size")
  T.eq(over:shape(), { 192, 192, 3 }, name .. ": overlay size")
  local mask = refract.image_load(string.format("%s/pics/%s_mask.png", tmp, name)):float()
  local r_, g_, b_ = mask:select(3, 1), mask:select(3, 2), mask:select(3, 3)
  local white = ((r_:eq(255)):float() * g_:eq(255):float() * b_:eq(255):float()):sum():item()
  local red = ((r_:eq(255)):float() * g_:eq(0):float() * b_:eq(0):float()):sum():item()
  local blue = ((r_:eq(0)):float() * g_:eq(0):float() * b_:eq(255):float()):sum():item()
  T.eq(white, 36 * p.inter[2], name .. ": white = object found")
  -- #(mask or label) = found + false alarms + missed
  T.eq(white + red + blue, 36 * p.union[2], name .. ": white + red + blue = union of mask and object")
  if i == 1 then
    -- the heat map follows the relevance: its brightest pixel is where relevance is 1
    T.ok(heat:float():sum(3):max():item() > 400, "the heat map has bright pixels")
  end
end
-- }=====

-- {===== a mask of another size than its image: it was resized onto the image and scored
os.execute(string.format("mkdir -p '%s/small_masks' && cp '%s/images/masks/01_large_pentagon.png' '%s/small_masks/00_exact_disc.png'",
  tmp, g, tmp))
refract.write_png(tmp .. "/small_masks/00_exact_disc.png", refract.zeros({ 8, 8 }, "u8"))
ok, text = run(string.format("%s --images %s/images/00_exact_disc.png --masks %s/small_masks --out %s/small.json",
  base, g, tmp, tmp))
T.ok(not ok and text:find("the mask is 8 x 8 pixels but its image", 1, true), "a mask of another size: " .. text)
-- }=====

-- {===== files and masks named on the command line; without masks, no scores
ok, text = run(string.format("%s --images %s/images/02_wide_triangle.png %s/images/00_exact_disc.png --masks %s/images/masks --out %s/two.json",
  base, g, g, g, tmp))
T.ok(ok, "segment --images --masks runs: " .. text)
local two = refract.json_read(tmp .. "/two.json")
check_identical(two.per_image[1], golden[3], "--images 02")
check_identical(two.per_image[2], golden[1], "--images 00")
ok, text = run(string.format("%s --images %s/images/05_gray_checker.png --out %s/nomask.json", base, g, tmp))
T.ok(ok, "segment without masks runs: " .. text)
local nomask = refract.json_read(tmp .. "/nomask.json")
T.eq(nomask.per_image[1].class, golden[6].chosen_class, "class without masks")
T.eq(nomask.per_image[1].correct, nil, "no scores without masks")
T.eq(nomask.miou, nil, "no aggregates without masks")
T.matches(text, "no ground truth")
-- }=====

-- {===== the ImageNet-segmentation layout
ok, text = run(string.format("%s --imagenet-seg %s --pictures %s/matpics --out %s/mat.json", base, mat, tmp, tmp))
T.ok(ok, "segment --imagenet-seg runs: " .. text)
local m = refract.json_read(tmp .. "/mat.json")
T.eq(#m.per_image, 8)
for i, want in ipairs(golden) do
  T.eq(m.per_image[i].file, "gtsegs_tiny.mat:" .. (i - 1), "file names count from 0")
  if not want.file:match("rgba") then check_identical(m.per_image[i], want, ".mat " .. want.file) end
end
check_aggregates(m)
T.ok(io.open(tmp .. "/matpics/gtsegs_tiny_7_overlay.png") ~= nil, "pictures named by index")
-- the RGBA image as the .mat stores it (alpha dropped first) gives the .mat's numbers
local rgba = refract.image_load(g .. "/images/06_rgba_diamond.png")
os.execute("mkdir -p '" .. tmp .. "/rgb/masks'")
refract.write_png(tmp .. "/rgb/06_rgba_diamond.png", rgba:narrow(3, 1, 3))
local src = assert(io.open(g .. "/images/masks/06_rgba_diamond.png", "rb"))
local dst = assert(io.open(tmp .. "/rgb/masks/06_rgba_diamond.png", "wb"))
dst:write(src:read("a"))
src:close()
dst:close()
ok, text = run(string.format("%s --dir %s/rgb --out %s/rgb.json", base, tmp, tmp))
T.ok(ok, "segment on the RGB image runs: " .. text)
local rgb = refract.json_read(tmp .. "/rgb.json").per_image[1]
local m6 = m.per_image[7]
T.eq({ m6.class, m6.correct, m6.inter, m6.union }, { rgb.class, rgb.correct, rgb.inter, rgb.union },
  ".mat RGBA image = the folder run on its RGB pixels")
T.near(m6.ap, rgb.ap, 1e-12)
ok = run(string.format("%s --imagenet-seg %s --limit 3 --out %s/mat3.json", base, mat, tmp))
T.ok(ok, "--limit runs")
T.eq(#refract.json_read(tmp .. "/mat3.json").per_image, 3, "--limit 3")
-- }=====

-- {===== bad invocations fail before any work, with a clear message
os.execute("mkdir -p '" .. tmp .. "/nomasks'")
refract.write_png(tmp .. "/nomasks/a.png", rgba:narrow(3, 1, 3))
os.execute("mkdir -p '" .. tmp .. "/nomasks/m' '" .. tmp .. "/nomasks/empty'")
refract.write_png(tmp .. "/nomasks/m/b.png", rgba:narrow(3, 1, 3))
for _, case in ipairs({
  { string.format("%s --dir %s/images --out %s/x.txt", base, g, tmp), "expected a .json file" },
  { string.format("%s --dir %s/images --out /nonexistent-refract/x.json", base, g), "does not exist" },
  { string.format("%s --dir %s/images --imagenet-seg %s --out %s/x.json", base, g, mat, tmp), "exactly one of" },
  { string.format("%s --out %s/x.json", base, tmp), "exactly one of" },
  { string.format("%s --dir %s/nomasks --masks %s/nomasks/m --out %s/x.json", base, tmp, tmp, tmp), "no mask for a.png" },
  { string.format("%s --dir %s/nomasks --masks %s/nomasks/empty --out %s/x.json", base, tmp, tmp, tmp), "no mask files" },
  { string.format("%s --dir %s/nope --out %s/x.json", base, tmp, tmp), "no such folder" },
  { string.format("%s --images %s/images/00_exact_disc.png --masks %s/nope --out %s/x.json", base, g, tmp, tmp), "--masks" },
  { string.format("%s --dir %s/images --limit 2 --out %s/x.json", base, g, tmp), "--limit goes with --imagenet-seg" },
  { string.format("%s --imagenet-seg %s --batch 0 --out %s/x.json", base, mat, tmp), "--batch must be a positive integer" },
  { string.format("--model %s/model --classifier %s/reference.safetensors:text_embeds --dir %s/images --out %s/x.json", g, g, g, tmp),
    "a classifier is [D, C] with D = 32" },
  { string.format("%s --imagenet-seg %s/README.md --out %s/x.json", base, g, tmp), "not an HDF5 file" },
  { string.format("--model %s/model --dir %s/images --out %s/x.json", g, g, tmp), "--classifier is required" },
}) do
  local failed_ok, out = run(case[1])
  T.ok(not failed_ok, "fails: " .. case[1])
  T.matches(out, case[2]:gsub("[%-%.%[%]%(%)]", "%%%0"), case[1])
end
-- }=====

os.execute("rm -rf '" .. tmp .. "'")
T.done()
