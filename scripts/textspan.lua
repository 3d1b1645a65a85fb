-- refract textspan: the texts that span each attention head's direct contributions (TextSpan)
local refract = require("refract")
local util = require("refract.util")
local data = require("refract.data")
local textspan = require("refract.textspan")
local classifier_lib = require("refract.classifier")
local ablate = require("refract.ablate")
local provenance = require("refract.provenance")
local Progress = require("refract.progress")

local home = refract.home()
local usage = [==[
usage: refract textspan --model DIR --decomposition DEC --texts POOL --out SPANS.json
                        [--layers K] [--rank R] [--texts-per-head N]
                        [--classifier FILE[:NAME] --labels FILE[:NAME]] [--markdown FILE.md]

TextSpan (Gandelsman et al., ICLR 2024): for each head of the last K layers, in
layer-then-head order, picks N texts of the pool one at a time, each the text whose
direction (within the head's R-dimensional output span) explains the most variance of
the head's direct contributions over the images, then projects it out. The heads of the
earlier layers are mean-ablated, as the paper does. With a classifier, reports the
zero-shot accuracy after replacing every processed head by its reconstruction from its
texts (`accuracy`), next to the baseline and the mean-ablated accuracy.

  --model DIR           the CLIP checkpoint (its text tower embeds the pool)
  --decomposition DEC   attn_heads and mlps per image from `refract decompose` (a file
                        or its --chunks folder)
  --texts POOL          the text pool, one per line (blank lines skipped) or a JSON list
  --layers K            heads of the last K layers (default 4, at most L)
  --rank R              dimension of each head's span (default D/2, at most the head width)
  --texts-per-head N    picks per head (default 10, at most R)
  --classifier F[:N]    a classifier [D, C] (`refract classifier`), with
  --labels F[:N]        class indices from 0 per image (as `refract ablate --help` says)
  --out FILE.json       `heads`: a list in layer-then-head order of {layer, head, texts,
                        lines (of the pool file, from 1), variance (share of the head's
                        variance each text explains), accuracy_after (with a classifier:
                        after replacing the heads so far)}, and `accuracy`; with the
                        provenance
  --markdown FILE.md    the table of picks (default: the --out path with .md)

Bundled pools: ]==] .. home .. [==[/scripts/data/text/descriptions.txt (3458 general
descriptions) and shapes_descriptions.txt (the tinyclip-shapes world).
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, decomposition = { arg = true }, texts = { arg = true }, out = { arg = true },
  layers = { arg = true }, rank = { arg = true }, texts_per_head = { arg = true },
  classifier = { arg = true }, labels = { arg = true }, markdown = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
for _, name in ipairs({ "model", "decomposition", "texts", "out" }) do
  if not opts[name] then usage_error("--" .. name .. " is required") end
end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
if (opts.classifier ~= nil) ~= (opts.labels ~= nil) then
  usage_error("--classifier and --labels go together")
end
local function positive(name) return util.positive_option(opts, name, nil, usage_error) end
local layers, rank, per_head = positive("layers"), positive("rank"), positive("texts_per_head")
data.check_out(opts.out, { "json" })
local markdown_path = opts.markdown or opts.out:gsub("%.[jJ][sS][oO][nN]$", "") .. ".md"
data.check_out(markdown_path, { "md" }, "--markdown")

local texts, lines = data.read_list(opts.texts, "texts")
local dec = data.read_decomposition(opts.decomposition, { "attn_heads", "mlps" })
local model = refract.load(opts.model)
local c = model:config()
if not c.has_text then error(opts.model .. ": the model has no text tower", 0) end
if c.embed_dim ~= dec.dim or c.layers ~= dec.layers or c.heads ~= dec.heads then
  error(string.format("%s is %d layers x %d heads into %d dimensions, but %s is %d x %d into %d: "
    .. "decompose with this model (without --project or --reduce)", opts.decomposition, dec.layers, dec.heads,
    dec.dim, opts.model, c.layers, c.heads, c.embed_dim), 0)
end
layers = layers or math.min(4, dec.layers)
if layers > dec.layers then usage_error(string.format("--layers must be at most %d (the model's layers)", dec.layers)) end
rank = rank or textspan.default_rank(dec.dim, c.head_width)
per_head = per_head or math.min(10, rank)
if per_head > rank then usage_error(string.format("--texts-per-head %d exceeds --rank %d", per_head, rank)) end
if rank > math.min(dec.count, dec.dim) then
  usage_error(string.format("--rank %d exceeds min(images, dimension) = %d", rank, math.min(dec.count, dec.dim)))
end

local classifier, labels
if opts.classifier then
  local names
  classifier, names = classifier_lib.read(opts.classifier)
  ablate.check_classifier(dec, classifier, opts.classifier)
  labels = data.read_labels(opts.labels, { count = dec.count, paths = dec.paths, classes = names or classifier:shape(2) })
end
local inputs = { opts.decomposition, opts.texts }
if opts.classifier then inputs[#inputs + 1] = opts.classifier; inputs[#inputs + 1] = opts.labels end
local record = provenance.new({ model = opts.model, inputs = inputs })

local start = refract.clock()
local embedding = Progress.new(#texts, "texts")
local pool = textspan.embed_pool(model, texts, { progress = function(n) embedding:add(n) end })
embedding:finish()
local heads = Progress.new(layers * dec.heads, "heads")
local run = textspan.run(dec, pool, { layers = layers, rank = rank, texts = per_head, classifier = classifier,
                                      labels = labels, on_head = function() heads:add(1) end })
heads:finish()
run.representation:free()

local result = { heads = {}, layers = {}, rank = rank, texts_per_head = per_head, images = dec.count,
                 pool = opts.texts, pool_size = #texts, accuracy = run.accuracy,
                 accuracy_baseline = run.accuracy_baseline, accuracy_mean_ablated = run.accuracy_mean_ablated }
for l = dec.layers - layers + 1, dec.layers do result.layers[#result.layers + 1] = l end
for _, h in ipairs(run.heads) do
  local entry = { layer = h.layer, head = h.head, texts = {}, lines = {}, variance = h.variance,
                  accuracy_after = h.accuracy }
  for i, j in ipairs(h.chosen) do
    entry.texts[i] = texts[j]
    entry.lines[i] = lines[j]
  end
  result.heads[#result.heads + 1] = entry
  print(string.format("layer %d head %d:", h.layer, h.head))
  for i, t in ipairs(entry.texts) do print(string.format("  %5.1f%%  %s", 100 * h.variance[i], t)) end
end
if run.accuracy then
  print(string.format("accuracy: %.2f%% baseline, %.2f%% with layers 1..%d mean-ablated, %.2f%% with the %d heads "
    .. "replaced by their %d-text reconstructions", run.accuracy_baseline, run.accuracy_mean_ablated,
    dec.layers - layers, run.accuracy, #run.heads, per_head))
end
result.seconds = refract.clock() - start
result.provenance = record
data.write_text(opts.out, refract.json_encode(result, 2) .. "\n")
data.write_text(markdown_path, textspan.markdown(run, texts,
  string.format("TextSpan: %s, last %d layers, rank %d, %d texts per head, pool %s", opts.model, layers, rank,
    per_head, opts.texts)))
print("wrote " .. opts.out .. " and " .. markdown_path)
