-- Reductions over several axis sets (sum, mean, prod, var, std, max, min, norm) with and
-- without keepdim, argmax/argmin (1-based, ties to the first), topk (ties, NaN, both
-- directions, every dimension), normalize, all/any, against plain Lua; misuse.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

local x = R.random({ 2, 3, 4 }, 7)
local t = refract.tensor(x)

-- {===== every reduction over several axis sets

local axis_sets = { "all", 1, 2, 3, -1, { 1, 2 }, { 1, 3 }, { 2, 3 }, { 3, 1 }, { 1, 2, 3 } }
local ops = {
  { "sum", R.sum, 2e-6 }, { "mean", R.mean, 1e-6 }, { "prod", R.prod, 1e-6 },
  { "max", R.max, 0 }, { "min", R.min, 0 }, { "norm", R.norm, 2e-6 },
}
for _, set in ipairs(axis_sets) do
  local dims = set ~= "all" and set or nil     -- nil: every dimension
  for _, op in ipairs(ops) do
    local name, f, tol = op[1], op[2], op[3]
    local label = name .. " over " .. (type(dims) == "table" and table.concat(dims, ",") or tostring(dims))
    local got = t[name](t, dims)
    local want = R.reduce(x, dims, false, f)
    if type(want) == "number" then
      T.eq(got:shape(), {}, label .. " gives a 0-d tensor")
      T.near(got:item(), want, tol, label)
    else
      T.near(got:totable(), want, tol, label)
    end
    local kept = t[name](t, dims, true)
    T.near(R.flat(kept:totable()), R.flat(R.reduce(x, dims, true, f)), tol, label .. " keepdim")
    T.eq(kept:ndim(), 3, label .. " keepdim keeps the rank")
  end
  for _, corr in ipairs({ 0, 1 }) do
    local label = "var/std over " .. tostring(dims) .. " correction " .. corr
    local nred = R.reduce(x, dims, false, function(v) return #v end)
    local n1 = type(nred) == "number" and nred or R.flat(nred)[1]
    if n1 > corr then
      local v = R.reduce(x, dims, false, function(vals) return R.var(vals, corr) end)
      T.near(R.flat(t:var(dims, corr):totable()), R.flat(v), 2e-6, label)
      T.near(R.flat(t:std(dims, corr):totable()), R.flat(R.map(v, math.sqrt)), 2e-6, label)
    end
  end
end
-- {===== the default correction is 1 (n - 1, as PyTorch), for var and std alike

-- Plain Lua: the sample variance, squares of deviations over n - 1, written out here.
local function sample_var(v)
  local m = 0
  for _, a in ipairs(v) do m = m + a end
  m = m / #v
  local s = 0
  for _, a in ipairs(v) do s = s + (a - m) * (a - m) end
  return s / (#v - 1)
end
local sample = { 2, 4, 4, 4, 5, 5, 7, 9 }      -- 32 / 7 with n - 1 (4 with n)
local st = refract.tensor(sample)
T.near(st:var():item(), 32 / 7, 1e-6, "var() of all elements: n - 1")
T.near(st:std():item(), math.sqrt(32 / 7), 1e-6, "std() of all elements: n - 1")
T.near(st:var(1):item(), 32 / 7, 1e-6, "var(dim): n - 1")
T.near(st:std(1):item(), math.sqrt(32 / 7), 1e-6, "std(dim): n - 1")
T.near(st:std(1, nil, true):totable(), { math.sqrt(32 / 7) }, 1e-6, "std(dim, nil, keepdim): n - 1")
for _, dims in ipairs({ 1, 2, 3, { 1, 3 } }) do
  local label = " default correction over " .. (type(dims) == "table" and table.concat(dims, ",") or dims)
  local v = R.reduce(x, dims, false, sample_var)
  T.near(R.flat(t:var(dims):totable()), R.flat(v), 2e-6, "var" .. label)
  T.near(R.flat(t:std(dims):totable()), R.flat(R.map(v, math.sqrt)), 2e-6, "std" .. label)
end
T.near(t:std():item(), math.sqrt(sample_var(R.flat(x))), 2e-6, "std of every element, default correction")

-- }=====

T.eq(t:var({ 1, 3 }, 1, true):shape(), { 1, 3, 1 }, "var keepdim")
T.eq(t:sum(nil, true):shape(), { 1, 1, 1 })
T.eq(refract.tensor({ 1, 2 }, "i64"):sum():item(), 3.0, "integer tensors reduce as f32")
T.eq(refract.zeros(0, 3):sum(1):totable(), { 0, 0, 0 }, "empty sum")
T.eq(refract.zeros(0):prod():item(), 1.0, "empty product")
T.eq(refract.tensor(5):sum():item(), 5.0, "0-d")

-- }=====

-- {===== infinities: an infinite (or overflowing) sum or product is infinite, not NaN
-- (the compensation of a Kahan sum is inf - inf once the sum is infinite)

local inf = math.huge
T.eq(refract.tensor({ 1, inf }):sum():item(), inf, "sum with inf")
T.eq(refract.tensor({ inf, 1 }):sum():item(), inf)
T.eq(refract.tensor({ -inf, 1, 2 }):sum():item(), -inf)
T.eq(refract.tensor({ inf, inf }):sum():item(), inf)
T.eq(refract.tensor({ { 1, inf }, { 2, 3 } }):sum(2):totable(), { inf, 5 }, "sum along a dimension")
T.eq(refract.tensor({ 1, inf }):mean():item(), inf)
T.eq(refract.full({ 1000 }, 1e38):sum():item(), inf, "a sum that overflows")
T.eq(refract.full({ 100000 }, 1e38):sum():item(), inf, "through the partial sums")
T.eq(refract.full({ 4 }, 1e30):norm():item(), inf, "norm whose squares overflow")
T.eq(refract.tensor({ 2, inf }):prod():item(), inf, "prod with inf")
T.eq(refract.full({ 100 }, 1e10):prod():item(), inf, "a product that overflows")
T.eq(refract.tensor({ -1e30, 1e30, 1e30 }):prod():item(), -inf)
T.ok(refract.tensor({ inf, -inf }):sum():item() ~= refract.tensor({ inf, -inf }):sum():item(),
  "inf - inf is NaN")
T.eq(refract.tensor({ { 3e38, -3e38, 1 } }):layernorm():totable()[1][3], 0.0,
  "layernorm whose variance overflows")

-- {===== argmax, argmin

local ties = refract.tensor({ { 1, 3, 3, 0 }, { 2, 2, -1, -1 } })
T.eq(ties:argmax(2):totable(), { 2, 1 }, "ties go to the first")
T.eq(ties:argmin(2):totable(), { 4, 3 })
T.eq(ties:argmax(1):totable(), { 2, 1, 1, 1 })
T.eq(ties:argmax(2):dtype(), "i64")
T.eq(ties:argmax(2):device(), "host")
T.eq(ties:argmax(2, true):shape(), { 2, 1 })
T.eq(ties:argmax():item(), 2, "flat index over all elements")
T.eq(ties:argmin():item(), 7)
T.eq(ties:argmax():shape(), {})
T.eq(refract.tensor({ 1, 0 / 0, 5 }):argmax():item(), 2, "NaN wins")
for d = 1, 3 do
  local want = R.reduce(x, d, false, function(v)
    local best = 1
    for i = 2, #v do if v[i] > v[best] then best = i end end
    return best
  end)
  T.eq(t:argmax(d):totable(), want, "argmax dim " .. d)
end

-- }=====

-- {===== topk

local v, i = refract.tensor({ 3, 1, 4, 1, 5, 9, 2, 6 }):topk(3)
T.eq(v:totable(), { 9, 6, 5 })
T.eq(i:totable(), { 6, 8, 5 })
T.eq(v:dtype(), "f32")
T.eq(i:dtype(), "i64")
v, i = refract.tensor({ 3, 1, 4, 1, 5, 9, 2, 6 }):topk(3, -1, false)
T.eq(v:totable(), { 1, 1, 2 }, "smallest")
T.eq(i:totable(), { 2, 4, 7 }, "ties in index order")
v, i = refract.tensor({ 2, 7, 7, 1, 7 }):topk(2)
T.eq(i:totable(), { 2, 3 }, "ties: lower index first")
v, i = refract.tensor({ 1, 0 / 0, 3 }):topk(2)
T.ok(v:totable()[1] ~= v:totable()[1], "NaN ranks first")
T.eq(i:totable(), { 2, 3 })
v, i = refract.tensor({ 1, 0 / 0, 3 }):topk(3, 1, false)
T.eq(i:totable(), { 1, 3, 2 }, "NaN ranks last when smallest")
v, i = ties:topk(2, 1)
T.eq(v:totable(), { { 2, 3, 3, 0 }, { 1, 2, -1, -1 } }, "along dimension 1")
T.eq(i:totable(), { { 2, 1, 1, 1 }, { 1, 2, 2, 2 } })
v, i = ties:topk(0)
T.eq(v:shape(), { 2, 0 })
v, i = ties:topk(4)
T.eq(i:totable(), { { 2, 3, 1, 4 }, { 1, 2, 3, 4 } }, "k = size sorts")
for d = 1, 3 do
  local k = 2
  local tv, ti = t:topk(k, d)
  local s = R.shape(x)
  s[d] = k
  local wantv = R.build(s, function(idx)
    local vals, j = {}, {}
    for q = 1, 3 do j[q] = idx[q] end
    for q = 1, R.shape(x)[d] do j[d] = q; vals[q] = { R.get(x, j), q } end
    table.sort(vals, function(p, q) return p[1] > q[1] or (p[1] == q[1] and p[2] < q[2]) end)
    return vals[idx[d]]
  end)
  T.eq(tv:totable(), R.build(s, function(idx) return R.get(wantv, idx)[1] end), "topk values dim " .. d)
  T.eq(ti:totable(), R.build(s, function(idx) return R.get(wantv, idx)[2] end), "topk indices dim " .. d)
  -- gathering with the indices reproduces the values
  T.eq(t:index(d, ti:flatten()):shape()[d], ti:numel())
end

-- }=====

-- {===== normalize, all, any

local nrm = t:normalize()
T.near(nrm:norm(-1):totable(), R.build({ 2, 3 }, function() return 1 end), 1e-6, "unit rows")
T.near(nrm:totable(), R.build({ 2, 3, 4 }, function(idx)
  local row = x[idx[1]][idx[2]]
  return row[idx[3]] / R.norm(row)
end), 1e-6, "normalize values")
T.near(t:normalize(1):norm(1):totable(), R.build({ 3, 4 }, function() return 1 end), 1e-6)
T.eq(refract.zeros(2, 3):normalize():totable(), { { 0, 0, 0 }, { 0, 0, 0 } }, "zero rows stay zero")

local z = refract.tensor({ { 1, 0, 2 }, { 3, 4, 5 } })
T.eq(z:all(), false)
T.eq(z:any(), true)
T.eq(refract.zeros(3):any(), false)
T.eq(refract.ones(3):all(), true)
T.eq(refract.zeros(0):all(), true, "all of nothing")
T.eq(refract.zeros(0):any(), false, "any of nothing")
T.eq(refract.tensor({ 0 / 0 }):all(), true, "NaN is nonzero")
T.eq(z:all(2):totable(), { 0, 1 })
T.eq(z:any(1):totable(), { 1, 1, 1 })
T.eq(z:all(1, true):shape(), { 1, 3 })
T.eq(refract.tensor({ 0, 1 }, "i64"):any(), true)

-- }=====

-- {===== misuse

T.fails(function() return t:sum(4) end, "dimension 4 out of range (expected 1..3 or -3..-1)")
T.fails(function() return t:sum({ 1, 1 }) end, "dimension 1 given twice")
T.fails(function() return t:sum({ 1, "a" }) end, "dimensions must be integers")
T.fails(function() return t:sum("a") end, "dimension (a number or a table of numbers) expected")
T.fails(function() return t:var(1, -1) end, "correction must be >= 0")
T.fails(function() return t:max(0) end, "dimensions count from 1")
T.fails(function() return refract.zeros(0, 2):max(1) end, "max/min over an empty axis")
T.fails(function() return t:argmax(5) end, "dimension 5 out of range")
T.fails(function() return refract.zeros(0):argmax() end, "the tensor is empty")
T.fails(function() return t:topk(5) end, "k = 5 out of range for dimension 3 of size 4 (expected 0..4)")
T.fails(function() return t:topk(-1) end, "k = -1 out of range")
T.fails(function() return t:topk(1, 4) end, "dimension 4 out of range")
T.fails(function() return t:topk("a") end, "number expected, got string")
T.fails(function() return t:normalize(1, -1) end, "eps must be finite")
T.fails(function() return refract.tensor(1):topk(1) end, "the tensor is 0-d")
local f = refract.zeros(2)
f:free()
for _, name in ipairs({ "sum", "mean", "prod", "var", "std", "max", "min", "argmax", "argmin",
  "norm", "normalize", "all", "any", "topk" }) do
  T.fails(function() return f[name](f, 1) end, "tensor has been freed")
end

-- }=====

T.done()
