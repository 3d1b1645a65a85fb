-- Pictures out: refract.write_png round trips through refract.image_load (every channel
-- count, u8 and f32, odd sizes), refract.heatmap (colormap ends, the lookup rule, vmin/vmax,
-- bilinear resizing with half-pixel centres against a reference written here), and
-- refract.overlay (alpha 0 is the image, alpha 1 the heatmap), plus every misuse message.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local tmp = T.tmp

-- A [h, w, c] (or [h, w] with c = nil) table of bytes from a formula.
local function pattern(h, w, c, f)
  local t = {}
  for y = 1, h do
    t[y] = {}
    for x = 1, w do
      if c then
        t[y][x] = {}
        for k = 1, c do t[y][x][k] = f(y, x, k) end
      else
        t[y][x] = f(y, x, 1)
      end
    end
  end
  return t
end

local function bytes(y, x, k) return (y * 37 + x * 11 + k * 71) % 256 end

-- {===== write_png round trips

-- u8 images of every channel count (a [H, W] image comes back as [H, W, 1])
for _, c in ipairs({ false, 1, 2, 3, 4 }) do
  for _, size in ipairs({ { 1, 1 }, { 5, 7 }, { 16, 3 } }) do
    local h, w = size[1], size[2]
    local img = refract.tensor(pattern(h, w, c or nil, bytes), "u8")
    local path = tmp(string.format("u8_%s_%dx%d.png", tostring(c), h, w))
    refract.write_png(path, img)
    local back = refract.image_load(path)
    local what = string.format("u8 %dx%d, %s channels", h, w, tostring(c or "no"))
    T.eq(back:shape(), { h, w, c or 1 }, what .. " shape")
    T.eq(back:totable(), pattern(h, w, c or 1, bytes), what .. " pixels")
  end
end

-- f32 on the device: values in [0, 1] scale to 0..255 rounded, outside values clamp
local f = refract.tensor({ { { 0, 0.5, 1 }, { -0.5, 1.7, 0.2 } } })
T.eq(f:device(), "device")
refract.write_png(tmp("f32.png"), f)
T.eq(refract.image_load(tmp("f32.png")):totable(), { { { 0, 128, 255 }, { 0, 255, 51 } } }, "f32 pixels")
-- a gray f32 [H, W]
refract.write_png(tmp("f32_gray.png"), refract.tensor({ { 0.25, 0.75 } }))
T.eq(refract.image_load(tmp("f32_gray.png")):totable(), { { { 64 }, { 191 } } }, "f32 gray pixels")
-- a decoded image survives a round trip bit for bit (RGBA, as stored)
local rgba = refract.image_load(data .. "/tiny-gelu/images/06_rgba_diamond.png")
T.eq(rgba:shape(3), 4)
refract.write_png(tmp("rgba.png"), rgba)
T.eq(refract.image_load(tmp("rgba.png")):totable(), rgba:totable(), "RGBA image round trip")
-- writing replaces an existing file
refract.write_png(tmp("f32.png"), refract.tensor({ { 1 } }))
T.eq(refract.image_load(tmp("f32.png")):totable(), { { { 255 } } }, "overwritten file")

-- }=====

-- {===== heatmap

local ends = {
  viridis = { { 68, 1, 84 }, { 253, 231, 37 } },
  magma = { { 0, 0, 4 }, { 252, 253, 191 } },
  gray = { { 0, 0, 0 }, { 255, 255, 255 } },
}
local values = refract.tensor({ { -2, 0.5 }, { 3, 1 } })
for name, e in pairs(ends) do
  local h = refract.heatmap(values, { colormap = name }):totable()
  T.eq(h[1][1], e[1], name .. ": the minimum takes the first colour")
  T.eq(h[2][1], e[2], name .. ": the maximum takes the last colour")
end
T.eq(refract.heatmap(values):totable()[1][1], ends.viridis[1], "viridis is the default")

-- the lookup: t = (v - vmin) / (vmax - vmin), entry min(floor(256 t), 255); gray entry k is k
local ramp = refract.tensor({ { 0, 0.25, 0.5, 0.999, 1, 0.1 } })
local g = refract.heatmap(ramp, { colormap = "gray" }):totable()[1]
local want = { 0, 64, 128, 255, 255, 25 }
for i = 1, #want do T.eq(g[i], { want[i], want[i], want[i] }, "gray lookup " .. i) end
-- vmin / vmax clamp values beyond them to the ends
local clamp = refract.heatmap(ramp, { colormap = "gray", vmin = 0.25, vmax = 0.5 }):totable()[1]
T.eq({ clamp[1][1], clamp[2][1], clamp[3][1], clamp[5][1] }, { 0, 0, 255, 255 }, "vmin/vmax clamp")
-- a flat map has no range: everything takes the first colour
local flat = refract.heatmap(refract.tensor({ { 2, 2 }, { 2, 2 } }), { colormap = "magma" }):totable()
T.eq(flat[2][2], ends.magma[1], "a flat map")
-- infinities do not set the range (which made every pixel one colour): they clamp
local inf = math.huge
local withinf = refract.heatmap(refract.tensor({ { -inf, 0, 0.5, 1, inf } }), { colormap = "gray" }):totable()[1]
T.eq({ withinf[1][1], withinf[2][1], withinf[3][1], withinf[4][1], withinf[5][1] }, { 0, 0, 128, 255, 255 },
  "the range of the finite values; infinities at the ends")
-- integer maps on the host work too
local ints = refract.heatmap(refract.tensor({ { 0, 255 } }, "i64"), { colormap = "gray" }):totable()
T.eq(ints, { { { 0, 0, 0 }, { 255, 255, 255 } } }, "an i64 host map")

-- Bilinear resizing with half-pixel centres, written out here: output o of an axis reads
-- source s = max((o + 0.5) * in / out - 0.5, 0) between floor(s) and floor(s) + 1 (clamped).
local function axis(o, n_in, n_out)
  local s = math.max((o + 0.5) * n_in / n_out - 0.5, 0)
  local i0 = math.min(math.floor(s), n_in - 1)
  return i0 + 1, math.min(i0 + 1, n_in - 1) + 1, s - i0
end
local function resize(m, out_h, out_w)
  local h, w, r = #m, #m[1], {}
  for y = 0, out_h - 1 do
    local y0, y1, fy = axis(y, h, out_h)
    r[y + 1] = {}
    for x = 0, out_w - 1 do
      local x0, x1, fx = axis(x, w, out_w)
      local top = m[y0][x0] + fx * (m[y0][x1] - m[y0][x0])
      local bottom = m[y1][x0] + fx * (m[y1][x1] - m[y1][x0])
      r[y + 1][x + 1] = top + fy * (bottom - top)
    end
  end
  return r
end
local map = { { 0, 1, 5 }, { 2, 3, 4 } }
for _, size in ipairs({ { 7, 5 }, { 12, 8 }, { 3, 2 }, { 2, 1 } }) do
  local W, H = size[1], size[2]
  local got = refract.heatmap(refract.tensor(map), { size = { W, H }, colormap = "gray", vmin = 0, vmax = 5 })
  T.eq(got:shape(), { H, W, 3 }, "resized shape")
  local ref, bad = resize(map, H, W), 0
  local t = got:totable()
  for y = 1, H do
    for x = 1, W do
      local k = math.min(math.floor(256 * ref[y][x] / 5), 255)
      -- one level of slack where the exact value sits on a boundary between two entries
      if math.abs(t[y][x][1] - k) > (math.abs(256 * ref[y][x] / 5 - k) < 1e-9 and 1 or 0) then bad = bad + 1 end
    end
  end
  T.eq(bad, 0, string.format("bilinear %dx%d pixels off the reference", W, H))
end

-- }=====

-- {===== overlay

local disc = refract.image_load(data .. "/tiny-gelu/images/00_exact_disc.png")
local H, W = disc:shape(1), disc:shape(2)
local patches = refract.tensor(pattern(4, 4, nil, function(y, x) return y * 4 + x end))
local heat = refract.heatmap(patches, { size = { W, H }, colormap = "magma" })
T.eq(refract.overlay(disc, patches, { alpha = 0 }):totable(), disc:totable(), "alpha 0 is the image")
T.eq(refract.overlay(disc, patches, { alpha = 1, colormap = "magma" }):totable(), heat:totable(),
  "alpha 1 is the heatmap")
-- the default alpha is 0.5: floor(0.5 image + 0.5 heat + 0.5)
local half = refract.overlay(disc, patches, { colormap = "magma" }):totable()
local img, ht = disc:totable(), heat:totable()
local bad = 0
for y = 1, H do
  for x = 1, W do
    for k = 1, 3 do
      if half[y][x][k] ~= math.floor(0.5 * img[y][x][k] + 0.5 * ht[y][x][k] + 0.5) then bad = bad + 1 end
    end
  end
end
T.eq(bad, 0, "alpha 0.5 blend")
-- gray images are replicated, alpha channels dropped; f32 images are scaled
local gray = refract.tensor(pattern(3, 2, 1, bytes), "u8")
T.eq(refract.overlay(gray, patches, { alpha = 0 }):totable(),
  pattern(3, 2, 3, function(y, x) return bytes(y, x, 1) end), "gray image")
local flat_rgba = refract.tensor(pattern(2, 2, 4, bytes), "u8")
T.eq(refract.overlay(flat_rgba, patches, { alpha = 0 }):totable(), pattern(2, 2, 3, bytes), "RGBA image")
T.eq(refract.overlay(refract.tensor({ { { 1, 0, 0.5 } } }), patches, { alpha = 0 }):totable(),
  { { { 255, 0, 128 } } }, "f32 image")
T.eq(refract.overlay(rgba, patches):shape(), { rgba:shape(1), rgba:shape(2), 3 }, "overlay shape")
-- and the picture can be written
refract.write_png(tmp("overlay.png"), refract.overlay(disc, patches))
T.eq(refract.image_load(tmp("overlay.png")):shape(), { H, W, 3 })

-- }=====

-- {===== misuse

local rgb = refract.tensor(pattern(2, 2, 3, bytes), "u8")
T.fails(function() refract.write_png(tmp("x.png"), refract.tensor({ 1, 2 })) end,
  "write_png: an image is a tensor [H, W] or [H, W, C] with C = 1, 2, 3 or 4 and sides in 1..32768, not [2]")
T.fails(function() refract.write_png(tmp("x.png"), refract.tensor(pattern(1, 1, 5, bytes), "u8")) end,
  "not [1, 1, 5]")
T.fails(function() refract.write_png(tmp("x.png"), refract.tensor({ { 1 } }, "i32")) end,
  "write_png: an image is u8 (0..255) or float (0..1), not I32")
-- A NaN has no 8-bit value: an error naming the pixel, and no file.
local with_nan = refract.zeros({ 2, 3, 3 }):totable()
with_nan[2][3][2] = 0 / 0
T.fails(function() refract.write_png(tmp("nan.png"), refract.tensor(with_nan)) end,
  "write_png: the image is NaN at row 2, column 3, channel 2")
T.eq(io.open(tmp("nan.png")), nil, "no file written for a NaN image")
T.fails(function() refract.overlay(refract.tensor(with_nan), refract.zeros({ 1, 1 })) end,
  "overlay: the image is NaN at row 2, column 3, channel 2")
T.fails(function() refract.write_png(data .. "/no/such/dir/x.png", rgb) end, "write_png: " .. data .. "/no/such/dir/x.png")
T.fails(function() refract.write_png(tmp("x.png")) end, "bad argument #2 to 'write_png' (refract.Tensor expected, got no value)")
T.fails(function() refract.write_png(nil, rgb) end, "bad argument #1 to 'write_png' (string expected, got nil)")
local freed = refract.tensor({ { 1 } })
freed:free()
T.fails(function() refract.write_png(tmp("x.png"), freed) end, "tensor has been freed")
T.fails(function() refract.heatmap(refract.tensor({ 1, 2 })) end,
  "heatmap: values must be a 2-d tensor [h, w] with sides in 1..32768, not [2]")
T.fails(function() refract.heatmap(values, { colormap = "jet" }) end,
  "heatmap: unknown colormap 'jet' (viridis, magma, gray)")
T.fails(function() refract.heatmap(values, { colormap = 3 }) end, "heatmap: unknown colormap '3'")
T.fails(function() refract.heatmap(values, { colour = "gray" }) end,
  "heatmap: unknown option 'colour' (size, colormap, vmin, vmax)")
T.fails(function() refract.heatmap(values, { map = "gray" }) end, "heatmap: unknown option 'map'")
T.fails(function() refract.heatmap(values, { alpha = 0.5 }) end, "heatmap: unknown option 'alpha'")
T.fails(function() refract.heatmap(values, "gray") end, "heatmap: options must be a table")
T.fails(function() refract.heatmap(values, { vmin = 3, vmax = 1 }) end, "heatmap: vmin (3.0) is above vmax (1.0)")
T.fails(function() refract.heatmap(values, { vmin = 5 }) end, "heatmap: vmin (5.0) is above vmax (3.0)")
T.fails(function() refract.heatmap(values, { vmin = "low" }) end, "heatmap: vmin must be a number, not string")
T.fails(function() refract.heatmap(values, { vmax = 0 / 0 }) end, "heatmap: vmax must be a number, not NaN")
for _, size in ipairs({ { 0, 3 }, { 3 }, { 2.5, 3 }, { 40000, 2 }, "big", { "3", 3 } }) do
  T.fails(function() refract.heatmap(values, { size = size }) end,
    "heatmap: size must be {W, H}, two integers in 1..32768")
end
T.fails(function() refract.heatmap(values, { size = { 32768, 32768 } }) end, "2^28 pixels at most")
T.fails(function() refract.overlay(rgb, values, { alpha = 1.5 }) end, "overlay: alpha must be in [0, 1], not 1.5")
T.fails(function() refract.overlay(rgb, values, { size = { 2, 2 } }) end,
  "overlay: unknown option 'size' (alpha, colormap, vmin, vmax)")
T.fails(function() refract.overlay(refract.tensor({ 1, 2 }), values) end, "overlay: an image is a tensor")
T.fails(function() refract.overlay(rgb, refract.tensor({ { { 1 } } })) end, "overlay: values must be a 2-d tensor")
T.fails(function() refract.overlay(rgb) end, "bad argument #2 to 'overlay' (refract.Tensor expected, got nil)")

-- }=====

T.done()
