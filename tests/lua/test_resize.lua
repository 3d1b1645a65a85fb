-- refract.resize: bilinear with half-pixel centres against a double-precision reference
-- written here from the definition (random maps, up, down, non-integer factors, one axis,
-- single pixels, channels) and against PyTorch's F.interpolate (tests/data/bilinear,
-- made by scripts/dev/gen_bilinear_golden.py); then misuse.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")

-- The definition, in Lua's doubles: output o reads s = max((o + 0.5) * n / m - 0.5, 0),
-- i0 = floor(s), i1 = min(i0 + 1, n - 1), weight s - i0 on i1; rows and columns alike.
local function taps(o, n, m)
  local s = math.max((o + 0.5) * n / m - 0.5, 0)
  local i0 = math.floor(s)
  return i0 + 1, math.min(i0 + 1, n - 1) + 1, s - i0
end

local function reference(map, h, w)
  local h0, w0 = #map, #map[1]
  local out = {}
  for y = 0, h - 1 do
    local a, b, fy = taps(y, h0, h)
    local row = {}
    for x = 0, w - 1 do
      local c, d, fx = taps(x, w0, w)
      local top = map[a][c] * (1 - fx) + map[a][d] * fx
      local bottom = map[b][c] * (1 - fx) + map[b][d] * fx
      row[x + 1] = top * (1 - fy) + bottom * fy
    end
    out[y + 1] = row
  end
  return out
end

local function max_diff(got, want)
  local worst = 0
  for i = 1, #want do
    if type(want[i]) == "table" then
      worst = math.max(worst, max_diff(got[i], want[i]))
    else
      worst = math.max(worst, math.abs(got[i] - want[i]))
    end
  end
  return worst
end

-- against the definition: maps of values about 1, so float32 rounding is about 1e-7
for _, case in ipairs({ { 4, 4, 32, 32 }, { 5, 7, 13, 11 }, { 31, 17, 6, 5 }, { 9, 12, 9, 30 },
                        { 1, 1, 5, 3 }, { 6, 6, 1, 1 }, { 2, 3, 2, 3 }, { 16, 16, 224, 224 } }) do
  local h0, w0, h, w = table.unpack(case)
  local map = refract.randn({ h0, w0 })
  local got = refract.resize(map, h, w)
  T.eq(got:shape(), { h, w }, "shape")
  T.eq(got:dtype(), "f32")
  local d = max_diff(got:totable(), reference(map:totable(), h, w))
  T.ok(d <= 1e-6, string.format("%dx%d -> %dx%d: max |diff| %.3g from the double reference", h0, w0, h, w, d))
end
-- the same size gives the input back exactly
local same = refract.randn({ 3, 4 })
T.eq(refract.resize(same, 3, 4):totable(), same:totable(), "same size is the identity")
-- channels: each resized as its own map; integer dtypes are read as numbers
local stack = refract.randn({ 3, 5, 4 })
local got = refract.resize(stack, 7, 9)
T.eq(got:shape(), { 3, 7, 9 })
for c = 1, 3 do
  T.ok(max_diff(got[c]:totable(), reference(stack[c]:totable(), 7, 9)) <= 1e-6, "channel " .. c)
end
T.eq(refract.resize(refract.tensor({ { 0, 2 } }, "u8"), 1, 4):totable(), { { 0, 0.5, 1.5, 2 } })

-- against PyTorch, which finds the source coordinate in float32: near coordinate 16 its
-- ulp is 2e-6, so its interpolation weights are off by about that much, times the jump
-- between neighbouring values (up to twice the largest |value|)
local g = refract.read(data .. "/bilinear/bilinear.safetensors")
local md = refract.metadata(data .. "/bilinear/bilinear.safetensors")
local cases = 0
while g["in." .. cases] do
  local x, want = g["in." .. cases], g["out." .. cases]
  local out = refract.resize(x, want:shape(2), want:shape(3))
  local d = (out - want):abs():max():item()
  local tol = 4e-6 * x:abs():max():item()
  print(string.format("torch case %d (%s): max |diff| %.3g (tolerance %.3g)", cases, md["case." .. cases], d, tol))
  T.ok(d <= tol, "torch case " .. cases)
  cases = cases + 1
end
T.eq(cases, 9, "every golden case")

-- misuse
local m = refract.zeros({ 2, 2 })
T.fails(function() return refract.resize(m, 0, 2) end, "h must be an integer in 1..32768, not 0")
T.fails(function() return refract.resize(m, 2, 2.5) end, "w must be an integer")
T.fails(function() return refract.resize(m, 2) end, "w must be an integer in 1..32768, not nothing")
T.fails(function() return refract.resize(refract.zeros({ 4 }), 2, 2) end, "the map must be [h, w] or [C, h, w]")
T.fails(function() return refract.resize(refract.zeros({ 0, 3 }), 2, 2) end, "the map must be")
T.fails(function() return refract.resize({ { 1 } }, 2, 2) end, "refract.Tensor expected")
T.fails(function() return refract.resize(m, 32768, 32768) end, "over 2^28")
T.done()
