-- model:forward on the tiny-gelu model: a plain pass equals encode_images, every tap has
-- its documented shape and the taps chain up (resid_pre.L+1 = resid_post.L, probability
-- rows sum to 1), layers, heads and tokens are 1-based, edits that write back what was
-- there change nothing, and every misuse raises a clear error (also midway through the
-- arguments, which must leak nothing: the suite runs under ASan with leak checking).
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local m = refract.load(data .. "/tiny-gelu/model")
local px = refract.read(data .. "/tiny-gelu/reference.safetensors", "pixels")
local cfg = m:config()
local B, N, W, H, L = px:shape(1), cfg.tokens, cfg.width, cfg.heads, cfg.layers
local DH = cfg.head_width
T.eq({ B, N, W, H, L, DH }, { 8, 17, 64, 4, 3, 16 }, "tiny-gelu sizes")

-- {===== helpers

local function flatten(t, out)
  out = out or {}
  if type(t) ~= "table" then out[#out + 1] = t return out end
  for i = 1, #t do flatten(t[i], out) end
  return out
end

-- Equal element by element (Lua numbers hold f32 values exactly, so this is bit equality
-- except for the sign of zero); reports the first difference instead of whole tables.
local function same(a, b, what)
  local x, y = flatten(a), flatten(b)
  local first
  if #x ~= #y then first = "sizes " .. #x .. " and " .. #y end
  for i = 1, #x do
    if not first and x[i] ~= y[i] then first = string.format("element %d: %.9g vs %.9g", i, x[i], y[i]) end
  end
  T.ok(first == nil, (what or "same") .. (first and (": " .. first) or ""))
end

local function differs(a, b, what)
  local x, y = flatten(a), flatten(b)
  local any = false
  for i = 1, #x do any = any or x[i] ~= y[i] end
  T.ok(any, what)
end

-- Columns [c0, c0 + n) of every row of a [B, N, C] table.
local function columns(t, c0, n)
  local out = {}
  for b = 1, #t do
    out[b] = {}
    for r = 1, #t[b] do
      out[b][r] = table.move(t[b][r], c0, c0 + n - 1, 1, {})
    end
  end
  return out
end

local function filled(n, x)
  local t = {}
  for i = 1, n do t[i] = x end
  return t
end

local count = T.count

-- }=====

-- {===== plain passes and taps

local e0 = m:encode_images(px):totable()
local plain = m:forward(px)
T.eq(plain.image_embeds:shape(), { B, cfg.embed_dim })
same(plain.image_embeds:totable(), e0, "forward(pixels) = encode_images")
T.eq(count(plain.taps), 0, "no taps asked, none returned")
same(m:forward(px, { edits = {}, taps = {} }).image_embeds:totable(), e0, "empty edits and taps")

local sites = { "resid_pre", "resid_post", "q", "k", "v", "probs", "heads", "attn_out", "mlp_hidden", "mlp_out" }
local names = { "embed" }
for l = 1, L do
  for _, s in ipairs(sites) do names[#names + 1] = s .. "." .. l end
end
local clean = m:forward(px, { taps = names })
same(clean.image_embeds:totable(), e0, "every tap: the embeddings are unchanged")
T.eq(count(clean.taps), #names, "one tensor per tap name")
for _, name in ipairs(names) do
  local site = name:match("^[%a_]+")
  local want = { B, N, W }
  if site == "probs" then want = { B, H, N, N } elseif site == "mlp_hidden" then want = { B, N, cfg.mlp_width } end
  local t = clean.taps[name]
  T.eq(t and t:shape(), want, "tap " .. name .. " shape")
  T.eq(t and t:dtype(), "f32", "tap " .. name .. " dtype")
end
local tab = {}
for name, t in pairs(clean.taps) do tab[name] = t:totable() end
same(tab["resid_pre.1"], tab.embed, "resid_pre.1 = embed")
for l = 1, L - 1 do same(tab["resid_pre." .. (l + 1)], tab["resid_post." .. l], "resid_pre." .. (l + 1) .. " = resid_post." .. l) end
local worst = 0
for l = 1, L do
  for b = 1, B do
    for h = 1, H do
      for q = 1, N do
        local s = 0
        for k = 1, N do s = s + tab["probs." .. l][b][h][q][k] end
        worst = math.max(worst, math.abs(s - 1))
      end
    end
  end
end
T.ok(worst < 1e-5, "probability rows sum to 1 (worst " .. worst .. ")")
local dup = m:forward(px, { taps = { "q.1", "embed", "q.1" } })
T.eq(count(dup.taps), 2, "a name given twice is tapped once")
same(dup.taps["q.1"]:totable(), tab["q.1"], "q.1 again")

-- }=====

-- {===== 1-based edits

-- head 2 of layer 2 is columns 17..32 of heads.2; layer 2's input is untouched
local z = m:forward(px, { edits = { { site = "head", layer = 2, head = 2, kind = "zero" } },
  taps = { "heads.2", "resid_pre.2" } })
local zh = z.taps["heads.2"]:totable()
same(flatten(columns(zh, DH + 1, DH)), filled(B * N * DH, 0), "zeroed head 2 reads 0 in columns 17..32")
same(columns(zh, 1, DH), columns(tab["heads.2"], 1, DH), "head 1 kept")
same(columns(zh, 2 * DH + 1, 2 * DH), columns(tab["heads.2"], 2 * DH + 1, 2 * DH), "heads 3 and 4 kept")
same(z.taps["resid_pre.2"]:totable(), tab["resid_pre.2"], "the stream entering layer 2 is untouched")
differs(z.image_embeds:totable(), e0, "zeroing a head changes the embeddings")

-- token 1 is CLS: its value row in v.1 reads 0, the other rows are kept
local zt = m:forward(px, { edits = { { site = "token", layer = 1, token = 1, kind = "zero" } }, taps = { "v.1" } })
local v = zt.taps["v.1"]:totable()
for b = 1, B do
  same(v[b][1], filled(W, 0), "image " .. b .. ": CLS value row zeroed")
  same(table.move(v[b], 2, N, 1, {}), table.move(tab["v.1"][b], 2, N, 1, {}), "image " .. b .. ": other rows kept")
end

-- the last layer is layer 3
local za = m:forward(px, { edits = { { site = "attn", layer = L, kind = "zero" } }, taps = { "attn_out." .. L } })
same(flatten(za.taps["attn_out." .. L]:totable()), filled(B * N * W, 0), "zeroed attention branch of the last layer")

-- }=====

-- {===== edits that change nothing

local hv = refract.tensor(columns(tab["heads.2"], 2 * DH + 1, DH))
local vrow = {}
for b = 1, B do vrow[b] = tab["v.2"][b][5] end
local tv = refract.tensor(vrow)
local noop = {
  { site = "head", layer = 2, head = 3, kind = "replace", value = hv },
  { site = "attn", layer = 2, kind = "replace", value = clean.taps["attn_out.2"] },
  { site = "mlp", layer = 3, kind = "replace", value = clean.taps["mlp_out.3"] },
  { site = "token", layer = 2, token = 5, kind = "replace", value = tv },
}
for i, e in ipairs(noop) do
  same(m:forward(px, { edits = { e } }).image_embeds:totable(), e0, "replace " .. e.site .. " with its own value")
end
same(m:forward(px, { edits = noop }).image_embeds:totable(), e0, "all four replacements at once")

-- With one image, a mean equal to its own values is a no-op as well.
local one = refract.preprocess(data .. "/tiny-gelu/images/01_large_pentagon.png", m)
T.eq(one:shape(), { 1, 3, 32, 32 })
local e1 = m:encode_images(one):totable()
local o = m:forward(one, { taps = { "heads.1", "attn_out.1", "mlp_out.1", "v.1" } })
local oh, ov = o.taps["heads.1"]:totable(), o.taps["v.1"]:totable()
local means = {
  { site = "head", layer = 1, head = 4, kind = "mean", value = refract.tensor(columns(oh, 3 * DH + 1, DH)[1]) },
  { site = "attn", layer = 1, kind = "mean", value = refract.tensor(o.taps["attn_out.1"]:totable()[1]) },
  { site = "mlp", layer = 1, kind = "mean", value = refract.tensor(o.taps["mlp_out.1"]:totable()[1]) },
  { site = "token", layer = 1, token = 9, kind = "mean", value = refract.tensor(ov[1][9]) },
}
for _, e in ipairs(means) do
  same(m:forward(one, { edits = { e } }).image_embeds:totable(), e1, "mean-ablate " .. e.site .. " with its own value")
end
-- a [dh] mean fills the head at every token of every image
local halves = {}
for j = 1, DH do halves[j] = 0.5 + j end
local fill = m:forward(px, { edits = { { site = "head", layer = 1, head = 1, kind = "mean", value = refract.tensor(halves) } },
  taps = { "heads.1" } }).taps["heads.1"]:totable()
local bad = 0
for b = 1, B do for n = 1, N do for j = 1, DH do if fill[b][n][j] ~= halves[j] then bad = bad + 1 end end end end
T.eq(bad, 0, "a [dh] mean fills head 1 everywhere")

-- }=====

-- {===== misuse

local function edit(fields)
  return function() return m:forward(px, { edits = { fields } }) end
end
local i64 = refract.tensor({ { 1 } }, "i64")
local gone = refract.tensor({ 1 })
gone:free()
local cases = {
  { edit { layer = 1, kind = "zero" }, "forward: edit 1: site is missing (head, attn, mlp, token)" },
  { edit { site = "heads", layer = 1, kind = "zero" }, "forward: edit 1: unknown site 'heads' (head, attn, mlp, token)" },
  { edit { site = 1, layer = 1, kind = "zero" }, "forward: edit 1: unknown site '1'" },
  { edit { site = "attn", layer = 1 }, "forward: edit 1: kind is missing (zero, mean, replace)" },
  { edit { site = "attn", layer = 1, kind = "ablate" }, "forward: edit 1: unknown kind 'ablate' (zero, mean, replace)" },
  { edit { site = "attn", kind = "zero" }, "forward: edit 1: layer is missing (an integer in 1..3)" },
  { edit { site = "attn", layer = 0, kind = "zero" }, "forward: edit 1: layer 0 is out of range (1..3)" },
  { edit { site = "mlp", layer = 4, kind = "zero" }, "forward: edit 1: layer 4 is out of range (1..3)" },
  { edit { site = "mlp", layer = "1", kind = "zero" }, "forward: edit 1: layer must be an integer, not string" },
  { edit { site = "mlp", layer = 1.5, kind = "zero" }, "forward: edit 1: layer must be an integer, not 1.5" },
  { edit { site = "head", layer = 1, kind = "zero" }, "forward: edit 1: head is missing (an integer in 1..4)" },
  { edit { site = "head", layer = 1, head = 0, kind = "zero" }, "forward: edit 1: head 0 is out of range (1..4)" },
  { edit { site = "head", layer = 1, head = 5, kind = "zero" }, "forward: edit 1: head 5 is out of range (1..4)" },
  { edit { site = "token", layer = 1, kind = "zero" }, "forward: edit 1: token is missing (an integer in 1..17)" },
  { edit { site = "token", layer = 1, token = 18, kind = "zero" }, "forward: edit 1: token 18 is out of range (1..17)" },
  { edit { site = "attn", layer = 1, head = 1, kind = "zero" }, 'forward: edit 1: head is only for site "head"' },
  { edit { site = "head", layer = 1, head = 1, token = 2, kind = "zero" }, 'forward: edit 1: token is only for site "token"' },
  { edit { site = "attn", layer = 1, kind = "zero", heads = 2 },
    "forward: edit 1: unknown field 'heads' (site, layer, head, token, kind, value)" },
  { edit { site = "attn", layer = 1, kind = "zero", [1] = true }, "forward: edit 1: unknown field 'number'" },
  { edit { site = "attn", layer = 1, kind = "zero", value = hv }, "forward: edit 1: a zero edit takes no value" },
  { edit { site = "attn", layer = 1, kind = "mean" }, "forward: edit 1: a mean edit needs a value (a tensor)" },
  { edit { site = "attn", layer = 1, kind = "replace", value = { 1, 2 } },
    "forward: edit 1: value must be a refract.Tensor, not table" },
  { edit { site = "attn", layer = 1, kind = "mean", value = gone }, "forward: edit 1: the value tensor has been freed" },
  { edit { site = "head", layer = 1, head = 1, kind = "mean", value = refract.tensor({ 1, 2, 3, 4 }) },
    "forward: edit 1: a mean edit of a head takes a value of shape [17, 16] or [16], not [4]" },
  { edit { site = "head", layer = 1, head = 1, kind = "replace", value = means[1].value },
    "forward: edit 1: a replace edit of a head takes a value of shape [8, 17, 16], not [17, 16]" },
  { edit { site = "attn", layer = 1, kind = "mean", value = refract.tensor({ 1, 2 }) },
    "forward: edit 1: a mean edit of the attention branch takes a value of shape [17, 64] or [64], not [2]" },
  { edit { site = "mlp", layer = 1, kind = "replace", value = means[3].value },
    "forward: edit 1: a replace edit of the MLP branch takes a value of shape [8, 17, 64], not [17, 64]" },
  { edit { site = "token", layer = 1, token = 1, kind = "mean", value = hv },
    "forward: edit 1: a mean edit of a token takes a value of shape [64], not [8, 17, 16]" },
  { edit { site = "token", layer = 1, token = 1, kind = "replace", value = means[4].value },
    "forward: edit 1: a replace edit of a token takes a value of shape [8, 64], not [64]" },
  { edit { site = "attn", layer = 1, kind = "mean", value = i64 },
    "forward: edit 1: the value of a mean edit must be f32, not I64" },
  { function() return m:forward(px, { edits = { noop[1], { site = "mlp", layer = 9, kind = "zero" } } }) end,
    "forward: edit 2: layer 9 is out of range (1..3)" },
  { function() return m:forward(px, { edits = { noop[2], { site = "mlp", layer = 1, kind = "mean", value = hv } } }) end,
    "forward: edit 2: a mean edit of the MLP branch takes a value of shape [17, 64] or [64], not [8, 17, 16]" },
  { function() return m:forward(px, { edits = "zero" }) end, "forward: edits must be a list of tables, not string" },
  { function() return m:forward(px, { edits = { 3 } }) end,
    "forward: edit 1 must be a table {site=, layer=, kind=, ...}, not number" },
  { function() return m:forward(px, { taps = "q.1" }) end, "forward: taps must be a list of names, not string" },
  { function() return m:forward(px, { taps = { "q.1", 2 } }) end,
    'forward: taps[2] must be a name such as "resid_post.1", not number' },
  { function() return m:forward(px, { taps = { "resid.1" } }) end,
    "forward: unknown tap 'resid.1' (embed, resid_pre.L, resid_post.L, q.L, k.L, v.L, probs.L, heads.L, attn_out.L, " ..
    "mlp_hidden.L, mlp_out.L with L in 1..3)" },
  { function() return m:forward(px, { taps = { "a_very_long_name_that_is_not_a_tap_at_all.1" } }) end,
    "forward: unknown tap 'a_very_long_name_that_is_not_a_tap_at_all.1'" },
  { function() return m:forward(px, { taps = { "q" } }) end, "forward: tap 'q' needs a layer: 'q.1' .. 'q.3'" },
  { function() return m:forward(px, { taps = { "q.0" } }) end, "forward: tap 'q.0': layer 0 is out of range (1..3)" },
  { function() return m:forward(px, { taps = { "probs.4" } }) end, "forward: tap 'probs.4': layer 4 is out of range (1..3)" },
  { function() return m:forward(px, { taps = { "q.x" } }) end, "forward: tap 'q.x': the layer must be an integer, as in 'q.1'" },
  { function() return m:forward(px, { taps = { "q.1.2" } }) end, "forward: tap 'q.1.2': the layer must be an integer" },
  { function() return m:forward(px, { taps = { "embed.1" } }) end, "forward: tap 'embed.1': embed has no layer" },
  { function() return m:forward(px, { edit = {} }) end, "forward: unknown option 'edit' (edits, taps)" },
  { function() return m:forward(px, "taps") end, "bad argument #2 to 'forward' (table expected, got string)" },
  { function() return m:forward(refract.tensor({ 1, 2 })) end, "forward: pixels must be f32 [B, 3, 32, 32], got F32 [2]" },
  { function() return m:forward() end, "bad argument #1 to 'forward' (refract.Tensor expected, got no value)" },
}
for _, c in ipairs(cases) do T.fails(c[1], c[2]) end
local freed = refract.load(data .. "/tiny-gelu/model", { vision_only = true })
freed:free()
T.fails(function() return freed:forward(px) end, "model has been freed")

-- The arguments are read raw: a metamethod on an edit table cannot run (here it would free
-- the first edit's value after that was checked, leaving the pass a dangling tensor).
local victim = refract.tensor(halves)
local sneaky = setmetatable({}, { __index = function(_, k)
  victim:free()
  return ({ site = "mlp", layer = 1, kind = "zero" })[k]
end })
T.fails(function() return m:forward(px, { edits = { means[1], sneaky } }) end, "forward: edit 2: site is missing")
T.ok(not victim:is_freed(), "no metamethod ran")
-- Finalizers can run inside any allocation of the call; one that frees a value tensor
-- gives the clear error (the handles are looked up after the last allocation) or, when it
-- runs later, a normal pass.
collectgarbage("incremental", 0, 1000, 0)   -- a collection step at every allocation
for i = 1, 10 do
  local v1 = refract.tensor(halves)
  setmetatable({}, { __gc = function() v1:free() end })
  local ok, err = pcall(m.forward, m, px, { edits = { { site = "head", layer = 1, head = 1, kind = "mean", value = v1 } } })
  T.ok(ok or err:find("the value tensor has been freed", 1, true), "finalizer " .. i .. ": " .. tostring(err))
end
collectgarbage("incremental", 200, 100, 13)   -- Lua 5.4's defaults

-- Errors raised while the arguments are read, and C failures after the result's handles
-- exist, interleaved with passes that succeed: nothing may leak (ASan checks at exit).
for i = 1, 20 do
  local ok = pcall(m.forward, m, px, { taps = { "q.1", "probs.2" }, edits = { noop[2], { site = "head", layer = 1 } } })
  T.ok(not ok, "failing pass " .. i)
  ok = pcall(m.forward, m, px, { taps = { "heads.1", "mlp_hidden.3" },
    edits = { { site = "mlp", layer = 1, kind = "replace", value = hv } } })
  T.ok(not ok, "failing pass " .. i .. " (value shape, checked in C)")
  local r = m:forward(px, { taps = { "probs.1", "mlp_hidden.2" }, edits = { noop[1] } })
  if i % 5 == 0 then
    r.taps["probs.1"]:free()
    T.ok(r.taps["probs.1"]:is_freed(), "a tap can be freed")
    collectgarbage()
  end
end

-- }=====

T.done()
