-- Linear algebra: matmul with NumPy semantics (1-d operands, batches, broadcast batch
-- dimensions) against plain Lua, svd and eigh by their reconstruction errors and
-- invariants; misuse.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

-- {===== matmul

local xa, xb = R.random({ 3, 5 }, 1), R.random({ 5, 4 }, 2)
local a, b = refract.tensor(xa), refract.tensor(xb)
T.near(a:matmul(b):totable(), R.matmul(xa, xb), 2e-6, "2-d x 2-d")
T.near(refract.matmul(a, b):totable(), R.matmul(xa, xb), 2e-6, "refract.matmul")
T.near(a:matmul(b:t():t()):totable(), R.matmul(xa, xb), 2e-6)

-- 1-d operands: a row on the left, a column on the right, dropped from the result
local v5 = R.random({ 5 }, 3)
local tv5 = refract.tensor(v5)
T.eq(tv5:matmul(b):shape(), { 4 })
T.near(tv5:matmul(b):totable(), R.matmul({ v5 }, xb)[1], 2e-6, "1-d x 2-d")
T.eq(a:matmul(tv5):shape(), { 3 })
T.near(a:matmul(tv5):totable(), R.flat(R.matmul(xa, R.map(v5, function(p) return { p } end))), 2e-6,
  "2-d x 1-d")
T.eq(tv5:matmul(tv5):shape(), {}, "1-d x 1-d is a 0-d dot product")
local dot = 0
for i = 1, 5 do dot = dot + v5[i] * v5[i] end
T.near(tv5:matmul(tv5):item(), dot, 2e-6)

-- batches: equal, broadcast on either side, several batch dimensions
local xba = R.random({ 2, 3, 5 }, 4)
local tba = refract.tensor(xba)
local want = R.build({ 2, 3, 4 }, function(i) return R.matmul(xba[i[1]], xb)[i[2]][i[3]] end)
T.near(tba:matmul(b):totable(), want, 2e-6, "batched x 2-d")
local xbb = R.random({ 2, 5, 4 }, 5)
local tbb = refract.tensor(xbb)
want = R.build({ 2, 3, 4 }, function(i) return R.matmul(xa, xbb[i[1]])[i[2]][i[3]] end)
T.near(a:matmul(tbb):totable(), want, 2e-6, "2-d x batched")
want = R.build({ 2, 3, 4 }, function(i) return R.matmul(xba[i[1]], xbb[i[1]])[i[2]][i[3]] end)
T.near(tba:matmul(tbb):totable(), want, 2e-6, "batched x batched")
local x4a = R.random({ 2, 1, 3, 5 }, 6)
local x4b = R.random({ 3, 5, 2 }, 7)
local got = refract.tensor(x4a):matmul(refract.tensor(x4b))
T.eq(got:shape(), { 2, 3, 3, 2 }, "batch dimensions broadcast")
want = R.build({ 2, 3, 3, 2 }, function(i) return R.matmul(x4a[i[1]][1], x4b[i[2]])[i[3]][i[4]] end)
T.near(got:totable(), want, 2e-6, "broadcast batch values")
T.eq(refract.tensor(x4a):matmul(tv5):shape(), { 2, 1, 3 }, "batched x 1-d")
T.eq(tv5:matmul(tbb):shape(), { 2, 4 }, "1-d x batched")
T.eq(refract.zeros(2, 0):matmul(refract.zeros(0, 3)):totable(), { { 0, 0, 0 }, { 0, 0, 0 } }, "k = 0")
T.eq(refract.zeros(0, 5):matmul(b):shape(), { 0, 4 })
T.near(refract.tensor(xa):to("i64"):matmul(b):totable(),
  R.matmul(R.map(xa, function(p) return p < 0 and math.ceil(p) or math.floor(p) end), xb), 2e-6,
  "integer operands are converted")

-- }=====

-- {===== svd and eigh

local function max_abs(t) return t:abs():max():item() end

for _, shape in ipairs({ { 6, 4 }, { 4, 6 }, { 5, 5 }, { 1, 3 } }) do
  local xm = refract.tensor(R.random(shape, shape[1] * 10 + shape[2]))
  local U, S, V = refract.svd(xm)
  local k = math.min(shape[1], shape[2])
  local label = "svd " .. shape[1] .. "x" .. shape[2]
  T.eq(U:shape(), { shape[1], k }, label)
  T.eq(S:shape(), { k }, label)
  T.eq(V:shape(), { shape[2], k }, label)
  T.ok(max_abs((U * S):matmul(V:t()) - xm) < 1e-5, label .. " reconstructs")
  T.ok(max_abs(U:t():matmul(U) - refract.eye(k)) < 1e-5, label .. " U has orthonormal columns")
  T.ok(max_abs(V:t():matmul(V) - refract.eye(k)) < 1e-5, label .. " V has orthonormal columns")
  local s = S:totable()
  for i = 2, #s do T.ok(s[i] <= s[i - 1], label .. " singular values descend") end
  T.ok(s[#s] >= 0, label .. " singular values are non-negative")
end
local batch = refract.tensor(R.random({ 3, 4, 2 }, 9))
local U, S, V = refract.svd(batch)
T.eq(S:shape(), { 3, 2 }, "batched svd")
T.ok(max_abs((U * S:unsqueeze(2)):matmul(V:transpose(2, 3)) - batch) < 1e-5, "batched svd reconstructs")
U, S, V = refract.svd(refract.tensor({ { 3, 0 }, { 0, -2 } }))
T.near(S:totable(), { 3, 2 }, 1e-6, "known singular values")

local xs = R.random({ 5, 5 }, 12)
local sym = refract.tensor(xs)
sym = sym + sym:t()
local w, Q = refract.eigh(sym)
T.eq(w:shape(), { 5 })
T.eq(Q:shape(), { 5, 5 })
local wl = w:totable()
for i = 2, #wl do T.ok(wl[i] >= wl[i - 1], "eigenvalues ascend") end
T.ok(max_abs(sym:matmul(Q) - Q * w) < 1e-5, "A Q = Q diag(w): eigenvectors are columns")
T.ok(max_abs(Q:t():matmul(Q) - refract.eye(5)) < 1e-5, "orthonormal eigenvectors")
T.ok(max_abs((Q * w):matmul(Q:t()) - sym) < 1e-5, "eigh reconstructs")
w = refract.eigh(refract.tensor({ { 2, 1 }, { 1, 2 } }))
T.near(w:totable(), { 1, 3 }, 1e-6, "known eigenvalues")
local bw, bq = refract.eigh(refract.stack({ sym, sym * 2 }))
T.near(bw[2]:totable(), refract.eigh(sym * 2):totable(), 1e-5, "batched eigh")
T.eq(bq:shape(), { 2, 5, 5 })

-- }=====

-- {===== misuse

T.fails(function() return a:matmul(a) end, "matmul: shapes [3, 5] and [3, 5] do not match (inner dimensions 5 and 3)")
T.fails(function() return refract.matmul(a, "x") end, "bad argument #2 to 'matmul' (refract.Tensor expected, got string)")
T.fails(function() return a:matmul("x") end, "bad argument #1 to 'matmul' (refract.Tensor expected, got string)")
T.fails(function() return a:matmul(refract.tensor(2)) end, "operands need at least one dimension")
T.fails(function() return refract.zeros(2, 3, 5):matmul(refract.zeros(4, 5, 2)) end,
  "matmul: shapes [2, 3, 5] and [4, 5, 2]: batch dimensions do not broadcast")
T.fails(function() return refract.svd(refract.zeros(3)) end, "svd: needs a matrix (or a batch of them), got shape [3]")
T.fails(function() return refract.svd(refract.tensor({ { 1, 0 / 0 } })) end, "svd: the input contains NaN or infinity")
T.fails(function() return refract.svd("x") end, "refract.Tensor expected, got string")
T.fails(function() return refract.eigh(refract.zeros(2, 3)) end, "eigh: needs square matrices, got shape [2, 3]")
T.fails(function() return refract.eigh(refract.tensor({ { 1, 2 }, { 3, 4 } })) end,
  "eigh: the matrix is not symmetric (entry [1, 2] is 2.0 but [2, 1] is 3.0)")
T.fails(function() return refract.eigh(refract.tensor({ { 1, 1 / 0 }, { 1 / 0, 1 } })) end, "NaN or infinity")
local f = refract.zeros(2, 2)
f:free()
T.fails(function() return f:matmul(a) end, "tensor has been freed")
T.fails(function() return a:matmul(f) end, "tensor has been freed")
T.fails(function() return refract.svd(f) end, "tensor has been freed")
T.fails(function() return refract.eigh(f) end, "tensor has been freed")

-- }=====

T.done()
