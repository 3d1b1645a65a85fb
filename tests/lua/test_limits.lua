-- Arithmetic that cannot overflow (issue 10, item 3): shapes whose element count or byte
-- size overflows are refused even when a dimension is 0; slice steps, lengths and indices
-- at the INT64 limits; and the zero-size results the README documents (a slice whose stop
-- comes before its start, narrow with length 0) are empty tensors that the operations
-- take like any other.
local refract = require("refract")
local T = require("testlib")

local big = 1 << 62

-- {===== shapes

T.fails(function() refract.zeros({ 0, big, big }) end, "too large")
T.fails(function() refract.zeros(0, big, big) end, "too large")
T.fails(function() refract.ones({ big, big, 0 }, "u8") end, "too large")
T.fails(function() refract.full({ 0, big, 4 }, 1) end, "too large")
T.fails(function() refract.zeros({ 0 }):reshape({ 0, big, big }) end, "too large")
T.fails(function() refract.zeros({ 0 }):reshape({ 0, big, -1 }) end, "no size for -1")
T.fails(function() refract.zeros({ 0, 1 }):expand({ big, 0, big }) end, "too large")
T.fails(function() refract.rand({ 0, big, big }) end, "too large")
-- A host tensor larger than the machine is refused before the allocator is asked (a
-- sanitizer build's allocator aborts the process on such a request).
T.fails(function() refract.zeros({ 1 << 40 }, "i64") end, "larger than the host memory refract may use")
T.fails(function() refract.arange(24, "i64"):reshape(2, 3, 4):expand(1 << 31, 2, 3, 4) end,
  "larger than the host memory refract may use")
-- REFRACT_HOST_BUDGET lowers that bound (the fuzzers set it); a bad value is refused.
local run = T.run(string.format("REFRACT_HOST_BUDGET=1048576 %s -e 'refract.zeros({ 1 << 17 }, \"i64\"):free(); "
  .. "refract.zeros({ (1 << 17) + 1 }, \"i64\")'", refract.executable()))
T.refused(run, "a host tensor of 1048584 bytes is larger than the host memory refract may use (1048576 bytes", "the budget bounds host tensors")
run = T.run(string.format("REFRACT_HOST_BUDGET=1e9 %s -e 'refract.zeros({ 2 })'", refract.executable()))
T.refused(run, "REFRACT_HOST_BUDGET=1e9: expected a number of bytes, at least 65536", "a bad budget is refused")
-- A tensor from tables that hold themselves: 8 levels of 256 rows, 2^64 elements (the
-- count wrapped to 0 and the values were written past a one-element buffer).
local level = 1
for _ = 1, 8 do
  local up = {}
  for i = 1, 256 do up[i] = level end
  level = up
end
T.fails(function() refract.tensor(level) end, "too large")
-- cat whose joined dimension overflows.
local wide, half = refract.zeros({ 1 << 61, 0 }, "u8"), refract.zeros({ 1 << 60, 0 }, "u8")
T.fails(function() refract.cat({ wide, wide, wide, wide, wide }) end, "overflows")
T.fails(function() refract.cat({ wide, wide }) end, "too large")
T.eq(refract.cat({ wide, half }):shape(), { 3 << 60, 0 }, "cat up to the limit")

-- }=====

-- {===== indices, lengths, steps

local v = refract.arange(5)
T.eq(v:slice(1, 1, 5, math.maxinteger):totable(), { 1 }, "slice step math.maxinteger: one element")
T.eq(v:slice(1, 5, 1, math.mininteger):totable(), { 5 }, "slice step math.mininteger: one element")
T.eq(v:slice(1, 1, 5, math.mininteger):shape(), { 0 }, "a negative step from 1 to 5 is empty")
T.eq(v:slice(1, -1, 1, -1):totable(), { 5, 4, 3, 2, 1 }, "reversed")
T.eq(v:slice(1, 2, 5, 2):totable(), { 2, 4 }, "step 2")
T.fails(function() v:slice(1, math.mininteger, 5) end, "out of range")
T.fails(function() v:slice(1, 1, math.maxinteger) end, "out of range")
T.fails(function() v:slice(1, 1, 5, 0) end, "step must not be zero")
T.fails(function() v:narrow(1, 2, math.maxinteger) end, "passes the end of dimension 1")
T.fails(function() v:narrow(1, math.mininteger, 0) end, "out of range")
T.fails(function() v:narrow(1, 1, math.mininteger) end, "non-negative")
T.fails(function() v:select(1, math.mininteger) end, "out of range")
T.fails(function() v:index(1, { math.mininteger }) end, "out of range")
T.fails(function() v:index(1, { math.maxinteger }) end, "out of range")
T.fails(function() v:index(1, { 2^60 }) end, "out of range")
T.fails(function() return v[math.mininteger] end, "out of range")
T.fails(function() v:sum(math.mininteger) end, "out of range")
T.fails(function() v:transpose(math.maxinteger, 1) end, "out of range")

-- Float to integer conversions saturate (NaN is 0) instead of being undefined.
local odd = refract.tensor({ 0 / 0, 1e30, -1e30, 3.7, -3.7 })
T.eq(odd:to("i64"):totable(), { 0, math.maxinteger, math.mininteger, 3, -3 }, "f32 -> i64 saturates")
T.eq(odd:to("i32"):totable(), { 0, 2147483647, -2147483648, 3, -3 }, "f32 -> i32 saturates")
T.eq(odd:to("u8"):totable(), { 0, 255, 0, 3, 0 }, "f32 -> u8 saturates")
T.fails(function() refract.full({ 2 }, 1e30, "i32") end, "not a valid i32 value")
T.fails(function() refract.tensor({ 0 / 0 }, "i64") end, "not a valid i64 value")

-- }=====

-- {===== empty results (README: "empty when stop is before start"; narrow of length 0)

local m = refract.arange(1, 12):reshape({ 3, 4 })
local e1 = m:slice(1, 3, 2)
T.eq(e1:shape(), { 0, 4 }, "slice with stop before start")
T.eq(m:slice(2, 4, 1):shape(), { 3, 0 }, "slice along dimension 2")
T.eq(m:slice(1, 4, 3):shape(), { 0, 4 }, "an empty slice may start just past the end")
local e2 = m:narrow(1, 1, 0)
T.eq(e2:shape(), { 0, 4 }, "narrow of length 0")
T.eq(m:narrow(1, 4, 0):shape(), { 0, 4 }, "narrow of length 0 just past the end")
-- What an empty tensor does.
T.eq(e1:totable(), {}, "totable of [0, 4]")
T.eq(e1:sum():item(), 0, "sum of nothing is 0")
T.eq(e1:sum(1):totable(), { 0, 0, 0, 0 }, "sum over the empty dimension")
T.eq(e1:sum(2):shape(), { 0 }, "sum over the other dimension")
T.eq((e1 + 1):shape(), { 0, 4 }, "elementwise")
T.eq((e1 * e2):shape(), { 0, 4 }, "elementwise of two empty tensors")
T.eq(e1:t():shape(), { 4, 0 }, "transpose")
T.eq(e1:reshape({ 2, 0, 2 }):shape(), { 2, 0, 2 }, "reshape")
T.eq(e1:flatten():shape(), { 0 }, "flatten")
T.eq(refract.cat({ e1, m }):shape(), { 3, 4 }, "cat with an empty tensor")
T.eq(e1:to("i64"):shape(), { 0, 4 }, "converted")
T.eq(e1:host():shape(), { 0, 4 }, "to the host")
T.eq(e1:clone():shape(), { 0, 4 }, "clone")
T.eq(e1:index(2, { 1, 2 }):shape(), { 0, 2 }, "index")
T.eq(m:index(1, {}):shape(), { 0, 4 }, "index with no indices")
T.eq(e1:matmul(refract.zeros({ 4, 2 })):shape(), { 0, 2 }, "matmul [0, 4] x [4, 2]")
T.eq(refract.zeros({ 3, 0 }):matmul(refract.zeros({ 0, 2 })):totable(), { { 0, 0 }, { 0, 0 }, { 0, 0 } },
  "matmul over an empty inner dimension is zeros")
T.ok(tostring(e1):find("f32 %[0, 4%]") ~= nil, "tostring")
T.fails(function() e1:max() end, "")
local path = T.tmp("empty.npy")
refract.write(path, e1)
T.eq(refract.read(path):shape(), { 0, 4 }, "an empty tensor through .npy")

-- }=====

T.done()
