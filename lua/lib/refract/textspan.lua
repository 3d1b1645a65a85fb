-- refract.textspan: TextSpan (Gandelsman et al., ICLR 2024, section 4.1; definitions in
-- tests/data/tiny-gelu/README.md, item 4): for one attention head, a greedy choice of
-- texts from a pool whose directions explain the most variance of the head's direct
-- contributions over a dataset, each pick projected out of the data and of the other texts
-- before the next.
--
--   local textspan = require("refract.textspan")
--   local pool = textspan.embed_pool(model, texts)                  -- [T, D], unit rows
--   local h = textspan.head(x, pool, { rank = 32, texts = 10 })     -- x: one head [B, D]
--   -- h.chosen (pool rows, from 1), h.variance (shares), h.reconstruction [B, D]
--   local run = textspan.run(dec, pool, { layers = 4 })              -- the paper's setting
--
-- Layers and heads are numbered from 1; chosen rows are 1-based indices into the pool.
local refract = require("refract")
local util = require("refract.util")

local M = {}

-- The paper's rank of a head's span: half the embedding size, at most the head width
-- (a head's outputs span at most head width + 3 directions; more would add noise).
function M.default_rank(dim, head_width)
  return math.max(1, math.min(dim // 2, head_width))
end

-- Text embeddings of the pool, each divided by its norm: [T, D] on the device.
-- opts.batch (default 256), opts.progress(n) after each batch.
function M.embed_pool(model, texts, opts)
  util.check_options(opts, "textspan.embed_pool", { "batch", "progress" })
  opts = opts or {}
  local batch = opts.batch or 256
  local parts = {}
  for first = 1, #texts, batch do
    local chunk = {}
    for i = first, math.min(#texts, first + batch - 1) do chunk[#chunk + 1] = texts[i] end
    local e = model:encode_texts(chunk)
    parts[#parts + 1] = e:normalize(2)
    e:free()
    if opts.progress then opts.progress(#chunk) end
  end
  local pool = #parts == 1 and parts[1] or refract.cat(parts, 1)
  if #parts > 1 then for _, p in ipairs(parts) do p:free() end end
  return pool
end

local function outer(a, b)
  local ca, rb = a:unsqueeze(2), b:unsqueeze(1)
  local o = ca * rb
  ca:free()
  rb:free()
  return o
end

local function replace(old, new)
  old:free()
  return new
end

-- TextSpan of one head. x: its direct contributions [B, D]; pool: [T, D] unit text
-- embeddings. opts.rank (r), opts.texts (number of picks, at most r).
-- Returns { chosen = {rows from 1}, variance = {share of the head's variance each pick
-- explains}, reconstruction = [B, D] }.
--
-- As the reference: the texts are projected onto the span of the r top right singular
-- vectors of x (not centred); the data is centred; each step picks the text whose
-- projection of the data has the largest standard deviation over the images, adds the
-- data's component along it to the reconstruction (which starts at the data's mean) and
-- projects it out of the data and of every text. The standard deviations are computed as
-- sqrt(t' G t / (B - 1)) with G = Xc^T Xc of the centred data: every pick is orthogonal to
-- the earlier ones, so projecting them out of the texts alone gives the same numbers as
-- projecting them out of the data too, at D x D cost per text instead of B x D.
function M.head(x, pool, opts)
  util.check_options(opts, "textspan.head", { "rank", "texts" })
  local b, d = x:shape(1), x:shape(2)
  local rank, n = opts.rank, opts.texts
  if rank > math.min(b, d) then
    error(string.format("textspan: rank %d exceeds what %d images of dimension %d can span", rank, b, d), 0)
  end
  if n > rank then
    error(string.format("textspan: %d texts per head exceed the rank %d (each pick removes a direction)", n, rank), 0)
  end
  local _, _, v = refract.svd(x)
  local vr = v:narrow(2, 1, rank)
  v:free()
  local vrt = vr:t()
  local projected = pool:matmul(vr)
  local tp = projected:matmul(vrt)
  projected:free()
  vr:free()
  vrt:free()
  local mean = x:mean(1)
  local xc = x - mean
  local recon = mean:expand(b, d)
  mean:free()
  local xct = xc:t()
  local g = xct:matmul(xc)
  xct:free()
  local total = (xc * xc):sum():item()
  local chosen, variance = {}, {}
  for _ = 1, n do
    local m = tp:matmul(g)
    local prod = m * tp
    m:free()
    local score = prod:sum(2)
    prod:free()
    local j = score:argmax():item()
    score:free()
    local t = tp[j]
    local tau = (t * t):sum():item()
    local xt = xc:matmul(t)
    local coef = xt / tau
    xt:free()
    local step = outer(coef, t)
    recon = replace(recon, recon + step)
    xc = replace(xc, xc - step)
    step:free()
    variance[#variance + 1] = total > 0 and (coef * coef):sum():item() * tau / total or 0
    coef:free()
    local pt = tp:matmul(t)
    local along = pt / tau
    pt:free()
    local remove = outer(along, t)
    along:free()
    tp = replace(tp, tp - remove)
    remove:free()
    t:free()
    chosen[#chosen + 1] = j
  end
  tp:free()
  xc:free()
  g:free()
  return { chosen = chosen, variance = variance, reconstruction = recon }
end

-- The paper's TextSpan over the heads of the last `layers` layers of a decomposition
-- (refract.data.read_decomposition), with every head of the earlier layers mean-ablated.
-- opts: layers (K, default min(4, L)), rank, texts (per head, default 10),
-- classifier [D, C] and labels (list, from 0) for accuracies, on_head(result, index, total).
-- Returns { heads = { {layer, head, chosen, variance, accuracy?} ... } in layer-then-head
-- order, representation [B, D] (mean-ablated and replaced), and with a classifier
-- accuracy_baseline, accuracy_mean_ablated, accuracy }.
function M.run(dec, pool, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "layers" and key ~= "rank" and key ~= "texts" and key ~= "classifier" and key ~= "labels"
       and key ~= "on_head" then
      error("textspan.run: unknown option " .. tostring(key), 2)
    end
  end
  local ablate = require("refract.ablate")
  local L = dec.layers
  local k = opts.layers or math.min(4, L)
  if k < 1 or k > L then error(string.format("textspan: layers must be 1..%d, not %d", L, k), 0) end
  local rank = opts.rank
  local texts = opts.texts or 10
  local out = { heads = {} }
  local function accuracy(z)
    if opts.classifier then return (ablate.accuracy(z, opts.classifier, opts.labels)) end
  end
  local z0 = ablate.total(dec)
  out.accuracy_baseline = accuracy(z0)
  z0:free()
  local earlier = {}
  for l = 1, L - k do earlier[#earlier + 1] = l end
  local z = ablate.representation(dec, { layers = earlier })
  out.accuracy_mean_ablated = accuracy(z)
  local total = k * dec.heads
  for l = L - k + 1, L do
    for h = 1, dec.heads do
      local x = dec.attn_heads:select(2, l):select(2, h)
      local r = M.head(x, pool, { rank = rank, texts = texts })
      local delta = r.reconstruction - x
      z = replace(z, z + delta)
      delta:free()
      x:free()
      r.reconstruction:free()
      local entry = { layer = l, head = h, chosen = r.chosen, variance = r.variance, accuracy = accuracy(z) }
      out.heads[#out.heads + 1] = entry
      if opts.on_head then opts.on_head(entry, #out.heads, total) end
    end
  end
  out.accuracy = accuracy(z)
  out.representation = z
  return out
end

-- A Markdown table of a run's picks; texts[i] is pool row i.
function M.markdown(run, texts, title)
  local lines = { "# " .. (title or "TextSpan"), "",
                  "| layer | head | texts, in order of choice (share of the head's variance) |",
                  "| ---: | ---: | --- |" }
  for _, h in ipairs(run.heads) do
    local cells = {}
    for i, j in ipairs(h.chosen) do
      local text = texts[j]:gsub("|", "\\|")
      cells[i] = string.format("%s (%.1f%%)", text, 100 * h.variance[i])
    end
    lines[#lines + 1] = string.format("| %d | %d | %s |", h.layer, h.head, table.concat(cells, "<br>"))
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
