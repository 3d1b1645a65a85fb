-- Making tensors: refract.tensor, zeros, ones, full, arange, eye, rand, randn, cat, stack
-- (values against plain Lua, placement by dtype) and their misuse.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

-- {===== tensor, zeros, ones, full

local t = refract.tensor({ { 1, 2 }, { 3, 4 } })
T.eq(t:shape(), { 2, 2 })
T.eq(refract.tensor(5):shape(), {})
T.eq(refract.tensor(5):item(), 5.0)
T.eq(refract.tensor({}):shape(), { 0 })
T.eq(refract.tensor({ true, false }):totable(), { 1.0, 0.0 })
T.eq(refract.tensor({ 1, 2 }, "f16"):dtype(), "f16")
T.eq(refract.tensor({ 1, 2 }, "f16"):device(), "device")
T.eq(refract.tensor({ 1, 2 }, "bf16"):device(), "host")
T.eq(refract.tensor({ 1, 2 }, "i32"):device(), "host")
T.eq(refract.tensor({ 255, 0 }, "u8"):totable(), { 255, 0 })
T.eq(refract.tensor(t):totable(), { { 1, 2 }, { 3, 4 } }, "tensor(t) copies")
T.eq(refract.tensor(t, "i64"):totable(), { { 1, 2 }, { 3, 4 } })
T.eq(refract.tensor(t, "i64"):dtype(), "i64")

T.eq(refract.zeros(2, 3):totable(), { { 0, 0, 0 }, { 0, 0, 0 } })
T.eq(refract.zeros({ 2, 3 }):shape(), { 2, 3 })
T.eq(refract.zeros({}):shape(), {})
T.eq(refract.zeros(2, "i64"):totable(), { 0, 0 })
T.eq(refract.zeros({ 2 }, "i64"):dtype(), "i64")
T.eq(refract.ones(3):totable(), { 1, 1, 1 })
T.eq(refract.ones({ 2, 1 }, "f16"):totable(), { { 1 }, { 1 } })
T.eq(refract.ones(2, "u8"):totable(), { 1, 1 })
T.eq(refract.zeros(0, 3):shape(), { 0, 3 })
T.eq(refract.full({ 2, 2 }, 7.5):totable(), { { 7.5, 7.5 }, { 7.5, 7.5 } })
T.eq(refract.full(3, -2, "i32"):totable(), { -2, -2, -2 })
T.eq(refract.full(3, 0.1, "f16"):totable()[1], 0.0999755859375, "f16 rounding")
T.ok(refract.full(1, 0 / 0):item() ~= refract.full(1, 0 / 0):item(), "full with NaN")

-- }=====

-- {===== arange and eye

T.eq(refract.arange(5):totable(), { 1, 2, 3, 4, 5 }, "arange(n) is 1..n")
T.eq(refract.arange(0):totable(), {})
T.eq(refract.arange(2, 6):totable(), { 2, 3, 4, 5, 6 }, "stop is included")
T.eq(refract.arange(0, 1, 0.25):totable(), { 0, 0.25, 0.5, 0.75, 1 })
T.eq(refract.arange(0, 1, 0.1):numel(), 11, "rounding does not drop the stop")
T.eq(refract.arange(5, 1, -2):totable(), { 5, 3, 1 })
T.eq(refract.arange(3, 1):totable(), {}, "empty when stop precedes start")
T.eq(refract.arange(3, "i64"):totable(), { 1, 2, 3 })
T.eq(refract.arange(3, "i64"):dtype(), "i64")
T.eq(refract.arange(-2, 2, 2, "i32"):totable(), { -2, 0, 2 })
T.eq(refract.arange(4):dtype(), "f32")
-- Integer dtypes are built exactly, not through doubles: 2^53 + 1 became 2^53 (arange
-- repeated it), a count of 2^64 wrapped to an empty tensor, values past an i32 or u8 wrapped
-- (and past i64 were undefined casts), and arange(start, stop, dtype) took the dtype for
-- the step.
local big = 1 << 53
T.eq(refract.arange(big, big + 2, 1, "i64"):totable(), { big, big + 1, big + 2 }, "arange past 2^53")
T.eq(refract.arange(2.0 ^ 53, 2.0 ^ 53 + 2, "i64"):totable(), { big, big + 1, big + 2 }, "integral floats too")
T.eq(refract.arange(math.maxinteger - 1, math.maxinteger, "i64"):totable(), { math.maxinteger - 1, math.maxinteger })
T.eq(refract.arange(math.mininteger + 1, math.mininteger, -1, "i64"):totable(),
  { math.mininteger + 1, math.mininteger })
T.eq(refract.arange(5, 1, "i64"):totable(), {}, "arange(start, stop, dtype)")
T.eq(refract.arange(1, 3, "f32"):totable(), { 1, 2, 3 })
T.fails(function() return refract.arange(math.mininteger, math.maxinteger, "i64") end, "too many")
T.fails(function() return refract.arange(2147483646, 2147483648, 1, "i32") end, "2147483648 is not a valid i32 value")
T.fails(function() return refract.arange(254, 257, "u8") end, "256 is not a valid u8 value")
T.fails(function() return refract.arange(1, 2, 0.5, "i64") end, "1.5 is not a valid i64 value")
T.fails(function() return refract.arange(9.2e18, 9.3e18, 1e17, "i64") end, "is not a valid i64 value")
T.eq(refract.tensor({ big + 1, math.maxinteger, math.mininteger }, "i64"):totable(),
  { big + 1, math.maxinteger, math.mininteger }, "refract.tensor i64 exactly")
T.eq(refract.tensor(big + 1, "i64"):item(), big + 1)
T.eq(refract.full({ 2 }, big + 1, "i64"):totable(), { big + 1, big + 1 }, "full i64 exactly")
T.fails(function() return refract.tensor({ 1 << 40 }, "i32") end, "1099511627776 is not a valid i32 value")
T.fails(function() return refract.full({ 1 }, -1, "u8") end, "-1 is not a valid u8 value")

T.eq(refract.eye(3):totable(), { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } })
T.eq(refract.eye(2, 3):totable(), { { 1, 0, 0 }, { 0, 1, 0 } })
T.eq(refract.eye(3, 2, "i64"):totable(), { { 1, 0 }, { 0, 1 }, { 0, 0 } })
T.eq(refract.eye(0):shape(), { 0, 0 })

-- }=====

-- {===== rand and randn: SplitMix64, recomputed here with Lua's wrapping integers

local function splitmix(seed, i)
  local z = seed + (i + 1) * 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

local u = refract.rand({ 2, 3 }, 42):totable()
for i = 0, 5 do
  local want = (splitmix(42, i) >> 40) * 2.0 ^ -24
  T.eq(u[i // 3 + 1][i % 3 + 1], want, "rand element " .. i)
end
T.eq(refract.rand({ 5 }, 7):totable(), refract.rand({ 5 }, 7):totable(), "same seed, same values")
T.ok(refract.rand({ 5 }, 7):totable()[1] ~= refract.rand({ 5 }, 8):totable()[1], "seeds differ")
T.eq(refract.rand(3):totable(), refract.rand(3, 0):totable(), "default seed 0")
local big = refract.rand({ 100000 }, 3)
T.near(big:mean():item(), 0.5, 0.01, "rand mean")
T.ok(big:min():item() >= 0 and big:max():item() < 1, "rand in [0, 1)")

local n = refract.randn({ 4 }, 9):totable()
for j = 0, 1 do
  local u1 = ((splitmix(9, 2 * j) >> 11) + 1) * 2.0 ^ -53
  local u2 = (splitmix(9, 2 * j + 1) >> 11) * 2.0 ^ -53
  local r = math.sqrt(-2 * math.log(u1))
  T.near(n[2 * j + 1], r * math.cos(2 * math.pi * u2), 1e-6, "randn even")
  T.near(n[2 * j + 2], r * math.sin(2 * math.pi * u2), 1e-6, "randn odd")
end
local bn = refract.randn({ 200000 }, 11)
T.near(bn:mean():item(), 0, 0.01, "randn mean")
T.near(bn:std():item(), 1, 0.01, "randn std")
T.eq(refract.randn({ 3 }, 1, "f16"):dtype(), "f16")

-- }=====

-- {===== cat and stack

local a = refract.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
local b = refract.tensor({ { 7, 8, 9 } })
T.eq(refract.cat({ a, b }):totable(), { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } })
T.eq(refract.cat({ a, b }, 1):shape(), { 3, 3 })
T.eq(refract.cat({ a, a }, 2):totable(), { { 1, 2, 3, 1, 2, 3 }, { 4, 5, 6, 4, 5, 6 } })
T.eq(refract.cat({ a, a }, -1):shape(), { 2, 6 })
T.eq(refract.cat({ a }):totable(), a:totable())
T.eq(refract.cat({ refract.zeros(0, 3), b }):totable(), { { 7, 8, 9 } })
local ia = refract.tensor({ 1, 2 }, "i64")
T.eq(refract.cat({ ia, refract.tensor({ 3 }, "i64") }):totable(), { 1, 2, 3 })
T.eq(refract.cat({ ia, ia }):device(), "host")
T.eq(refract.cat({ a:half(), a:half() }, 2):dtype(), "f16")
T.eq(refract.cat({ a:half(), a:half() }, 2):totable(), { { 1, 2, 3, 1, 2, 3 }, { 4, 5, 6, 4, 5, 6 } })

T.eq(refract.stack({ a, a }):shape(), { 2, 2, 3 })
T.eq(refract.stack({ a, a * 2 }, 2):totable(),
  { { { 1, 2, 3 }, { 2, 4, 6 } }, { { 4, 5, 6 }, { 8, 10, 12 } } })
T.eq(refract.stack({ a, a * 2 }, 3):totable(),
  { { { 1, 2 }, { 2, 4 }, { 3, 6 } }, { { 4, 8 }, { 5, 10 }, { 6, 12 } } })
T.eq(refract.stack({ a, a }, -1):shape(), { 2, 3, 2 })
T.eq(refract.stack({ refract.tensor(1), refract.tensor(2) }):totable(), { 1, 2 })
T.eq(refract.stack({ ia, ia }):totable(), { { 1, 2 }, { 1, 2 } })

-- The same against a plain-Lua reference on a 3-d tensor.
local x3 = R.random({ 2, 3, 4 }, 5)
local tx3 = refract.tensor(x3)
local want = R.build({ 2, 6, 4 }, function(i)
  return i[2] <= 3 and x3[i[1]][i[2]][i[3]] or x3[i[1]][i[2] - 3][i[3]]
end)
T.eq(refract.cat({ tx3, tx3 }, 2):totable(), want, "cat along dimension 2")

-- }=====

-- {===== misuse

T.fails(function() return refract.zeros(-1) end, "non-negative")
T.fails(function() return refract.zeros({ 2, -3 }) end, "non-negative")
T.fails(function() return refract.zeros("x") end, "shape expected")
T.fails(function() return refract.zeros({ 1, 2, 3, 4, 5, 6, 7, 8, 9 }) end, "at most 8")
T.fails(function() return refract.zeros({ 2 ^ 40, 2 ^ 40 }) end, "too large")
T.fails(function() return refract.zeros({ 2 ^ 31, 2 ^ 10 }) end, "allocating a tensor")
T.fails(function() return refract.zeros(2, "f64") end, "unknown dtype 'f64'")
T.fails(function() return refract.full({ 2 }, "x") end, "number expected")
T.fails(function() return refract.full({ 2 }, 1.5, "i64") end, "is not a valid i64 value")
T.fails(function() return refract.full({ 2 }, 300, "u8") end, "is not a valid u8 value")
T.fails(function() return refract.tensor({ 1.5 }, "i32") end, "is not a valid i32 value")
-- Integer dtypes take Lua integers exactly (no detour through doubles, which round
-- 2^53 + 1 and push math.maxinteger past the type) and check floats before converting.
local maxi, mini = math.maxinteger, math.mininteger
T.eq(refract.full({ 1 }, (1 << 53) + 1, "i64"):totable(), { (1 << 53) + 1 }, "full i64 exact")
T.eq(refract.full({ 2 }, maxi, "i64"):totable(), { maxi, maxi })
T.eq(refract.full(1, "7", "i64"):totable(), { 7 })
T.eq(refract.tensor({ maxi, mini, (1 << 53) + 1 }, "i64"):totable(), { maxi, mini, (1 << 53) + 1 })
T.eq(refract.arange(maxi - 2, maxi, 1, "i64"):totable(), { maxi - 2, maxi - 1, maxi })
T.eq(refract.arange(mini, maxi, maxi, "i64"):totable(), { mini, -1, maxi - 1 })
T.eq(refract.arange(maxi, mini, mini, "i64"):totable(), { maxi, -1 })
T.eq(refract.arange(maxi - 2, maxi):numel(), 3, "integer arguments count in integers")
T.eq(refract.eye(2, 3, "i64"):totable(), { { 1, 0, 0 }, { 0, 1, 0 } })
T.fails(function() return refract.arange(mini, maxi) end, "too many")
T.fails(function() return refract.arange(250, 300, 1, "u8") end, "256 is not a valid u8 value (0..255)")
T.fails(function() return refract.arange(0.5, 2, 1, "i32") end, "0.5")
T.fails(function() return refract.tensor({ 2 ^ 63 }, "i64") end, "is not a valid i64 value")
T.fails(function() return refract.tensor({ maxi }, "i32") end, "is not a valid i32 value")
T.fails(function() return refract.tensor({ "1" }) end, "tensor data must be numbers")
T.fails(function() return refract.zeros(2, "f32\0x") end, "NUL")
T.fails(function() return refract.arange() end, "number expected")
T.fails(function() return refract.arange(1, 5, 0) end, "step must not be zero")
T.fails(function() return refract.arange(1, 1 / 0) end, "finite")
T.fails(function() return refract.arange(0, 1e12) end, "too many")
T.fails(function() return refract.rand({ 2 ^ 29 }) end, "536870912 elements are too many to build on the host (at most 2^28)")
T.fails(function() return refract.eye(-1) end, "non-negative")
T.fails(function() return refract.rand({ 2 }, 1.5) end, "number has no integer representation")
T.fails(function() return refract.rand({ 2 }, 1, "i64") end, "floating dtype")
T.fails(function() return refract.cat({}) end, "empty")
T.fails(function() return refract.cat(a) end, "table expected")
T.fails(function() return refract.cat({ a, "x" }) end, "element 2 of the list is not a refract.Tensor")
T.fails(function() return refract.cat({ a, ia }) end, "cat: tensor 2 is i64 but tensor 1 is f32")
T.fails(function() return refract.cat({ a, refract.zeros(2, 2) }) end,
  "cat: tensor 2 has shape [2, 2] but tensor 1 has [2, 3] (they must match except in dimension 1)")
T.fails(function() return refract.cat({ a, a }, 3) end, "dimension 3 out of range (expected 1..2 or -2..-1)")
T.fails(function() return refract.cat({ refract.tensor(1) }) end, "at least one dimension")
T.fails(function() return refract.stack({ a, b }) end, "stack: tensor 2 has shape [1, 3] but tensor 1 has [2, 3]")
T.fails(function() return refract.stack({ a, a }, 4) end, "dimension 4 out of range (expected 1..3")
local freed = refract.zeros(2)
freed:free()
T.fails(function() return refract.cat({ a, freed }) end, "element 2 of the list is a freed tensor")
T.fails(function() return refract.tensor(freed) end, "tensor has been freed")

-- }=====

T.done()
