-- refract.ablate: mean-ablation of direct effects (Gandelsman et al., ICLR 2024, section 3;
-- definitions in tests/data/tiny-gelu/README.md, item 4). A decomposition writes the image
-- representation as a sum of components; mean-ablating a component replaces it by its
-- mean over the images, and the zero-shot accuracy of the sum tells how much the
-- component's direct effect mattered.
--
--   local ablate = require("refract.ablate")
--   local study = ablate.study(dec, classifier, labels)      -- the paper's table
--   local z = ablate.representation(dec, { heads = ablate.parse_heads("4.2,4.3", dec) })
--   local acc = ablate.accuracy(z, classifier, labels)
--
-- `dec` is what refract.data.read_decomposition returns (attn_heads [B, L, H, D], mlps
-- [B, L+1, D], cls_attn [B, L, D]); `classifier` is [D, C]; labels a list of class
-- indices from 0. Layers and heads are numbered from 1; MLP term 0 is the embedding
-- term (ln_pre's output at CLS), MLP term l the MLP of layer l.
local refract = require("refract")

local M = {}

-- {===== naming components

local function range_list(text, lo, hi, what, spec)
  if text == "*" or text == "all" then
    local list = {}
    for i = lo, hi do list[#list + 1] = i end
    return list
  end
  local a, b = text:match("^(%d+)%-(%d+)$")
  if not a then a = text:match("^(%d+)$"); b = a end
  a, b = tonumber(a), tonumber(b)
  if not a or a > b then error(string.format("bad %s %q in %q", what, text, spec), 0) end
  if a < lo or b > hi then
    error(string.format("%s %s in %q is out of range: the model has %s %d..%d", what, text, spec, what .. "s", lo, hi), 0)
  end
  local list = {}
  for i = a, b do list[#list + 1] = i end
  return list
end

-- "L.H,L.H,..." -> { {layer =, head =}, ... }. L and H count from 1; either may be a range
-- A-B or *; "all" is every head. Duplicates are kept once, in first-seen order.
function M.parse_heads(spec, dec)
  local out, seen = {}, {}
  for item in spec:gmatch("[^,%s]+") do
    local l, h
    if item == "all" then l, h = "*", "*"
    else l, h = item:match("^([^.]+)%.([^.]+)$") end
    if not l then
      error(string.format("bad head %q in %q: expected LAYER.HEAD (both from 1, e.g. 4.2), LAYER.* or all", item, spec), 0)
    end
    for _, layer in ipairs(range_list(l, 1, dec.layers, "layer", spec)) do
      for _, head in ipairs(range_list(h, 1, dec.heads, "head", spec)) do
        local key = layer * 100000 + head
        if not seen[key] then
          seen[key] = true
          out[#out + 1] = { layer = layer, head = head }
        end
      end
    end
  end
  if #out == 0 then error(string.format("no heads in %q", spec), 0) end
  return out
end

-- "L,L,..." -> MLP terms { 0..L }: 0 (or "embed") is the embedding term, l the MLP of
-- layer l; ranges A-B; "all" is every term (what the paper's MLP ablation replaces).
function M.parse_mlps(spec, dec)
  local out, seen = {}, {}
  for item in spec:gmatch("[^,%s]+") do
    local list
    if item == "embed" then list = { 0 }
    else list = range_list(item, 0, dec.layers, "MLP", spec) end
    for _, m in ipairs(list) do
      if not seen[m] then
        seen[m] = true
        out[#out + 1] = m
      end
    end
  end
  if #out == 0 then error(string.format("no MLPs in %q", spec), 0) end
  return out
end

function M.head_name(c) return string.format("%d.%d", c.layer, c.head) end

-- }=====

-- {===== representations

-- The per-image component X [B, D] and its replacement by the mean over the images.
local function mean_shift(x, mean)
  local m = mean or x:mean(1)
  local shift = m - x
  if not mean then m:free() end
  return shift
end

local function add_into(z, t)
  local s = z + t
  z:free()
  t:free()
  return s
end

-- The sum of every component, [B, D]: the normalised embedding e/||e||.
function M.total(dec)
  local heads = dec.attn_heads:sum({ 2, 3 })
  local mlps = dec.mlps:sum(2)
  local z = heads + mlps
  heads:free()
  mlps:free()
  return z
end

-- The representation with some components mean-ablated, [B, D]:
--   spec.heads  = { {layer =, head =}, ... }  single heads
--   spec.layers = { l, ... }                  whole attention layers (heads summed)
--   spec.mlps   = { m, ... }                  MLP terms, 0 = embedding term
--   spec.cls    = { l, ... }                  CLS-to-CLS terms of layers (needs cls_attn)
--   spec.means  = { attn_heads =, mlps =, cls_attn = }  means to use instead of this data's
function M.representation(dec, spec)
  spec = spec or {}
  for key in pairs(spec) do
    if key ~= "heads" and key ~= "layers" and key ~= "mlps" and key ~= "cls" and key ~= "means" then
      error("ablate.representation: unknown option " .. tostring(key), 2)
    end
  end
  local means = spec.means or {}
  local z = M.total(dec)
  local covered = {}
  for _, l in ipairs(spec.layers or {}) do covered[l] = true end
  for _, c in ipairs(spec.heads or {}) do
    if not covered[c.layer] then
      local x = dec.attn_heads:select(2, c.layer):select(2, c.head)
      local mean = means.attn_heads and means.attn_heads:select(1, c.layer):select(1, c.head)
      z = add_into(z, mean_shift(x, mean))
      x:free()
    end
  end
  for _, l in ipairs(spec.layers or {}) do
    local x = dec.attn_heads:select(2, l):sum(2)
    local mean = means.attn_heads and means.attn_heads:select(1, l):sum(1)
    z = add_into(z, mean_shift(x, mean))
    x:free()
  end
  for _, m in ipairs(spec.mlps or {}) do
    local x = dec.mlps:select(2, m + 1)
    local mean = means.mlps and means.mlps:select(1, m + 1)
    z = add_into(z, mean_shift(x, mean))
    x:free()
  end
  if spec.cls and #spec.cls > 0 then
    if not dec.cls_attn then
      error((dec.source or "the decomposition") .. ": no cls_attn tensor for the CLS ablation", 0)
    end
    for _, l in ipairs(spec.cls) do
      local x = dec.cls_attn:select(2, l)
      local mean = means.cls_attn and means.cls_attn:select(1, l)
      z = add_into(z, mean_shift(x, mean))
      x:free()
    end
  end
  return z
end

-- }=====

-- {===== accuracy

-- Checks that a classifier [D, C] fits the decomposition.
function M.check_classifier(dec, classifier, name)
  if classifier:ndim() ~= 2 or classifier:shape(1) ~= dec.dim then
    error(string.format("%s is [%s]; it must be [%d, C] (D = %d, the decomposition's embedding size)",
      name or "the classifier", table.concat(classifier:shape(), ", "), dec.dim, dec.dim), 0)
  end
end

-- Predicted classes (from 0) of representations z [B, D] under classifier [D, C].
function M.predict(z, classifier)
  local logits = z:matmul(classifier)
  local best = logits:argmax(2)
  logits:free()
  local list = best:totable()
  for i, v in ipairs(list) do list[i] = v - 1 end
  return list
end

-- Top-1 accuracy in percent (computed as the paper's code does, 100 * mean), the number
-- correct and the predictions.
function M.accuracy(z, classifier, labels)
  local pred = M.predict(z, classifier)
  if #pred ~= #labels then
    error(string.format("%d labels for %d images", #labels, #pred), 0)
  end
  local correct = 0
  for i, p in ipairs(pred) do
    if p == labels[i] then correct = correct + 1 end
  end
  return (correct / #pred) * 100, correct, pred
end

-- The paper's ablation study: baseline; every MLP term mean-ablated; every layer's
-- CLS-to-CLS term mean-ablated; both; then attention layers 1..k mean-ablated (heads
-- summed) for k = 1..L, after the baseline. Accuracies in percent.
function M.study(dec, classifier, labels, means)
  local all_mlps, all_layers = {}, {}
  for m = 0, dec.layers do all_mlps[#all_mlps + 1] = m end
  for l = 1, dec.layers do all_layers[#all_layers + 1] = l end
  local function acc(spec)
    spec.means = means
    local z = M.representation(dec, spec)
    local a = M.accuracy(z, classifier, labels)
    z:free()
    return a
  end
  local out = {
    baseline = acc({}),
    mlp_mean_ablation = acc({ mlps = all_mlps }),
    attention_layer_ablations = {},
  }
  if dec.cls_attn then
    out.cls_ablation = acc({ cls = all_layers })
    out.mlp_and_cls_ablation = acc({ mlps = all_mlps, cls = all_layers })
  end
  out.attention_layer_ablations[1] = out.baseline
  for k = 1, dec.layers do
    local layers = {}
    for l = 1, k do layers[l] = l end
    out.attention_layer_ablations[k + 1] = acc({ layers = layers })
  end
  return out
end

-- An SVG line chart (refract.svg) of accuracy against the number of mean-ablated attention
-- layers: series = { {name =, values = attention_layer_ablations}, ... } (L+1 values
-- each), layers = L; opts.title, opts.note.
function M.chart(series, layers, opts)
  require("refract.util").check_options(opts, "ablate.chart", { "title", "note" })
  opts = opts or {}
  local xs, ticks = {}, {}
  for k = 0, layers do
    xs[#xs + 1] = k
    ticks[#ticks + 1] = k == 0 and "none" or k == 1 and "1" or string.format("1..%d", k)
  end
  return require("refract.svg").line_chart({
    title = opts.title or "Accuracy as attention layers are mean-ablated", note = opts.note,
    x_label = "attention layers mean-ablated", y_label = "top-1 accuracy (%)",
    x = xs, x_tick_labels = ticks, y_min = 0, y_max = 100, series = series, value_labels = #series == 1,
  })
end

-- }=====

-- {===== groups

local function numeric_or_string_less(a, b)
  local na, nb = tonumber(a), tonumber(b)
  if na and nb and na ~= nb then return na < nb end
  return tostring(a) < tostring(b)
end

-- Accuracy per group, where an image's group is its label together with its group value
-- (Waterbirds' four groups are (y, place)); `name` names the group column. Returns
-- { groups = { {label =, value =, name =, count =, correct =, accuracy =}, ... } sorted by
-- label then value, worst = the group of lowest accuracy (first on ties), overall = %}.
function M.group_accuracy(pred, labels, groups, name)
  name = name or "group"
  local by_key, list = {}, {}
  local correct_all = 0
  for i, p in ipairs(pred) do
    local key = labels[i] .. "\0" .. groups[i]
    local g = by_key[key]
    if not g then
      g = { label = labels[i], value = groups[i], count = 0, correct = 0 }
      g.name = string.format("label %d, %s %s", labels[i], name, groups[i])
      by_key[key] = g
      list[#list + 1] = g
    end
    g.count = g.count + 1
    if p == labels[i] then
      g.correct = g.correct + 1
      correct_all = correct_all + 1
    end
  end
  table.sort(list, function(a, b)
    if a.label ~= b.label then return a.label < b.label end
    return numeric_or_string_less(a.value, b.value)
  end)
  local worst
  for _, g in ipairs(list) do
    g.accuracy = (g.correct / g.count) * 100
    if not worst or g.accuracy < worst.accuracy then worst = g end
  end
  return { groups = list, worst = worst, overall = (correct_all / #pred) * 100 }
end

-- }=====

return M
