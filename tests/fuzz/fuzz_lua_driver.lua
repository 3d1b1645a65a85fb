-- fuzz_lua_driver.lua: the Lua side of fuzz_lua.c. run(input) reads the input as a
-- program: each step calls a constructor of refract or a method of a tensor held in one
-- of 8 slots, with arguments drawn from the input (small and zero sizes, negative, huge
-- and INT64-extreme numbers, NaN, wrong types, plain, proxy and metatable'd tables, freed
-- tensors), through pcall: errors are fine, crashes and sanitizer reports are not. Some
-- steps free a slot or run a full collection. Shapes that would really allocate more
-- than CAP elements are replaced (the fuzzer must not exhaust memory); shapes that the
-- checks must refuse (negative, overflowing) are passed as they are.
local refract = require("refract")

local CAP = 4096
local pos, input
local slots = {}

local function byte()
  pos = pos + 1
  return input:byte(pos) or 0
end

local function more() return pos < #input end

local EXTREME = { math.maxinteger, math.mininteger, 2^31, 2^32, 2^62, -2^62, 1 << 62,
                  (1 << 31) - 1, 1 << 40, -1, -2, 0 }

local function small() return byte() % 6 end

local function int()
  local b = byte()
  if b < 160 then return b % 6 end
  if b < 200 then return -(b % 4) end
  return EXTREME[b % #EXTREME + 1]
end

-- A proxy whose metamethods would lie about its contents (refract must read tables raw).
local function proxy(inner)
  return setmetatable({}, {
    __index = function(_, k) return inner[k] end,
    __len = function() return math.maxinteger end,
    __pairs = function() error("pairs on a proxy") end,
  })
end

-- Bytes a shape really needs: nil when the checks must refuse it anyway.
local function real_numel(dims)
  local n = 1.0
  for _, d in ipairs(dims) do
    if math.type(d) ~= "integer" or d < 0 then return nil end
    n = n * d
  end
  return n
end

local function shape()
  local nd = byte() % 9
  local dims = {}
  for i = 1, nd do dims[i] = int() end
  local n = real_numel(dims)
  -- 2^61 elements of the smallest dtype still pass the checks' 2^62 bytes: shrink
  -- everything in between, since it would really be allocated.
  if n and n > CAP and n < 2^63 then
    for i = 1, nd do dims[i] = small() end
  end
  return dims
end

local DTYPES = { "f32", "f16", "bf16", "i64", "i32", "u8", "float", "bogus", "" }

local function nested(depth)
  local n = byte() % 4
  local t = {}
  for i = 1, n do
    if depth > 0 and byte() % 2 == 0 then t[i] = nested(depth - 1)
    else
      local b = byte()
      t[i] = b < 200 and (b - 100) / 7 or (b < 230 and int() or (b % 2 == 0))
    end
  end
  return t
end

local function tensor_arg()
  return slots[byte() % 8 + 1]
end

local value
local function table_arg()
  local k = byte() % 5
  if k == 0 then return shape() end
  if k == 1 then return proxy(shape()) end
  if k == 2 then return setmetatable(shape(), { __index = function() error("index") end }) end
  if k == 3 then return { tensor_arg(), tensor_arg() } end
  return nested(2)
end

function value()
  local k = byte() % 12
  if k <= 3 then return int() end
  if k == 4 then return ({ 0.5, -0.0, 0/0, 1/0, -1/0, 1e300, 2^53 + 1 })[byte() % 7 + 1] end
  if k == 5 then return DTYPES[byte() % #DTYPES + 1] end
  if k == 6 then return nil end
  if k == 7 then return byte() % 2 == 0 end
  if k <= 9 then return table_arg() end
  return tensor_arg()
end

local function args()
  local a, n = {}, byte() % 4
  for i = 1, n do a[i] = value() end
  return a, n
end

local CONSTRUCTORS = {
  function() return refract.zeros(shape(), value()) end,
  function() return refract.ones(shape()) end,
  function() return refract.full(shape(), value(), value()) end,
  function() return refract.rand(shape(), int(), value()) end,
  function() return refract.randn(shape(), int()) end,
  function() return refract.tensor(nested(3), value()) end,
  function() return refract.tensor(value()) end,
  function() local n = int(); if n > 64 and n < 2^62 then n = small() end
             return refract.arange(n) end,
  function() return refract.arange(int(), int(), value()) end,
  function() local n, m = small() * 4, small() * 4; return refract.eye(n, m) end,
  function() return refract.cat({ tensor_arg(), tensor_arg(), tensor_arg() }, int()) end,
  function() return refract.stack({ tensor_arg(), tensor_arg() }, int()) end,
  function() return refract.where(tensor_arg(), value(), value()) end,
  function() return refract.matmul(tensor_arg(), tensor_arg()) end,
  function() return refract.svd(tensor_arg()) end,
  function() return refract.eigh(tensor_arg()) end,
}

local METHODS = {
  "shape", "dtype", "ndim", "numel", "device", "free", "is_freed", "totable", "item", "to",
  "float", "half", "host", "to_device", "select", "narrow", "slice", "index", "set",
  "masked_fill", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt",
  "gt", "neg", "abs", "exp", "log", "sqrt", "tanh", "relu", "gelu", "round", "logical_not",
  "clamp", "softmax", "layernorm", "sum", "mean", "prod", "var", "std", "max", "min",
  "argmax", "argmin", "norm", "normalize", "all", "any", "topk", "reshape", "view",
  "flatten", "squeeze", "unsqueeze", "permute", "transpose", "t", "expand", "clone",
  "contiguous", "matmul",
}

-- Methods whose argument is a shape to allocate: given guarded shapes only.
local SHAPED = { expand = true }

-- Results are kept below 16 * CAP elements: shape() guards what is allocated directly, but
-- cat, stack and broadcasting grow sizes step after step (a [4, 4, 4, 324, 4, 4, 4, 4] sum
-- then took 27 s per input in svd's 331,776 factorisations: work, not a hang).
local KEEP = 16 * CAP

local function store(r)
  if type(r) ~= "userdata" then return end
  local ok, n = pcall(function() return r:numel() end)
  if ok and n > KEEP then
    r:free()
    return
  end
  slots[byte() % 8 + 1] = r
end

local function step()
  local op = byte()
  if op < 60 then
    local ok, r = pcall(CONSTRUCTORS[op % #CONSTRUCTORS + 1])
    if ok then store(r) end
  elseif op < 220 then
    local t = tensor_arg()
    local name = METHODS[byte() % #METHODS + 1]
    local a, n = args()
    if SHAPED[name] then a, n = { shape() }, 1 end
    local ok, r = pcall(function() return t[name](t, table.unpack(a, 1, n)) end)
    if ok then store(r) end
  elseif op < 235 then
    local ok, r = pcall(function() return tensor_arg() + tensor_arg() end)
    if ok then store(r) end
  elseif op < 245 then
    local t = tensor_arg()
    if t then t:free() end
  elseif op < 250 then
    slots[byte() % 8 + 1] = nil
  else
    collectgarbage("collect")
  end
end

-- Runs one input; returns the device allocations left once every slot is dropped.
function run(data)
  input, pos = data, 0
  for i = 1, 8 do slots[i] = nil end
  local steps = 0
  while more() and steps < 64 do
    step()
    steps = steps + 1
  end
  for i = 1, 8 do slots[i] = nil end
  collectgarbage("collect")
  collectgarbage("collect")
  return refract.memory().allocations
end
