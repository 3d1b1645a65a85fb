-- Tensor handles from Lua: construction, shape, dtype, tostring, freeing and misuse.
local refract = require("refract")
local T = require("testlib")

local t = refract.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
T.eq(t:shape(), { 2, 3 })
T.eq(t:dtype(), "f32")
T.eq(#t, 2)
T.eq(t:totable(), { { 1, 2, 3 }, { 4, 5, 6 } })
T.matches(tostring(t), "refract.Tensor%(f32 %[2, 3%], device: 1 2 3 4 5 6%)")

local ids = refract.tensor({ 49406, 320, 49407 }, "i64")
T.eq(ids:dtype(), "i64")
T.eq(ids:device(), "host")
T.eq(ids:totable(), { 49406, 320, 49407 })

-- misuse is a Lua error with a clear message, never a crash
T.fails(function() return refract.tensor({ { 1, 2 }, { 3 } }) end, "ragged")
T.fails(function() return refract.tensor({ "a" }) end, "numbers")
T.fails(function() return refract.tensor({ 1 }, "f64") end, "unknown dtype 'f64'")
T.fails(function() return t + refract.tensor({ 1, 2 }) end, "do not broadcast")
T.fails(function() return t:shape(3) end, "dimension 3 out of range (expected 1..2 or -2..-1)")
T.fails(function() return refract.Tensor.shape({}) end, "refract.Tensor expected")

-- explicit free, double free, use after free
local f = refract.tensor({ 1 })
f:free()
f:free()
T.eq(f:is_freed(), true)
T.fails(function() return f:shape() end, "tensor has been freed")
T.eq(tostring(f), "refract.Tensor(freed)")

-- every method, called on a freed tensor or on something else, fails with a clear message
local methods = {}
for name in pairs(refract.Tensor) do methods[#methods + 1] = name end
table.sort(methods)
T.ok(#methods >= 80, "the methods table is complete (" .. #methods .. " methods)")
for _, name in ipairs(methods) do
  if name ~= "free" and name ~= "is_freed" then
    T.fails(function() return f[name](f, 1, 1) end, "tensor has been freed")
  end
  T.fails(function() return refract.Tensor[name]({}, 1, 1) end, "refract.Tensor")
end
for _, name in ipairs({ "matmul", "where", "cat", "stack", "svd", "eigh", "tensor" }) do
  T.fails(function() return refract[name]("x", t, t) end, "expected, got string")
end

-- <close> releases at the end of the scope
local before = refract.memory().in_use
do
  local c <close> = refract.tensor({ 1, 2, 3, 4 })
  T.eq(refract.memory().in_use > before, true)
end
T.eq(refract.memory().in_use, before)

T.done()
