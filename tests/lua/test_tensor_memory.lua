-- Memory: 10,000 tensor allocations in a loop leave device memory where it was (with
-- free, with <close>, and with the collector alone), also when errors are raised in the
-- middle of operations; out-of-memory collects garbage and retries once; tensors larger
-- than one storage binding work (ctest lowers the binding limit to 1 MiB with
-- REFRACT_MAX_STORAGE_RANGE, so these are small on any device).
local refract = require("refract")
local T = require("testlib")

local N = 10000

-- The operations the loops use, run once so that their pipelines, the context and the
-- first memory block exist before the baseline is taken.
local function work(x)
  return ((x + 1) * x):exp():sum(1):softmax()
end
do
  local w = refract.ones(4, 4)
  local _ = work(w)
  _ = w:matmul(w):t():index(1, { 2, 1 }):topk(1)
  _ = refract.cat({ w, w }):max()
end
collectgarbage()
collectgarbage()
refract.finish()
local base = refract.memory()

local function same_memory(what)
  collectgarbage()
  collectgarbage()
  local m = refract.memory()
  T.eq(m.in_use, base.in_use, what .. ": in_use unchanged")
  T.eq(m.reserved, base.reserved, what .. ": reserved unchanged")
  T.eq(m.allocations, base.allocations, what .. ": live allocations unchanged")
end

-- {===== 10,000 allocations, three ways

for i = 1, N do
  local x = refract.zeros(4, 4)
  x:free()
end
same_memory("explicit free")

for i = 1, N do
  local x <close> = refract.tensor({ i, 2, 3 })
end
same_memory("<close>")

refract.reset_peak_memory()
for i = 1, N do
  local x = refract.full({ 8 }, i)
end
same_memory("the collector")
-- The collector keeps up inside the loop too: far less than 10,000 tensors were alive.
T.ok(refract.memory().peak - base.in_use < N * 256 / 4, "collected during the loop")

-- Operations with temporaries (numbers become 0-d tensors, reductions use scratch).
for i = 1, N / 10 do
  local y = work(refract.ones(4, 4))
end
same_memory("operations")

-- The 10,000 again with tensors of 64 KiB, so the collector's pacing by device bytes
-- matters: peak memory stays bounded without free or <close>.
refract.reset_peak_memory()
for i = 1, N do
  local x = refract.zeros(128, 128)
end
T.ok(refract.memory().peak - base.in_use < 256 * 65536, "64 KiB tensors collected as they go")
same_memory("64 KiB tensors")

-- }=====

-- {===== errors raised in the middle of operations leak nothing

local a, b = refract.ones(3, 4), refract.ones(5, 6)
local failing = {
  function() return a + b end,
  function() return a:matmul(a) end,
  function() return a:index(1, { 1, 2, 9 }) end,
  function() return a:index(2, refract.tensor({ 1, 7 }, "i64")) end,
  function() a[1] = refract.ones(7) end,
  function() return a:masked_fill(b, 0) end,
  function() return refract.cat({ a, b }) end,
  function() return refract.stack({ a, a, b }) end,
  function() return refract.tensor({ { 1, 2 }, { 3 } }) end,
  function() return refract.tensor({ 1, 2, 2.5 }, "i64") end,
  function() return a:reshape(5, 5) end,
  function() return a:expand(4, 4) end,
  function() return a:layernorm(refract.ones(3)) end,
  function() return a:topk(9) end,
  function() return refract.svd(refract.tensor({ { 1, 0 / 0 } })) end,
  function() return refract.eigh(refract.tensor({ { 1, 2 }, { 3, 1 } })) end,
  function() return refract.where(a, b, 1) end,
  function() return a:sum({ 1, 1 }) end,
  function() return refract.zeros({ 2 ^ 31, 2 ^ 10 }) end,
}
for i = 1, 100 do
  for k, f in ipairs(failing) do
    local ok = pcall(f)
    if i == 1 then T.ok(not ok, "case " .. k .. " fails") end
  end
end
a:free()
b:free()
same_memory("failing operations")

-- }=====

-- {===== device out of memory: collect and retry once

local budget = refract.device().budget_bytes
local n = math.floor(budget * 0.55 / 4)
local first = refract.zeros(n)
T.eq(first:numel(), n)
first = nil          -- unreachable, not yet collected
local second = refract.zeros(n)     -- fails once, collects `first`, retries
T.eq(second:numel(), n, "the retry after a collection succeeds")
T.fails(function() return refract.zeros(n) end, "out of device memory")
second:free()
T.fails(function() return refract.zeros(math.floor(budget / 4) + 1024) end,
  "allocating a tensor: out of device memory")

-- }=====

-- {===== tensors larger than one storage binding

local range = refract.device().max_storage_range
local limit = os.getenv("REFRACT_MAX_STORAGE_RANGE")
if limit then T.eq(range, tonumber(limit), "the context uses REFRACT_MAX_STORAGE_RANGE") end
T.ok(range <= 256 << 20, "a binding limit a test can exceed (REFRACT_MAX_STORAGE_RANGE lowers it; ctest sets it)")
T.refused(T.run(string.format("REFRACT_MAX_STORAGE_RANGE=12x '%s' -e 'refract.zeros(1)'", refract.executable())),
  "REFRACT_MAX_STORAGE_RANGE=12x: expected a number of bytes", "a bad limit")
if range <= 256 << 20 then
  local rows, cols = 1024, (range // 4) // 1024 + 64       -- just over one binding
  local x = refract.arange(rows):reshape(rows, 1):expand(rows, cols)
  T.eq(x:numel() * 4 > range, true, "the tensor is larger than one binding")
  local y = x + refract.arange(cols)           -- binary op with broadcasting, windows
  T.eq(y[rows][cols]:item(), rows + cols, "binary op past the binding")
  T.eq(y[1][1]:item(), 2)
  local e = (x * 0):exp()                      -- unary op
  T.eq(e:min():item(), 1, "unary op past the binding")
  T.eq(x:sum():item(), cols * rows * (rows + 1) / 2, "sum past the binding")
  T.eq(x:max(2):totable()[rows], rows, "max along rows")
  local t = x:t()                              -- strided copy
  T.eq(t:shape(), { cols, rows })
  T.eq(t[cols][rows]:item(), rows, "transpose past the binding")
  local s = x:softmax(2)                       -- rows in windows
  T.near(s[1][1]:item() * cols, 1.0, 1e-6, "softmax past the binding")
  local w = refract.where(x:gt(512), x, 0)     -- where
  T.eq(w[1][1]:item(), 0)
  T.eq(w[rows][1]:item(), rows)
  local g = x:index(1, { rows, 1 })            -- gather
  T.eq(g[1][cols]:item(), rows)
  local c = refract.cat({ x[1]:unsqueeze(1), x[rows]:unsqueeze(1) })
  T.eq(c:shape(), { 2, cols })
  x, y, e, t, s, w, g, c = nil, nil, nil, nil, nil, nil, nil, nil
  collectgarbage()
end

-- }=====

-- {===== a finalizer that frees a tensor in the middle of an operation
-- A collection step runs finalizers, and any allocation inside a binding may take one
-- (the result's handle, its device memory accounting): a finalizer that frees an operand
-- must not release it under the operation, which was a use-after-free (sanitizer build).
-- The handle reads as freed at once; the memory goes when the handle is collected.

local function free_when_collected(t)
  setmetatable({}, { __gc = function() t:free() end })
end
for _, op in ipairs({
  function(a) return a:matmul(a):sum():item() end,
  function(a) return (a + 1):sum():item() end,
  function(a) return a:exp():max():item() end,
  function(a) return a:t():index(1, { 2, 1 }):sum():item() end,
}) do
  local a = refract.ones(512, 512)
  free_when_collected(a)
  T.ok(pcall(op, a) ~= nil, "the operation ends (a result or a clear error)")
  collectgarbage()
  T.eq(a:is_freed(), true, "freed by the finalizer")
  T.fails(function() return a + 1 end, "tensor has been freed")
end
do -- the memory of a tensor freed in a finalizer goes with its handle, or a second free
  collectgarbage()
  collectgarbage()
  local before = refract.memory().in_use
  local a = refract.ones(256, 256)
  free_when_collected(a)
  collectgarbage()
  T.eq(a:is_freed(), true)
  a:free()
  T.eq(refract.memory().in_use, before, "a second free outside the finalizer releases it")
  local b = refract.ones(256, 256)
  free_when_collected(b)
  collectgarbage()
  b = nil
  collectgarbage()
  collectgarbage()
  T.eq(refract.memory().in_use, before, "the collector releases it with the handle")
end

-- }=====

T.done()
