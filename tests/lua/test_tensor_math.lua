-- Elementwise math: operators with broadcasting and numbers on either side, unary
-- functions, clamp, maximum/minimum, comparisons, softmax along every dimension,
-- LayerNorm and refract.where, against plain Lua; operand conversion; misuse.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

local xa = R.random({ 2, 3, 4 }, 3)
local xb = R.random({ 3, 1 }, 4)
local a, b = refract.tensor(xa), refract.tensor(xb)

-- {===== operators

local function f32(v) return string.unpack("f", string.pack("f", v)) end

T.near((a + b):totable(), R.map2(xa, xb, function(p, q) return p + q end), 1e-6, "a + b")
T.near((a - b):totable(), R.map2(xa, xb, function(p, q) return p - q end), 1e-6, "a - b")
T.near((a * b):totable(), R.map2(xa, xb, function(p, q) return p * q end), 1e-6, "a * b")
T.near((b / a):totable(), R.map2(xb, xa, function(p, q) return f32(p / q) end), 1e-3, "b / a")
T.eq((a + b):shape(), { 2, 3, 4 })
T.near((a + 1):totable(), R.map(xa, function(p) return p + 1 end), 1e-6, "a + 1")
T.near((2 - a):totable(), R.map(xa, function(p) return 2 - p end), 1e-6, "2 - a")
T.near((a * 0.5):totable(), R.map(xa, function(p) return p * 0.5 end), 1e-7, "a * 0.5")
T.near((1 / (a + 3)):totable(), R.map(xa, function(p) return 1 / (p + 3) end), 1e-6, "1 / a")
T.near((-a):totable(), R.map(xa, function(p) return -p end), 0, "-a")
T.eq((refract.tensor({ -2, 3, -0.5 }) ^ 2):totable(), { 4, 9, 0.25 }, "negative bases square")
T.eq((refract.tensor({ -2, 2 }) ^ 3):totable(), { -8, 8 })
T.eq((2 ^ refract.tensor({ 0, 1, 10 })):totable(), { 1, 2, 1024 })
T.near((refract.tensor({ 4, 9 }) ^ 0.5):totable(), { 2, 3 }, 1e-6)
local nan = (refract.tensor({ -8 }) ^ (1 / 3)):item()
T.ok(nan ~= nan, "negative base, fractional exponent: NaN")
T.near(a:add(b):totable(), (a + b):totable(), 0, "method forms")
T.near(a:sub(1):mul(2):div(4):pow(1):totable(), R.map(xa, function(p) return (p - 1) * 2 / 4 end), 1e-6)
T.near(a:maximum(b):totable(), R.map2(xa, xb, math.max), 0, "maximum")
T.near(a:minimum(0):totable(), R.map(xa, function(p) return math.min(p, 0) end), 0, "minimum")
local mx = refract.tensor({ 0 / 0, 1 }):maximum(refract.tensor({ 1, 0 / 0 })):totable()
T.ok(mx[1] ~= mx[1] and mx[2] ~= mx[2], "maximum propagates NaN")

-- integer and host operands are converted to f32 on the device
local ids = refract.tensor({ 1, 2, 3 }, "i64")
T.eq((ids + 1):totable(), { 2, 3, 4 })
T.eq((ids + 1):dtype(), "f32")
T.eq((ids * refract.tensor({ 2, 2, 2 }, "u8")):totable(), { 2, 4, 6 })
T.eq((refract.tensor({ 1, 2 }, "f16") + 1):totable(), { 2, 3 })
T.eq((refract.tensor({ 1, 2 }):host() * 3):device(), "device")

-- }=====

-- {===== comparisons

local c = refract.tensor({ 1, 2, 3 })
T.eq(c:eq(2):totable(), { 0, 1, 0 })
T.eq(c:ne(2):totable(), { 1, 0, 1 })
T.eq(c:lt(2):totable(), { 1, 0, 0 })
T.eq(c:le(2):totable(), { 1, 1, 0 })
T.eq(c:gt(2):totable(), { 0, 0, 1 })
T.eq(c:ge(2):totable(), { 0, 1, 1 })
T.eq(c:gt(refract.tensor({ { 0 }, { 2 } })):totable(), { { 1, 1, 1 }, { 0, 0, 1 } }, "broadcast")
T.eq(c:eq(c):dtype(), "f32")
T.eq(refract.tensor({ 0, 2, -1, 0 }):logical_not():totable(), { 1, 0, 0, 1 })

-- }=====

-- {===== unary functions

local u = R.random({ 5, 7 }, 9)
local tu = refract.tensor(u)
local pos = R.map(u, function(p) return p + 1.5 end)
local tpos = refract.tensor(pos)
local function erf(x)   -- Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7)
  local s = x < 0 and -1 or 1
  x = math.abs(x)
  local t = 1 / (1 + 0.3275911 * x)
  local y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
    + 0.254829592) * t * math.exp(-x * x)
  return s * y
end
local unary = {
  { "exp", tu, u, math.exp },
  { "log", tpos, pos, math.log },
  { "sqrt", tpos, pos, math.sqrt },
  { "rsqrt", tpos, pos, function(p) return 1 / math.sqrt(p) end },
  { "abs", tu, u, math.abs },
  { "neg", tu, u, function(p) return -p end },
  { "tanh", tu, u, function(p) return (math.exp(2 * p) - 1) / (math.exp(2 * p) + 1) end },
  { "sigmoid", tu, u, function(p) return 1 / (1 + math.exp(-p)) end },
  { "relu", tu, u, function(p) return math.max(p, 0) end },
  { "gelu", tu, u, function(p) return 0.5 * p * (1 + erf(p / math.sqrt(2))) end },
  { "quick_gelu", tu, u, function(p) return p / (1 + math.exp(-1.702 * p)) end },
  { "square", tu, u, function(p) return p * p end },
  { "sin", tu, u, math.sin },
  { "cos", tu, u, math.cos },
  { "floor", tu, u, math.floor },
  { "ceil", tu, u, math.ceil },
  { "sign", tu, u, function(p) return p > 0 and 1 or p < 0 and -1 or 0 end },
  { "reciprocal", tpos, pos, function(p) return 1 / p end },
}
for _, case in ipairs(unary) do
  local name, t, x, f = case[1], case[2], case[3], case[4]
  local got = t[name](t)
  T.eq(got:shape(), { 5, 7 }, name)
  T.near(got:totable(), R.map(x, f), 2e-6, name)
end
T.eq(refract.tensor({ 0.5, 1.5, 2.5, -0.5, -1.7 }):round():totable(), { 0, 2, 2, -0, -2 }, "round half to even")
T.eq(refract.tensor({ 1, 2 }, "i64"):exp():dtype(), "f32")

T.eq(refract.tensor({ -2, 0.5, 3 }):clamp(0, 1):totable(), { 0, 0.5, 1 })
T.eq(refract.tensor({ -2, 0.5, 3 }):clamp(0):totable(), { 0, 0.5, 3 }, "no upper bound")
T.eq(refract.tensor({ -2, 0.5, 3 }):clamp(nil, 1):totable(), { -2, 0.5, 1 }, "no lower bound")
local cn = refract.tensor({ 0 / 0 }):clamp(0, 1):item()
T.ok(cn ~= cn, "clamp keeps NaN")
local rn = refract.tensor({ 0 / 0 }):relu():item()
T.ok(rn ~= rn, "relu keeps NaN (a NaN input is not silently 0)")
local sn = refract.tensor({ 0 / 0 }):sign():item()
T.ok(sn ~= sn, "sign keeps NaN")
T.eq(refract.tensor({ -3, 0, 5, -0.0, math.huge }):sign():totable(), { -1, 0, 1, 0, 1 })

-- }=====

-- {===== softmax and layernorm

local function softmax_ref(x, dim, scale)
  scale = scale or 1
  local s = R.shape(x)
  dim = dim < 0 and #s + 1 + dim or dim
  return R.build(s, function(idx)
    local m, sum = -math.huge, 0
    local j = {}
    for i = 1, #idx do j[i] = idx[i] end
    for k = 1, s[dim] do j[dim] = k; m = math.max(m, scale * R.get(x, j)) end
    for k = 1, s[dim] do j[dim] = k; sum = sum + math.exp(scale * R.get(x, j) - m) end
    return math.exp(scale * R.get(x, idx) - m) / sum
  end)
end
for _, dim in ipairs({ 1, 2, 3, -1 }) do
  T.near(a:softmax(dim):totable(), softmax_ref(xa, dim), 1e-6, "softmax dim " .. dim)
end
T.near(a:softmax():totable(), softmax_ref(xa, -1), 1e-6, "softmax default: last dim")
T.near(a:softmax(2, 3.5):totable(), softmax_ref(xa, 2, 3.5), 1e-6, "softmax with scale")
local rows = a:softmax(-1):sum(-1):totable()
T.near(rows, R.build({ 2, 3 }, function() return 1 end), 1e-6, "rows sum to 1")

local function layernorm_ref(x, g, bt, eps)
  return R.build(R.shape(x), function(idx)
    local row = R.get(x, { idx[1], idx[2] })
    local m = R.mean(row)
    local v = R.var(row, 0)
    local gi = g and g[idx[3]] or 1
    local bi = bt and bt[idx[3]] or 0
    return (row[idx[3]] - m) / math.sqrt(v + (eps or 1e-5)) * gi + bi
  end)
end
local g, bt = { 1, 2, 0.5, -1 }, { 0, 0.25, -1, 3 }
T.near(a:layernorm():totable(), layernorm_ref(xa), 1e-5, "layernorm")
T.near(a:layernorm(refract.tensor(g), refract.tensor(bt)):totable(), layernorm_ref(xa, g, bt), 1e-5,
  "layernorm with gamma and beta")
T.near(a:layernorm(refract.tensor(g), nil, 0.1):totable(), layernorm_ref(xa, g, nil, 0.1), 1e-5,
  "layernorm with gamma and eps")

-- }=====

-- {===== where

T.eq(refract.where(c:gt(1), c, -c):totable(), { -1, 2, 3 })
T.eq(refract.where(refract.tensor({ 1, 0 }, "u8"), 5, 6):totable(), { 5, 6 }, "numbers as values")
T.eq(refract.where(refract.tensor({ { 1 }, { 0 } }), c, 0):totable(), { { 1, 2, 3 }, { 0, 0, 0 } })

-- }=====

-- {===== misuse

T.fails(function() return a + refract.zeros(3) end, "shapes [2, 3, 4] and [3] do not broadcast (dimension 3: 4 vs 3)")
T.fails(function() return a:add(refract.zeros(5)) end, "add: shapes [2, 3, 4] and [5] do not broadcast")
T.fails(function() return a + "x" end, "refract.Tensor or number expected, got string")
T.fails(function() return a:maximum({}) end, "refract.Tensor or number expected, got table")
T.fails(function() return a:eq() end, "refract.Tensor or number expected, got nil")
T.fails(function() return refract.Tensor.exp(5) end, "refract.Tensor expected, got number")
T.fails(function() return a:clamp(0 / 0) end, "bound must not be NaN")
T.fails(function() return a:clamp(2, 1) end, "lower bound 2.0 is above upper bound 1.0")
T.fails(function() return a:clamp("x") end, "number expected, got string")
T.fails(function() return a:softmax(4) end, "dimension 4 out of range (expected 1..3 or -3..-1)")
T.fails(function() return a:softmax(1, 1 / 0) end, "scale must be finite")
T.fails(function() return refract.tensor(1):softmax() end, "the tensor is 0-d")
T.fails(function() return refract.zeros(2, 0):softmax() end, "non-empty last axis")
T.fails(function() return a:layernorm(refract.zeros(3)) end,
  "layernorm: gamma has shape [3] but the tensor has shape [2, 3, 4] (it needs 4 elements")
T.fails(function() return a:layernorm(nil, refract.zeros(5)) end, "beta has shape [5]")
T.fails(function() return a:layernorm(nil, nil, -1) end, "eps must be finite and non-negative")
T.fails(function() return a:layernorm("x") end, "refract.Tensor expected, got string")
T.fails(function() return refract.where(1, a, b) end, "refract.Tensor expected, got number")
T.fails(function() return refract.where(c, a, refract.zeros(5)) end, "where: shapes")
local f = refract.zeros(2)
f:free()
T.fails(function() return f + 1 end, "tensor has been freed")
T.fails(function() return 1 + f end, "tensor has been freed")
T.fails(function() return -f end, "tensor has been freed")
T.fails(function() return f:exp() end, "tensor has been freed")
T.fails(function() return a:maximum(f) end, "tensor has been freed")
T.fails(function() return refract.where(f, 1, 2) end, "tensor has been freed")

-- }=====

T.done()
