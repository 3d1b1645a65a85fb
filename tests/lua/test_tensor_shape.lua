-- Shape changes: reshape/view (with -1), permute, transpose, t, squeeze, unsqueeze,
-- flatten, expand, clone, contiguous, on device and host tensors; misuse.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

local x = R.random({ 2, 3, 4 }, 11)
local t = refract.tensor(x)
local flat = R.flat(x)

-- {===== reshape, view, flatten, squeeze, unsqueeze

T.eq(t:reshape(6, 4):shape(), { 6, 4 })
T.eq(R.flat(t:reshape({ 4, 6 }):totable()), flat, "reshape keeps row-major order")
T.eq(t:reshape(-1):shape(), { 24 })
T.eq(t:reshape(3, -1):shape(), { 3, 8 })
T.eq(t:reshape({ -1, 2, 2 }):shape(), { 6, 2, 2 })
T.eq(t:view(24):shape(), { 24 })
T.eq(refract.tensor({ 7 }):reshape({}):shape(), {}, "to 0-d")
T.eq(refract.tensor(7):reshape(1, 1):totable(), { { 7 } })
T.eq(refract.zeros(0, 3):reshape(3, 0):shape(), { 3, 0 })
T.fails(function() return refract.zeros(0, 3):reshape(-1, 0) end, "no size for -1")

T.eq(t:flatten():shape(), { 24 })
T.eq(t:flatten(2):shape(), { 2, 12 })
T.eq(t:flatten(1, 2):shape(), { 6, 4 })
T.eq(t:flatten(-2, -1):shape(), { 2, 12 })
T.eq(refract.tensor(3):flatten():shape(), { 1 })
T.eq(R.flat(t:flatten(1, 2):totable()), flat)

local o = refract.zeros(1, 3, 1, 2)
T.eq(o:squeeze():shape(), { 3, 2 })
T.eq(o:squeeze(1):shape(), { 3, 1, 2 })
T.eq(o:squeeze(2):shape(), { 1, 3, 1, 2 }, "a dimension that is not 1 stays")
T.eq(o:squeeze(-2):shape(), { 1, 3, 2 })
T.eq(t:unsqueeze(1):shape(), { 1, 2, 3, 4 })
T.eq(t:unsqueeze(4):shape(), { 2, 3, 4, 1 })
T.eq(t:unsqueeze(-1):shape(), { 2, 3, 4, 1 }, "-1 is a new last dimension")
T.eq(t:unsqueeze(2):shape(), { 2, 1, 3, 4 })
T.eq(refract.tensor(1):unsqueeze(1):shape(), { 1 })

-- }=====

-- {===== permute, transpose, t

local function perm_ref(p)
  local s = R.shape(x)
  local ns = { s[p[1]], s[p[2]], s[p[3]] }
  return R.build(ns, function(idx)
    local j = {}
    for q = 1, 3 do j[p[q]] = idx[q] end
    return R.get(x, j)
  end)
end
for _, p in ipairs({ { 1, 2, 3 }, { 3, 1, 2 }, { 2, 3, 1 }, { 3, 2, 1 }, { 1, 3, 2 } }) do
  T.eq(t:permute(p[1], p[2], p[3]):totable(), perm_ref(p), "permute " .. table.concat(p, ","))
  T.eq(t:permute(p):totable(), perm_ref(p), "permute as a table")
end
T.eq(t:permute(-1, 1, 2):shape(), { 4, 2, 3 })
T.eq(t:transpose(1, 3):totable(), perm_ref({ 3, 2, 1 }))
T.eq(t:transpose(-1, -2):shape(), { 2, 4, 3 })
local m = refract.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
T.eq(m:t():totable(), { { 1, 4 }, { 2, 5 }, { 3, 6 } })
T.eq(m:t():t():totable(), m:totable())
T.eq(refract.tensor({ 1, 2 }):t():totable(), { 1, 2 }, "t() of a 1-d tensor")
T.eq(refract.tensor(3):permute():shape(), {})

-- }=====

-- {===== expand, clone, contiguous

T.eq(refract.tensor({ 1, 2 }):expand(3, 2):totable(), { { 1, 2 }, { 1, 2 }, { 1, 2 } })
T.eq(refract.tensor({ { 1 }, { 2 } }):expand(2, 3):totable(), { { 1, 1, 1 }, { 2, 2, 2 } })
T.eq(refract.tensor({ { 1 }, { 2 } }):expand({ -1, 2 }):totable(), { { 1, 1 }, { 2, 2 } })
T.eq(refract.tensor(5):expand(2, 2):totable(), { { 5, 5 }, { 5, 5 } })
T.eq(t:expand(2, 2, 3, 4):shape(), { 2, 2, 3, 4 })
T.eq(t:expand(2, 2, 3, 4)[2]:totable(), x)
T.eq(refract.tensor({ 1, 2 }):expand(0, 2):shape(), { 0, 2 })

local c = t:clone()
c[1] = 0
T.eq(t:totable(), x, "clone is a copy")
T.ok(t:contiguous() == t, "contiguous returns the tensor itself")

-- host and f16 tensors keep their dtype and place
local ids = refract.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "i64")
T.eq(ids:t():totable(), { { 1, 4 }, { 2, 5 }, { 3, 6 } })
T.eq(ids:t():dtype(), "i64")
T.eq(ids:reshape(3, 2):device(), "host")
T.eq(ids:permute(2, 1):totable(), { { 1, 4 }, { 2, 5 }, { 3, 6 } })
T.eq(ids:expand(2, 2, 3):shape(), { 2, 2, 3 })
T.eq(ids:unsqueeze(1):squeeze():totable(), ids:totable())
T.eq(ids:clone():totable(), ids:totable())
local h = m:half()
T.eq(h:t():dtype(), "f16")
T.eq(h:t():totable(), { { 1, 4 }, { 2, 5 }, { 3, 6 } })
T.eq(refract.tensor({ { 1, 2 } }, "u8"):expand(2, 2):totable(), { { 1, 2 }, { 1, 2 } })
T.eq(refract.tensor({ { 1, 2 }, { 3, 4 } }, "i32"):to_device():t():totable(), { { 1, 3 }, { 2, 4 } })

-- }=====

-- {===== misuse

T.fails(function() return t:reshape(5, 5) end,
  "reshape: cannot reshape [2, 3, 4] (24 elements) into [5, 5]: the element counts differ")
T.fails(function() return t:reshape(-1, -1) end, "only one size may be -1")
T.fails(function() return t:reshape(5, -1) end, "no size for -1 makes the element counts agree")
T.fails(function() return t:reshape(-2, 12) end, "sizes must be non-negative or -1")
T.fails(function() return t:reshape("a") end, "shape expected")
T.fails(function() return t:reshape(2.5) end, "number has no integer representation")
T.fails(function() return t:flatten(3, 2) end, "start dimension 3 comes after stop dimension 2")
T.fails(function() return t:flatten(4) end, "dimension 4 out of range")
T.fails(function() return t:squeeze(4) end, "dimension 4 out of range")
T.fails(function() return t:unsqueeze(5) end, "dimension 5 out of range (expected 1..4 or -4..-1)")
T.fails(function() return refract.zeros(1, 1, 1, 1, 1, 1, 1, 1):unsqueeze(1) end, "at most 8")
T.fails(function() return t:permute(1, 2) end, "permute: 2 dimensions given for a 3-d tensor [2, 3, 4]")
T.fails(function() return t:permute(1, 2, 2) end, "permute: dimension 2 appears twice")
T.fails(function() return t:permute(1, 2, 4) end, "dimension 4 out of range")
T.fails(function() return t:permute("a") end, "dimensions expected")
T.fails(function() return t:transpose(1, 4) end, "dimension 4 out of range")
T.fails(function() return t:t() end, "t: needs a tensor of at most 2 dimensions, got [2, 3, 4]")
T.fails(function() return t:expand(3, 3, 4) end,
  "expand: cannot expand [2, 3, 4]: size 3 at dimension 1 of the target differs from a size that is not 1")
T.fails(function() return t:expand(3, 4) end, "expand: 2 sizes given for a 3-d tensor")
T.fails(function() return t:expand(-1, 2, 3, 4) end, "is negative")
local f = refract.zeros(2)
f:free()
for _, name in ipairs({ "reshape", "view", "flatten", "squeeze", "unsqueeze", "permute",
  "transpose", "t", "expand", "clone", "contiguous" }) do
  T.fails(function() return f[name](f, 1, 1) end, "tensor has been freed")
end

-- }=====

T.done()
