-- Indexing: t[i], select, narrow, slice, index (gather), set / t[i] = v, masked_fill;
-- 1-based and negative indices, every dtype and place, and misuse.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

local x = R.random({ 3, 4, 5 }, 2)
local t = refract.tensor(x)

-- {===== t[i], select

T.eq(t[1]:totable(), x[1], "t[1]")
T.eq(t[-1]:totable(), x[3], "t[-1] is the last")
T.eq(t[2][3]:totable(), x[2][3], "t[2][3]")
T.eq(t[2][3][4]:item(), x[2][3][4], "t[2][3][4]")
T.eq(t[2][3][4]:shape(), {}, "a 1-d tensor gives a 0-d tensor")
T.eq(t:select(1, 2):totable(), x[2])
T.eq(t:select(2, -1):totable(), R.build({ 3, 5 }, function(i) return x[i[1]][4][i[2]] end))
T.eq(t:select(-1, 1):totable(), R.build({ 3, 4 }, function(i) return x[i[1]][i[2]][1] end))
local ids = refract.tensor({ { 10, 11 }, { 12, 13 } }, "i64")
T.eq(ids[2]:totable(), { 12, 13 })
T.eq(ids[2]:dtype(), "i64")
T.eq(ids[2]:device(), "host")
T.eq(ids[-1][-2]:item(), 12)
T.eq(t:half()[2][3]:dtype(), "f16")
T.near(t:half()[2][3]:totable(), x[2][3], 1e-3, "f16 select")
T.eq(ids:to_device()[2]:totable(), { 12, 13 }, "8-byte elements on the device")
T.eq(refract.tensor({ { 1, 2 }, { 3, 4 } }, "u8"):to_device()[2]:totable(), { 3, 4 })

-- }=====

-- {===== narrow and slice (ranges include both ends)

T.eq(t:narrow(2, 2, 2):totable(), R.build({ 3, 2, 5 }, function(i) return x[i[1]][i[2] + 1][i[3]] end))
T.eq(t:narrow(3, -2, 2):totable(), R.build({ 3, 4, 2 }, function(i) return x[i[1]][i[2]][i[3] + 3] end))
T.eq(t:narrow(1, 1, 0):shape(), { 0, 4, 5 })
T.eq(t:narrow(1, 4, 0):shape(), { 0, 4, 5 }, "an empty narrow may start past the end")
T.eq(t:slice(3, 2, 4):totable(), R.build({ 3, 4, 3 }, function(i) return x[i[1]][i[2]][i[3] + 1] end))
T.eq(t:slice(3, 1, 5, 2):totable(), R.build({ 3, 4, 3 }, function(i) return x[i[1]][i[2]][2 * i[3] - 1] end))
T.eq(t:slice(3, 1, -1, 2):shape(), { 3, 4, 3 })
T.eq(t:slice(2, -1, 1, -1):totable(), R.build({ 3, 4, 5 }, function(i) return x[i[1]][5 - i[2]][i[3]] end),
  "negative step reverses")
T.eq(t:slice(1, 3, 1, -2):totable(), { x[3], x[1] })
T.eq(t:slice(1, 2, 1):shape(), { 0, 4, 5 }, "stop before start: empty")
T.eq(ids:slice(2, 2, 2):totable(), { { 11 }, { 13 } })

-- }=====

-- {===== index (gather), 1-based

T.eq(t:index(1, { 3, 1 }):totable(), { x[3], x[1] })
T.eq(t:index(1, { -1 }):totable(), { x[3] })
T.eq(t:index(2, { 4, 4, 1 }):totable(), R.build({ 3, 3, 5 }, function(i)
  return x[i[1]][({ 4, 4, 1 })[i[2]]][i[3]]
end))
T.eq(t:index(3, { 5, 2 }):totable(), R.build({ 3, 4, 2 }, function(i)
  return x[i[1]][i[2]][({ 5, 2 })[i[3]]]
end), "gather along the last dimension")
local rows = refract.tensor({ { 1, 3 }, { 2, 2 } }, "i64")
T.eq(t:index(1, rows):shape(), { 2, 2, 4, 5 }, "the indices' shape replaces the dimension")
T.eq(t:index(1, rows):totable(), { { x[1], x[3] }, { x[2], x[2] } })
T.eq(t:index(2, refract.tensor({ 2 }, "i32")):shape(), { 3, 1, 5 })
T.eq(t:index(1, {}):shape(), { 0, 4, 5 })
T.eq(ids:index(2, { 2, 1, 2 }):totable(), { { 11, 10, 11 }, { 13, 12, 13 } })
T.eq(t:half():index(1, { 2 }):dtype(), "f16")
T.near(t:half():index(1, { 2 }):totable()[1], x[2], 1e-3)
T.eq(refract.tensor({ 5, 6, 7 }):index(1, refract.tensor({ 3, 1 })):totable(), { 7, 5 },
  "float indices with integral values")
local emb = refract.arange(12):reshape(4, 3)
T.eq(emb:index(1, refract.tensor({ { 4, 1 } }, "i64")):totable(), { { { 10, 11, 12 }, { 1, 2, 3 } } },
  "embedding lookup")

-- }=====

-- {===== set and t[i] = v (in place)

local s = refract.zeros(2, 3)
T.ok(s:set(1, 2, 5) == s, "set returns the tensor")
T.eq(s:totable(), { { 0, 0, 0 }, { 5, 5, 5 } })
s:set(2, -1, refract.tensor({ 7, 8 }))
T.eq(s:totable(), { { 0, 0, 7 }, { 5, 5, 8 } })
s[1] = refract.tensor({ 1, 2, 3 })
T.eq(s:totable(), { { 1, 2, 3 }, { 5, 5, 8 } })
s[-1] = 9
T.eq(s:totable(), { { 1, 2, 3 }, { 9, 9, 9 } })
s[2] = refract.tensor({ 4, 5, 6 }, "i64")
T.eq(s:totable(), { { 1, 2, 3 }, { 4, 5, 6 } }, "the value is converted to the tensor's dtype")
s:set(2, 1, refract.tensor({ 0 }))
T.eq(s:totable(), { { 0, 2, 3 }, { 0, 5, 6 } }, "a value broadcasts to the slice")
local c3 = refract.zeros(2, 2, 2)
c3[2] = refract.tensor({ 1, 2 })
T.eq(c3:totable(), { { { 0, 0 }, { 0, 0 } }, { { 1, 2 }, { 1, 2 } } })
local v1 = refract.zeros(3)
v1[2] = 4
T.eq(v1:totable(), { 0, 4, 0 }, "setting one element of a 1-d tensor")
local hi = refract.zeros({ 2, 2 }, "i64")
hi[2] = 3
hi:set(2, 1, refract.tensor({ 7, 8 }))
T.eq(hi:totable(), { { 7, 0 }, { 8, 3 } })
local hh = refract.zeros(2, 2, "f16")
hh[1] = 0.5
T.eq(hh:totable(), { { 0.5, 0.5 }, { 0, 0 } })
local row = t[1]
row[1] = 100
T.eq(t[1][1]:totable(), x[1][1], "t[i] is a copy: writing it leaves t alone")

-- }=====

-- {===== masked_fill

local m = refract.tensor({ { 1, -2 }, { -3, 4 } })
T.eq(m:masked_fill(m:lt(0), 0):totable(), { { 1, 0 }, { 0, 4 } })
T.eq(m:masked_fill(refract.tensor({ 1, 0 }), -1):totable(), { { -1, -2 }, { -1, 4 } }, "mask broadcasts")
T.eq(m:masked_fill(refract.tensor({ 0, 1 }, "u8"), 9):totable(), { { 1, 9 }, { -3, 9 } })
T.eq(m:totable(), { { 1, -2 }, { -3, 4 } }, "masked_fill makes a copy")
local inf = m:masked_fill(m:gt(0), -1 / 0):totable()
T.eq(inf[1][1], -1 / 0)

-- }=====

-- {===== misuse

T.fails(function() return t[4] end, "index 4 out of range for dimension 1 of size 3 (expected 1..3 or -3..-1)")
T.fails(function() return t[0] end, "indices count from 1")
T.fails(function() return t[-4] end, "out of range")
T.fails(function() return t[1.5] end, "not a fractional number")
T.fails(function() return t[{}] end, "not table")
T.fails(function() return refract.tensor(1)[1] end, "cannot index a 0-d tensor")
T.fails(function() return t:select(4, 1) end, "dimension 4 out of range (expected 1..3 or -3..-1)")
T.fails(function() return t:select(0, 1) end, "dimensions count from 1")
T.fails(function() return t:select(2, 5) end, "index 5 out of range for dimension 2 of size 4")
T.fails(function() return t:select("a", 1) end, "number expected, got string")
T.fails(function() return t:narrow(2, 3, 3) end, "length 3 from index 3 passes the end of dimension 2 (size 4)")
T.fails(function() return t:narrow(2, 1, -1) end, "length must be non-negative")
T.fails(function() return t:narrow(2, 6, 0) end, "index 6 out of range")
T.fails(function() return t:slice(2, 1, 5) end, "index 5 out of range for dimension 2 of size 4")
T.fails(function() return t:slice(2, 1, 2, 0) end, "step must not be zero")
T.fails(function() return t:index(1, { 4 }) end, "index 4 out of range for dimension 1 of size 3")
T.fails(function() return t:index(1, { 1.5 }) end, "not an integer")
T.fails(function() return t:index(1, "x") end, "table of integers or refract.Tensor expected, got string")
T.fails(function() return t:index(1, refract.tensor({ 0.5 })) end, "indices must be integers")
T.fails(function() return t:index(1, refract.ones({ 1, 1, 1, 1, 1, 1, 1, 1 }, "i64")) end, "more than 8 dimensions")
T.fails(function() s[3] = 1 end, "index 3 out of range for dimension 1 of size 2")
T.fails(function() s[1] = refract.tensor({ 1, 2 }) end,
  "set: shapes [2] and [3] do not broadcast (dimension 1: 2 vs 3)")
T.fails(function() s[1] = refract.zeros(2, 3) end, "a value of shape [2, 3] does not fit a part of shape [3]")
T.fails(function() s[1] = "x" end, "refract.Tensor or number expected, got string")
T.fails(function() s.foo = 1 end, "cannot set field 'foo' of a refract.Tensor")
T.fails(function() hi[1] = 1.5 end, "set: 1.5 is not a valid i64 value")
do -- integers written into integer tensors exactly, not through a double
  local w = refract.zeros({ 3 }, "i64")
  w[1] = math.maxinteger
  w[2] = (1 << 53) + 1
  w:set(1, 3, math.mininteger)
  T.eq(w:totable(), { math.maxinteger, (1 << 53) + 1, math.mininteger }, "set i64 exact")
  T.fails(function() w[1] = 2 ^ 63 end, "set: 9.2233720368548e+18 is not a valid i64 value")
  T.fails(function() refract.zeros({ 1 }, "i32")[1] = math.maxinteger end, "is not a valid i32 value")
end
T.fails(function() return m:masked_fill(refract.zeros(3), 1) end, "do not broadcast")
T.fails(function() return m:masked_fill(refract.zeros(2, 2, 2), 1) end,
  "masked_fill: mask [2, 2, 2] does not broadcast to the tensor's shape [2, 2]")
T.fails(function() return m:masked_fill(m:lt(0), "x") end, "number expected, got string")
T.fails(function() return m:masked_fill(1, 1) end, "refract.Tensor expected, got number")
local f = refract.zeros(2)
f:free()
T.fails(function() return f[1] end, "tensor has been freed")
T.fails(function() f[1] = 1 end, "tensor has been freed")
T.fails(function() return t:index(1, f) end, "tensor has been freed")
T.fails(function() return m:masked_fill(f, 1) end, "tensor has been freed")

-- }=====

-- A number written into an integer tensor is kept exactly (through a double 2^53 + 1
-- became 2^53 without a word).
do
  local big = (1 << 53) + 1
  local ids = refract.zeros({ 2 }, "i64")
  ids:set(1, 1, big)
  ids[2] = math.mininteger
  T.eq(ids:totable(), { big, math.mininteger }, "set and [] = into i64 exactly")
  local dev = refract.zeros({ 1 }, "i64"):to_device()
  dev[1] = big
  T.eq(dev:host():item(), big, "into an i64 tensor on the device")
  T.fails(function() refract.zeros({ 1 }, "i32"):set(1, 1, 1 << 40) end, "1099511627776 is not a valid i32 value")
  T.fails(function() refract.zeros({ 1 }, "u8")[1] = 256 end, "256 is not a valid u8 value")
end

T.done()
