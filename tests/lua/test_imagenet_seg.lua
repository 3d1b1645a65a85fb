-- The ImageNet-segmentation file reader (refract.imagenet_seg) on a fixture in the
-- benchmark's layout (tests/data/imagenet-seg): images and masks as the paper's loader
-- reads them (transposed back), the model's pixels equal to the golden's, and errors.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local g = data .. "/tiny-gelu"
local ref = refract.read(g .. "/reference.safetensors")
local index = refract.json_read(g .. "/images/index.json")

local seg <close> = refract.imagenet_seg(data .. "/imagenet-seg/gtsegs_tiny.mat")
T.eq(#seg, 8, "eight images")
for i, e in ipairs(index) do
  local image, mask = seg:image(i), seg:mask(i)
  T.eq(image:shape(), { e.height, e.width, 3 }, e.file .. ": image [H, W, 3]")
  T.eq(mask:shape(), { e.height, e.width }, e.file .. ": mask [H, W]")
  -- the mask is the golden's PNG mask with 255 -> 1
  local png = refract.image_load(g .. "/images/masks/" .. e.file:gsub("%.%w+$", ".png"))
  local want = png:reshape(e.height, e.width):float():eq(255):float()
  T.eq((mask:float() - want):abs():max():item(), 0, e.file .. ": mask values")
  -- stored RGB: a PNG's decoded pixels (alpha dropped, gray replicated)
  if e.file:match("%.png$") then
    local decoded = refract.image_load(g .. "/images/" .. e.file):float()
    local rgb = decoded:shape(3) == 1 and decoded:expand(e.height, e.width, 3)
      or decoded:narrow(3, 1, 3)
    T.eq((image:float() - rgb):abs():max():item(), 0, e.file .. ": pixels as stored")
  end
end

-- what the model sees: the golden's preprocessed pixels (the RGBA image converted first)
local model <close> = refract.load(g .. "/model")
local pixels = seg:pixels(1, 8, model)
T.eq(pixels:shape(), { 8, 3, 32, 32 })
for i, e in ipairs(index) do
  local want = e.file:match("rgba") and ref.pixels_convert_rgb_first[i] or ref.pixels[i]
  T.eq((pixels[i] - want):abs():max():item(), 0, e.file .. ": preprocessed pixels")
end
T.eq((seg:pixels(3, 2, model) - pixels:narrow(1, 3, 2)):abs():max():item(), 0, "a range of images")

-- errors
T.fails(function() return seg:image(9) end, "image 9 is out of range (1..8)")
T.fails(function() return seg:mask(0) end, "image 0 is out of range")
T.fails(function() return seg:pixels(8, 2, model) end, "stay within the file")
T.fails(function() return refract.imagenet_seg(g .. "/README.md") end, "README.md: not an HDF5 file")
T.fails(function() return refract.imagenet_seg(g .. "/nope.mat") end, "nope.mat: cannot open")
T.fails(function() return refract.imagenet_seg(data .. "/imagenet-seg/without_gt.mat") end,
  "without_gt.mat: no dataset /value/gt")
-- files claiming sizes they do not store (scripts/dev/make_imagenet_seg_hostile.py): the
-- reader allocated the claimed size first (2^40 references, 16 GiB of channels), which
-- aborts the sanitizer build
local dir = data .. "/imagenet-seg/"
local wide <close> = refract.imagenet_seg(dir .. "claims_columns.mat")
T.eq(#wide, 1, "only column 0 of [1, 2^40] references is read")
T.eq(wide:mask(1):totable(), { { 1, 1, 1, 1 }, { 1, 1, 1, 1 }, { 1, 1, 1, 1 }, { 1, 1, 1, 1 } })
local chans <close> = refract.imagenet_seg(dir .. "claims_channels.mat")
T.fails(function() return chans:image(1) end, "image 0 has 1073741824 channels")
local cell <close> = refract.imagenet_seg(dir .. "claims_cell.mat")
T.fails(function() return cell:mask(1) end, "the mask cell claims 1099511627776 references (at most 4096)")
T.fails(function() return refract.imagenet_seg(dir .. "claims_images.mat") end,
  "claims_images.mat: /value/img claims 2097152 images (at most 1048576)")
seg:close()
T.fails(function() return #seg end, "closed")
T.done()
