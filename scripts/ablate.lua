-- refract ablate: mean-ablation of direct effects: the paper's table, any heads or MLPs, group accuracy
local refract = require("refract")
local util = require("refract.util")
local data = require("refract.data")
local ablate = require("refract.ablate")
local provenance = require("refract.provenance")

local usage = [==[
usage: refract ablate --decomposition DEC --classifier FILE[:NAME] --labels FILE[:NAME]
                      --out A.json [--chart FILE.svg] [--heads L.H,...] [--mlps L,...]
                      [--groups FILE[:COLUMN]] [--means FILE]

The mean-ablation study of Gandelsman et al. (ICLR 2024) on direct effects: each image's
representation is the sum of its decomposed components; a mean-ablated component is
replaced by its mean over the images; accuracy is zero-shot top-1 with the classifier.
Writes (accuracies in percent):
  baseline                   nothing ablated
  mlp_mean_ablation          every MLP term (and the embedding term) mean-ablated
  cls_ablation               every layer's CLS-to-CLS attention term mean-ablated
  mlp_and_cls_ablation       both
  attention_layer_ablations  L+1 numbers: the baseline, then attention layers 1..k
                             mean-ablated (heads summed) for k = 1..L
and prints the table.

  --decomposition DEC  attn_heads, mlps, cls_attn per image from `refract decompose`
                       (a .safetensors file, or its --chunks folder)
  --classifier F[:N]   a classifier [D, C] (`refract classifier`; .safetensors tensor N,
                       default classifier, or .npy)
  --labels F[:N]       class indices from 0, one per image: .npy, .safetensors[:NAME]
                       (default labels), a text file (one per line), FILE.csv:COLUMN, or
                       a folder of class folders (sorted names = classes 0..C-1); class
                       names work too when the classifier records them. CSV rows are
                       matched to images by a file column (img_filename, filename, file,
                       image, path) when the decomposition records its image paths,
                       otherwise taken in order
  --heads L.H,...      also mean-ablate these heads (layers and heads from 1; L.* is a
                       whole layer (quote the * for the shell), ranges A-B, all) and
                       report the accuracy
  --mlps L,...         also mean-ablate these MLP terms (0 or embed: the embedding term;
                       l: layer l's MLP; ranges A-B; all)
  --groups F[:COL]     per-group and worst-group accuracy, groups being (label, value of
                       COL) as Waterbirds' (y, place); before and after --heads/--mlps
  --means FILE         take the means from FILE (mean_attn_heads, mean_mlps,
                       mean_cls_attn, as `refract decompose` writes them) instead of
                       from the evaluated images
  --chart FILE.svg     draw accuracy against the number of ablated attention layers
  --out FILE.json      results, with the provenance (version, arguments, checksums)

Example (Waterbirds, ViT-B-16 heads the paper ablates):
  refract ablate --decomposition dec.safetensors --classifier birds.safetensors \
    --labels metadata.csv:y --groups metadata.csv:place --heads 12.7,12.1,12.4,11.12 \
    --mlps all --out waterbirds.json
]==]

local opts = util.parse_args(arg, {
  decomposition = { arg = true }, classifier = { arg = true }, labels = { arg = true },
  out = { arg = true }, chart = { arg = true }, heads = { arg = true }, mlps = { arg = true },
  groups = { arg = true }, means = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
for _, name in ipairs({ "decomposition", "classifier", "labels", "out" }) do
  if not opts[name] then usage_error("--" .. name .. " is required") end
end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
data.check_out(opts.out, { "json" })
if opts.chart then data.check_out(opts.chart, { "svg" }, "--chart") end

local dec = data.read_decomposition(opts.decomposition)
local classifier, class_names = require("refract.classifier").read(opts.classifier)
ablate.check_classifier(dec, classifier, opts.classifier)
local classes = classifier:shape(2)
local labels = data.read_labels(opts.labels, { count = dec.count, paths = dec.paths,
                                               classes = class_names or classes })
local groups = opts.groups and data.read_groups(opts.groups, { count = dec.count, paths = dec.paths })
local group_column = opts.groups and (opts.groups:match("%.[cC][sS][vV]:(.+)$") or "group")
local means
if opts.means then
  means = {}
  for _, name in ipairs({ "attn_heads", "mlps", "cls_attn" }) do
    local ok, t = pcall(refract.read, opts.means, "mean_" .. name)
    if ok then means[name] = t
    elseif name ~= "cls_attn" then error(opts.means .. ": no tensor mean_" .. name, 0) end
  end
end

local result = ablate.study(dec, classifier, labels, means)
result.images, result.classes, result.layers, result.heads = dec.count, classes, dec.layers, dec.heads

local custom
if opts.heads or opts.mlps then
  custom = { heads = opts.heads and ablate.parse_heads(opts.heads, dec) or {},
             mlps = opts.mlps and ablate.parse_mlps(opts.mlps, dec) or {}, means = means }
  local z = ablate.representation(dec, custom)
  local acc, _, pred = ablate.accuracy(z, classifier, labels)
  z:free()
  local names = {}
  for i, c in ipairs(custom.heads) do names[i] = ablate.head_name(c) end
  result.ablated = { heads = names, mlps = custom.mlps, accuracy = acc }
  custom.pred = pred
end
if groups then
  local z = ablate.total(dec)
  local pred = ablate.predict(z, classifier)
  z:free()
  result.groups = { column = group_column, before = ablate.group_accuracy(pred, labels, groups, group_column) }
  if custom then
    result.groups.after = ablate.group_accuracy(custom.pred, labels, groups, group_column)
  end
end

-- The table.
print(string.format("mean-ablation of direct effects: %d images, %d classes, %d layers x %d heads; top-1 accuracy (%%)",
  dec.count, classes, dec.layers, dec.heads))
local function row(name, v) if v then print(string.format("  %-34s %7.2f", name, v)) end end
row("baseline", result.baseline)
row("MLP terms mean-ablated", result.mlp_mean_ablation)
row("CLS-to-CLS terms mean-ablated", result.cls_ablation)
row("MLP and CLS terms mean-ablated", result.mlp_and_cls_ablation)
print("  attention layers mean-ablated (heads summed):")
for k, v in ipairs(result.attention_layer_ablations) do
  row(k == 1 and "  none" or k == 2 and "  1" or string.format("  1..%d", k - 1), v)
end
if result.ablated then
  local what = {}
  if #result.ablated.heads > 0 then what[#what + 1] = "heads " .. table.concat(result.ablated.heads, ",") end
  if #result.ablated.mlps > 0 then what[#what + 1] = "MLP terms " .. table.concat(result.ablated.mlps, ",") end
  print(string.format("  %s mean-ablated: %.2f", table.concat(what, "; "), result.ablated.accuracy))
end
if result.groups then
  local function show(title, g)
    print(string.format("  groups (label, %s) %s: overall %.2f, worst %.2f (%s)", group_column, title,
      g.overall, g.worst.accuracy, g.worst.name))
    for _, x in ipairs(g.groups) do
      print(string.format("    %-30s %6d images  %7.2f", x.name, x.count, x.accuracy))
    end
  end
  show("before", result.groups.before)
  if result.groups.after then show("after the ablation", result.groups.after) end
end

if opts.chart then
  data.write_text(opts.chart, ablate.chart({ { name = "accuracy", values = result.attention_layer_ablations } },
    dec.layers, { note = string.format("%d images, %d classes; layers 1..k mean-ablated (heads summed), MLPs kept",
      dec.count, classes) }))
end

local inputs = { opts.decomposition, opts.classifier, opts.labels }
if opts.groups then inputs[#inputs + 1] = opts.groups end
if opts.means then inputs[#inputs + 1] = opts.means end
result.provenance = provenance.new({ inputs = inputs })
data.write_text(opts.out, refract.json_encode(result, 2) .. "\n")
print("wrote " .. opts.out .. (opts.chart and (" and " .. opts.chart) or ""))
