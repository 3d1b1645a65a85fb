-- Conversions between dtypes and places: float, half, to, host, to_device, totable /
-- tolist, item; rounding, truncation and saturation; misuse.
local refract = require("refract")
local T = require("testlib")

local t = refract.tensor({ { 1.5, -2.7 }, { 300, 0.1 } })

-- {===== dtypes

for _, dt in ipairs({ "f32", "f16", "bf16", "i64", "i32", "u8" }) do
  local c = t:to(dt)
  T.eq(c:dtype(), dt, "to " .. dt)
  T.eq(c:device(), (dt == "f32" or dt == "f16") and "device" or "host", dt .. " lives where its dtype does")
  T.eq(c:shape(), { 2, 2 })
end
T.eq(t:to("i64"):totable(), { { 1, -2 }, { 300, 0 } }, "float to integer truncates toward zero")
T.eq(t:to("i32"):totable(), { { 1, -2 }, { 300, 0 } })
T.eq(t:to("u8"):totable(), { { 1, 0 }, { 255, 0 } }, "u8 saturates")
T.eq(refract.tensor({ 1e20, -1e20, 0 / 0 }):to("i32"):totable(), { 2147483647, -2147483648, 0 },
  "saturation, NaN becomes 0")
T.eq(refract.tensor({ 1e30, 0 / 0 }):to("i64"):totable(), { math.maxinteger, 0 })
T.eq(t:half():totable(), { { 1.5, -2.69921875 }, { 300, 0.0999755859375 } }, "f16 rounds to nearest")
T.eq(t:to("bf16"):totable(), { { 1.5, -2.703125 }, { 300, 0.10009765625 } }, "bf16 rounds to nearest")
T.eq(t:half():float():dtype(), "f32")
T.eq(t:float():totable(), t:totable(), "float of f32 copies")
T.eq(t:to("float32"):dtype(), "f32", "long dtype names")
T.eq(t:to("F16"):dtype(), "f16", "case-insensitive dtype names")
local ids = refract.tensor({ 49406, 320, 49407 }, "i64")
T.eq(ids:float():totable(), { 49406, 320, 49407 })
T.eq(ids:to("i32"):totable(), { 49406, 320, 49407 })
T.eq(ids:to("i32"):to("i64"):totable(), { 49406, 320, 49407 })
T.eq(refract.tensor({ 2 ^ 53 + 1 }, "i64"):to("i64"):totable(), { 2 ^ 53 + 1 }, "same dtype copies bits")
T.eq(math.type(ids:totable()[1]), "integer", "integer dtypes give Lua integers")
T.eq(math.type(t:totable()[1][1]), "float")

-- }=====

-- {===== places

local h = t:host()
T.eq(h:device(), "host")
T.eq(h:dtype(), "f32")
T.eq(h:totable(), t:totable())
local d = ids:to_device()
T.eq(d:device(), "device")
T.eq(d:dtype(), "i64")
T.eq(d:totable(), { 49406, 320, 49407 })
T.eq(d:host():totable(), { 49406, 320, 49407 })
T.eq(h:to_device():device(), "device")
T.eq((h + 1):device(), "device", "math on host floats runs on the device")
T.eq(tostring(ids), "refract.Tensor(i64 [3], host: 49406 320 49407)")
T.eq(tostring(d), "refract.Tensor(i64 [3], device: 49406 320 49407)")
T.eq(tostring(refract.arange(10)), "refract.Tensor(f32 [10], device: 1 2 3 4 5 6 7 8 ...)")
T.eq(tostring(refract.tensor(2.5)), "refract.Tensor(f32 [], device: 2.5)")
T.eq(tostring(refract.zeros(0)), "refract.Tensor(f32 [0], device:)")
T.eq(tostring(t:half()), "refract.Tensor(f16 [2, 2], device: 1.5 -2.69922 300 0.0999756)")

-- }=====

-- {===== to Lua values

T.eq(t:tolist(), t:totable(), "tolist = totable")
T.eq(refract.tensor(3):totable(), 3.0, "0-d totable is a number")
T.eq(refract.tensor({ { 4 } }):item(), 4.0)
T.eq(ids[2]:item(), 320)
T.eq(math.type(ids[2]:item()), "integer")
T.eq(refract.zeros(2, 0, 3):totable(), { {}, {} })

-- }=====

-- {===== misuse

T.fails(function() return t:item() end, "item() needs a tensor with exactly one element, got [2, 2]")
T.fails(function() return t:to() end, "bad argument #1 to 'to' (value expected)")
T.fails(function() return t:to("f64") end, "unknown dtype 'f64' (f32, f16, bf16, i64, i32, u8)")
T.fails(function() return t:to(3) end, "unknown dtype '3'")
T.fails(function() return refract.Tensor.float("x") end, "refract.Tensor expected, got string")
local f = refract.zeros(2)
f:free()
for _, name in ipairs({ "float", "half", "to", "host", "to_device", "totable", "tolist", "item",
  "shape", "dtype", "ndim", "numel", "device" }) do
  T.fails(function() return f[name](f, "f32") end, "tensor has been freed")
end
T.fails(function() return #f end, "tensor has been freed")

-- }=====

-- totable counts the tables it makes as well as the numbers: a [1, 2^31, 0] tensor holds
-- nothing but would be 2^31 empty tables (the Lua fuzzer's 32 GiB allocation).
T.fails(function() return refract.zeros({ 1, 1 << 31, 0 }):totable() end, "more than 2^26 elements or nested tables")
T.fails(function() return refract.zeros({ 1 << 27, 0 }, "u8"):totable() end, "nested tables")
T.eq(refract.zeros({ 2, 3, 0 }):totable(), { { {}, {}, {} }, { {}, {}, {} } }, "empty rows are kept")
T.eq(refract.zeros({ 0, 1 << 40 }):totable(), {}, "nothing below an empty first dimension")
T.done()
