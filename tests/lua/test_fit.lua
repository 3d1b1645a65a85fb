-- Models and batches against the device's memory budget (lavapipe reports a 2 GiB heap:
-- ViT-L/14 in f32 and ViT-H/14 in f16 only just fit). Run with a small budget
-- (REFRACT_HEAP_BUDGET, set by CMakeLists.txt) so that the tiny-gelu model meets the same
-- limits: weights that cannot fit are refused before any upload with what they need and
-- whether f16 fits; batch sizes follow what the budget has left; a batch that does not
-- fit says how many do, and a model with no room for one image says so.
local refract = require("refract")
local T = require("testlib")

local dir = refract.home() .. "/tests/data/tiny-gelu/model"
local budget = tonumber(os.getenv("REFRACT_HEAP_BUDGET"))
assert(budget, "run with REFRACT_HEAP_BUDGET set (tests/CMakeLists.txt)")

-- 4 KB tensors until no more fit: the device left with no room for an image.
local function fill_device()
  local fillers = {}
  while true do
    local fok, t = pcall(refract.zeros, { 1024 })
    if not fok then return fillers end
    fillers[#fillers + 1] = t
  end
end

-- The weights, the budget's room for batches, and batches chosen from it.
local m = refract.load(dir, { vision_only = true })
local c = m:config()
local weights = refract.memory().in_use
local px = refract.randn({ 16, 3, c.image_size, c.image_size }, 1)
collectgarbage()
-- A decomposer's room is what the budget has left beside the weights and its own fold.
local function spatial_fits()
  local dec = m:decomposer({ spatial = true })
  local b = dec:max_batch()
  dec:free()
  return b
end
local fits = spatial_fits()
T.ok(fits >= 2 and fits < 16, "room for a few spatial decompositions: " .. fits)
local ok, err = pcall(m.decompose, m, px, { spatial = true })
T.ok(not ok, "16 spatial decompositions do not fit")
T.matches(tostring(err), "a batch of 16 images does not fit: at most " .. fits .. " fit per call here",
  "the message says how many fit")
local part = px:slice(1, 1, fits)
local d = m:decompose(part, { spatial = true })
T.eq(d.attn_spatial:shape(1), fits, "the batch it names fits")
for _, t in pairs(d) do t:free() end
local e = m:encode_images(px)          -- encode splits the batch by itself
T.eq(e:shape(1), 16, "encode_images splits a batch that does not fit at once")
e:free()
collectgarbage()
local filler = refract.zeros({ 100000 })
T.ok(spatial_fits() < fits, "the batch follows the free memory")
filler:free()

-- No room left for one image.
filler:free()
local fillers = fill_device()
ok, err = pcall(m.encode_images, m, part)
T.ok(not ok, "nothing fits")
T.matches(tostring(err), "encode: one image needs about", "encode says what one image needs")
T.matches(tostring(err), "nothing fits; store the weights as f16 or free tensors", "and what to do")
ok, err = pcall(m.decompose, m, part)
T.matches(tostring(err), "decompose: one image needs about", "decompose says what one image needs")
ok, err = pcall(m.decompose, m, part, { spatial = true })
T.matches(tostring(err), "attn_spatial keeps every layer, token and head: reduce =", "a spatial one says how to shrink it")
for _, t in ipairs(fillers) do t:free() end
m:free()

-- With f16 weights already, the advice is not to store them as f16.
m = refract.load(dir, { vision_only = true, dtype = "f16" })
fillers = fill_device()
ok, err = pcall(m.encode_images, m, part)
T.matches(tostring(err), "nothing fits; free tensors, or use a device with more memory", "f16 weights: other advice")
for _, t in ipairs(fillers) do t:free() end
m:free()

-- Weights larger than the budget are refused before uploading anything.
local small = math.floor(weights * 0.8)
local r = T.run(string.format("REFRACT_HEAP_BUDGET=%d %s -e 'require(\"refract\").load(\"%s\", "
  .. "{ vision_only = true })'", small, refract.executable(), dir))
T.refused(r, "the weights take 0.6 MiB on the device as F32, more than the 0.5 MiB free", "f32 too large")
T.matches(r.err, "as f16 they take 0.3 MiB: load them with dtype f16", "f16 is advised when it fits")
r = T.run(string.format("REFRACT_HEAP_BUDGET=%d %s -e 'require(\"refract\").load(\"%s\", "
  .. "{ vision_only = true, dtype = \"f16\" }); print(\"loaded\")'", small, refract.executable(), dir))
T.ok(r.ok and r.out:find("loaded", 1, true), "and f16 loads: " .. r.err)
r = T.run(string.format("REFRACT_HEAP_BUDGET=%d %s -e 'require(\"refract\").load(\"%s\", "
  .. "{ dtype = \"f16\" })'", 65536, refract.executable(), dir))
T.refused(r, "more than the 0.1 MiB free", "nothing fits at all")
T.done()
