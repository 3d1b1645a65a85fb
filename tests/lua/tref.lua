-- tref: plain-Lua references for the tensor tests: nested tables as n-d arrays, built,
-- mapped and reduced with ordinary Lua arithmetic (in double precision).
local R = {}

-- The shape of a nested table (the first row at each level).
function R.shape(a)
  local s = {}
  while type(a) == "table" do
    s[#s + 1] = #a
    a = a[1]
  end
  return s
end

-- A nested table of `shape` whose element at the 1-based index list idx is f(idx).
function R.build(shape, f)
  local idx = {}
  local function go(d)
    if d > #shape then
      local copy = {}
      for i = 1, #idx do copy[i] = idx[i] end
      return f(copy)
    end
    local t = {}
    for i = 1, shape[d] do
      idx[d] = i
      t[i] = go(d + 1)
    end
    return t
  end
  return go(1)
end

-- The element of nested table a at the 1-based index list idx.
function R.get(a, idx)
  for i = 1, #idx do a = a[idx[i]] end
  return a
end

function R.map(a, f)
  if type(a) ~= "table" then return f(a) end
  local t = {}
  for i = 1, #a do t[i] = R.map(a[i], f) end
  return t
end

-- Elementwise f(a, b) with NumPy broadcasting (numbers count as 0-d).
function R.map2(a, b, f)
  local sa, sb = R.shape(a), R.shape(b)
  local n = math.max(#sa, #sb)
  local out = {}
  for d = 1, n do
    local x = sa[d - (n - #sa)] or 1
    local y = sb[d - (n - #sb)] or 1
    assert(x == y or x == 1 or y == 1, "shapes do not broadcast")
    out[d] = x == 1 and y or x
  end
  local function pick(s, idx)
    local sub = {}
    for d = 1, #s do
      local i = idx[d + n - #s]
      sub[d] = s[d] == 1 and 1 or i
    end
    return sub
  end
  return R.build(out, function(idx)
    return f(R.get(a, pick(sa, idx)), R.get(b, pick(sb, idx)))
  end)
end

-- Reduces over the dimensions listed in dims (1-based; nil = all): for each output,
-- fn receives the list of reduced values in row-major order.
function R.reduce(a, dims, keepdim, fn)
  local s = R.shape(a)
  local red = {}
  if dims == nil then
    for d = 1, #s do red[d] = true end
  elseif type(dims) == "number" then
    red[dims < 0 and #s + 1 + dims or dims] = true
  else
    for _, d in ipairs(dims) do red[d < 0 and #s + 1 + d or d] = true end
  end
  local kept = {}
  for d = 1, #s do
    if not red[d] then kept[#kept + 1] = s[d] elseif keepdim then kept[#kept + 1] = 1 end
  end
  local function values(outidx)
    local full, k = {}, 1
    for d = 1, #s do
      if not red[d] then
        full[d] = outidx[k]; k = k + 1
      elseif keepdim then
        k = k + 1
      end
    end
    local vals = {}
    local function go(d)
      if d > #s then vals[#vals + 1] = R.get(a, full) return end
      if red[d] then
        for i = 1, s[d] do full[d] = i; go(d + 1) end
      else
        go(d + 1)
      end
    end
    go(1)
    return vals
  end
  if #kept == 0 then return fn(values({})) end
  return R.build(kept, function(idx) return fn(values(idx)) end)
end

function R.sum(v) local s = 0 for _, x in ipairs(v) do s = s + x end return s end
function R.mean(v) return R.sum(v) / #v end
function R.prod(v) local p = 1 for _, x in ipairs(v) do p = p * x end return p end
function R.max(v) local m = -math.huge for _, x in ipairs(v) do if x > m then m = x end end return m end
function R.min(v) local m = math.huge for _, x in ipairs(v) do if x < m then m = x end end return m end
function R.var(v, c)
  local m, s = R.mean(v), 0
  for _, x in ipairs(v) do s = s + (x - m) ^ 2 end
  return s / (#v - (c or 1))
end
function R.norm(v) local s = 0 for _, x in ipairs(v) do s = s + x * x end return math.sqrt(s) end

-- Row-major flat list of a nested table.
function R.flat(a, out)
  out = out or {}
  if type(a) ~= "table" then out[#out + 1] = a return out end
  for i = 1, #a do R.flat(a[i], out) end
  return out
end

-- Plain matrix product of two 2-d nested tables.
function R.matmul(a, b)
  return R.build({ #a, #b[1] }, function(idx)
    local s = 0
    for k = 1, #b do s = s + a[idx[1]][k] * b[k][idx[2]] end
    return s
  end)
end

function R.transpose(a)
  return R.build({ #a[1], #a }, function(idx) return a[idx[2]][idx[1]] end)
end

-- A deterministic pseudo-random matrix (a linear congruential generator), values in
-- [-1, 1), so tests need no tensor code to make their inputs.
function R.random(shape, seed)
  local x = seed or 1
  return R.build(shape, function()
    x = (x * 1103515245 + 12345) % 2147483648
    return (x // 256) / 4194304 - 1   -- 23 bits: exact in f32
  end)
end

return R
