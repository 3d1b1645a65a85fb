-- refract.retrieve: nearest neighbours by one component's direct contribution (the
-- paper's image retrieval with a single head: images whose head-L.H term points the same
-- way as the query's, by cosine similarity), and a contact sheet of them.
--
--   local retrieve = require("refract.retrieve")
--   local dec = require("refract.data").read_decomposition("dec.safetensors")
--   local c = retrieve.component(dec, "12.3")                 -- [B, D], and its name
--   local v = retrieve.centred(c.vectors)
--   local hits = retrieve.nearest(v, v[7], 8)                 -- {{image =, score =}, ...}
--   retrieve.sheet("sheet.png", dec.paths, hits, { query = 7 })
--
-- Layers and heads count from 1; images are the decomposition's rows, from 1.
local refract = require("refract")

local M = {}

local function integer_in(text, lo, hi, what, spec)
  local v = math.tointeger(tonumber(text))
  if not v or v < lo or v > hi then
    error(string.format("bad component %q: %s must be an integer in %d..%d", spec, what, lo, hi), 0)
  end
  return v
end

-- The direct contributions of one component for every image, as { vectors = [B, D]
-- (device), name = }. spec: "L.H" (head H of layer L), "L.*" (layer L's heads summed),
-- "mlp.L" (layer L's MLP; mlp.0 is the embedding term), "all" (the whole normalised
-- embedding, every term summed). dec: { attn_heads [B, L, H, D], mlps [B, L+1, D] }.
function M.component(dec, spec)
  local layers, heads = dec.attn_heads:shape(2), dec.attn_heads:shape(3)
  local help = "expected LAYER.HEAD, LAYER.*, mlp.LAYER or all (layers and heads from 1)"
  if spec == "all" then
    local a = dec.attn_heads:sum({ 2, 3 })
    local m = dec.mlps:sum(2)
    local v = a + m
    a:free()
    m:free()
    return { vectors = v, name = "all" }
  end
  local mlp = spec:match("^mlp%.(%d+)$")
  if mlp then
    local l = integer_in(mlp, 0, layers, "the MLP layer", spec)
    return { vectors = dec.mlps:select(2, l + 1):contiguous(),
             name = l == 0 and "the embedding term" or string.format("MLP %d", l) }
  end
  local l, h = spec:match("^(%d+)%.([%d*]+)$")
  if not l then error(string.format("bad component %q: %s", spec, help), 0) end
  local layer = integer_in(l, 1, layers, "the layer", spec)
  if h == "*" then
    return { vectors = dec.attn_heads:select(2, layer):sum(2), name = string.format("layer %d's heads", layer) }
  end
  local head = integer_in(h, 1, heads, "the head", spec)
  return { vectors = dec.attn_heads:select(2, layer):select(2, head):contiguous(),
           name = string.format("head %d.%d", layer, head) }
end

-- Each row minus the mean row: a component's contribution carries a share of ln_post's
-- mean and bias that is almost the same for every image, and it would dominate every
-- cosine (all near 1); what varies between images is what tells them apart.
function M.centred(vectors)
  local mean = vectors:mean(1, true)
  local c = vectors - mean
  mean:free()
  return c
end

-- The k images whose vectors [B, D] are closest to `query` [D] by cosine similarity, in
-- rank order (ties by lower index): { {image = (from 1), score =}, ... }. Pass centred
-- vectors (and an image query taken from them) to compare what varies between images.
function M.nearest(vectors, query, k)
  local count, dim = vectors:shape(1), vectors:shape(2)
  if query:numel() ~= dim then
    error(string.format("the query has %d dimensions, the component %d", query:numel(), dim), 0)
  end
  k = math.min(k, count)
  local v = vectors:normalize(2)
  local q = query:reshape(dim, 1):normalize(1)
  local scores = v:matmul(q):reshape(count)
  local values, indices = scores:topk(k)
  local hits = {}
  local vs, is = values:totable(), indices:totable()
  for r = 1, k do hits[r] = { image = is[r], score = vs[r] } end
  for _, t in ipairs({ v, q, scores, values }) do t:free() end
  return hits
end

-- {===== the contact sheet

local BORDER, GAP, BAR = 4, 6, 8

-- A [h, w, 3] tile of one colour (0..1).
local function fill(h, w, rgb)
  return refract.stack({ refract.full({ h, w }, rgb[1]), refract.full({ h, w }, rgb[2]),
                         refract.full({ h, w }, rgb[3]) }, 3)
end

-- One cell: the thumbnail [T, T, 3] in a frame, and under it a bar whose filled part is
-- the similarity (0 to 1; negative similarities leave it empty).
local function cell(thumb, size, frame, score)
  local inner = size + 2 * BORDER
  local mid = refract.cat({ fill(size, BORDER, frame), thumb, fill(size, BORDER, frame) }, 2)
  local framed = refract.cat({ fill(BORDER, inner, frame), mid, fill(BORDER, inner, frame) }, 1)
  local filled = math.floor(math.max(0, math.min(1, score)) * inner + 0.5)
  local bar_parts = {}
  if filled > 0 then bar_parts[#bar_parts + 1] = fill(BAR, filled, { 0.2, 0.6, 0.3 }) end
  if filled < inner then bar_parts[#bar_parts + 1] = fill(BAR, inner - filled, { 0.85, 0.85, 0.85 }) end
  local gap = fill(2, inner, { 1, 1, 1 })
  return refract.cat({ framed, gap, refract.cat(bar_parts, 2) }, 1)
end

-- Writes a PNG of the hits' images in rank order, `columns` per row (default: up to 8),
-- each thumbnail `size` pixels (default 128; the image's centre square, as the model
-- sees it) framed in gray, the query image (opts.query, an image number) in orange, with
-- a bar under each showing its similarity. paths[i] is image i's file.
function M.sheet(path, paths, hits, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "query" and key ~= "size" and key ~= "columns" then
      error("retrieve.sheet: unknown option " .. tostring(key) .. " (query, size, columns)", 2)
    end
  end
  if #hits == 0 then error("retrieve.sheet: no images to draw", 2) end
  local size = opts.size or 128
  local files = {}
  -- Looked at without opening them: the images may have changed since the decomposition,
  -- and io.open on a FIFO put there waited forever for a writer.
  local what_is = { directory = "is a folder", other = "is a FIFO, a device or a socket" }
  for r, hit in ipairs(hits) do
    files[r] = paths[hit.image]
    local kind = refract.file_type(files[r])
    if kind ~= "file" then
      error(string.format("image %d: %s: %s, not an image%s", hit.image, files[r], what_is[kind] or "no such file",
        kind and "" or " (paths are as `refract decompose` was given them: run from the same folder)"), 0)
    end
  end
  -- An image that no longer decodes (replaced by a damaged or huge one) is named by its path.
  local ok, thumbs = pcall(refract.preprocess, files, { size = size, mean = { 0, 0, 0 }, std = { 1, 1, 1 } })
  if not ok then error((tostring(thumbs):gsub("^.-preprocess: ", "")), 0) end
  local columns = opts.columns or math.min(#hits, 8)
  local cells = {}
  for r, hit in ipairs(hits) do
    local frame = hit.image == opts.query and { 1, 0.55, 0 } or { 0.55, 0.55, 0.55 }
    cells[r] = cell(thumbs[r]:permute(2, 3, 1), size, frame, hit.score)
  end
  local ch, cw = cells[1]:shape(1), cells[1]:shape(2)
  local rows = {}
  for first = 1, #cells, columns do
    local parts = { fill(ch, GAP, { 1, 1, 1 }) }
    for c = first, first + columns - 1 do
      parts[#parts + 1] = cells[c] or fill(ch, cw, { 1, 1, 1 })
      parts[#parts + 1] = fill(ch, GAP, { 1, 1, 1 })
    end
    rows[#rows + 1] = fill(GAP, columns * (cw + GAP) + GAP, { 1, 1, 1 })
    rows[#rows + 1] = refract.cat(parts, 2)
  end
  rows[#rows + 1] = fill(GAP, columns * (cw + GAP) + GAP, { 1, 1, 1 })
  refract.write_png(path, refract.cat(rows, 1))
end

-- }=====

return M
