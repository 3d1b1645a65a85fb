-- The analysis commands reproduce the tiny-gelu golden (item 4) from the command line:
-- `classifier` within 1e-5, every ablation accuracy identical, TextSpan's picks and its
-- accuracy identical; group accuracy on a hand-made fixture with numbers checked by hand;
-- the provenance of every output; clear errors for bad invocations.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local exe = refract.executable()
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function run(args)
  local cmd = string.format("'%s' %s > '%s/out.txt' 2>&1", exe, args, tmp)
  local ok = os.execute(cmd)
  local f = io.open(tmp .. "/out.txt")
  local text = f:read("a")
  f:close()
  return ok, text
end
local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

local golden = refract.read(g .. "/textspan.safetensors")
local spans = refract.json_read(g .. "/textspan.json")
local ablations = refract.json_read(g .. "/ablations.json")
local weights_sha = refract.sha256(g .. "/model/open_clip_model.safetensors")

-- {===== classifier: the golden's class names (JSON) and templates (text, `{c}`)
local classes = write("classes.json", refract.json_encode(spans.classnames))
local templates = write("templates.txt", table.concat(spans.templates, "\n") .. "\n")
local ok, text = run(string.format("classifier --model %s/model --classes %s --templates %s --out %s/k.safetensors",
  g, classes, templates, tmp))
T.ok(ok, "classifier runs: " .. text)
local k = refract.read(tmp .. "/k.safetensors", "classifier")
local diff = (k - golden.classifier):abs():max():item()
print(string.format("classifier max |diff| %.3e (tolerance 1e-5)", diff))
T.ok(diff <= 1e-5, "classifier within 1e-5")
local md = refract.metadata(tmp .. "/k.safetensors")
T.eq(refract.json_decode(md.classes), spans.classnames, "class names in the metadata")
T.eq(refract.json_decode(md.templates), spans.templates, "templates in the metadata")
local record = refract.json_decode(md.provenance)
T.eq(record.model.files["open_clip_model.safetensors"], weights_sha, "provenance: the weights' SHA-256")
T.eq(record.command, "classifier", "provenance: the command")
T.eq(record.arguments[1], "--model", "provenance: the arguments")
T.eq(record.inputs[1].sha256, refract.sha256(classes), "provenance: the classes file")
-- `{}` works like `{c}`
write("templates_braces.txt", "a photo of a {}.\na drawing of a {}.\nan image containing a {}.\n")
ok, text = run(string.format("classifier --model %s/model --classes %s --templates %s/templates_braces.txt --out %s/k2.safetensors",
  g, classes, tmp, tmp))
T.ok(ok, "classifier with {} runs: " .. text)
T.eq((refract.read(tmp .. "/k2.safetensors", "classifier") - k):abs():max():item(), 0, "{} and {c} give the same classifier")
-- }=====

-- {===== decomposition of the golden dataset, then the ablation study
ok, text = run(string.format("decompose --model %s/model --pixels %s/textspan.safetensors:dataset_pixels --out %s/dec.safetensors",
  g, g, tmp))
T.ok(ok, "decompose runs: " .. text)
local labels = g .. "/textspan.safetensors:labels"
ok, text = run(string.format("ablate --decomposition %s/dec.safetensors --classifier %s/k.safetensors --labels %s "
  .. "--out %s/a.json --chart %s/a.svg", tmp, tmp, labels, tmp, tmp))
T.ok(ok, "ablate runs: " .. text)
T.matches(text, "baseline%s+22%.92", "the table is printed")
local a = refract.json_read(tmp .. "/a.json")
for _, name in ipairs({ "baseline", "mlp_mean_ablation", "cls_ablation", "mlp_and_cls_ablation" }) do
  T.eq(a[name], ablations[name], name .. " identical")
end
T.eq(a.attention_layer_ablations, ablations.attention_layer_ablations, "attention_layer_ablations identical")
T.eq(a.provenance.inputs[1].sha256, refract.sha256(tmp .. "/dec.safetensors"), "provenance: the decomposition")
T.eq(a.provenance.inputs[1].model, g .. "/model", "provenance: the decomposition's model")
local svg = io.open(tmp .. "/a.svg"):read("a")
T.matches(svg, "^<svg ", "an SVG chart")
T.eq(select(2, svg:gsub("<circle ", "")), 4, "one point per entry of attention_layer_ablations")

-- Mean-ablating any heads and MLP terms, against the golden tensors summed here.
ok, text = run(string.format("ablate --decomposition %s/dec.safetensors --classifier %s/k.safetensors --labels %s "
  .. "--heads '3.2,2.*' --mlps embed,3 --out %s/a2.json", tmp, tmp, labels, tmp))
T.ok(ok, "ablate --heads --mlps runs: " .. text)
local a2 = refract.json_read(tmp .. "/a2.json")
T.eq(a2.ablated.heads, { "3.2", "2.1", "2.2", "2.3", "2.4" }, "heads as named")
T.eq(a2.ablated.mlps, { 0, 3 }, "MLP terms as named")
do
  local A, M = golden.dataset_attn_heads, golden.dataset_mlps
  local function mean_ablated(x) return x:mean(1):expand(x:shape()) end
  local z = A:sum({ 2, 3 }) + M:sum(2)
  local parts = { A:select(2, 3):select(2, 2), A:select(2, 2):sum(2), M:select(2, 1), M:select(2, 4) }
  for _, x in ipairs(parts) do z = z - x + mean_ablated(x) end
  local pred = z:matmul(golden.classifier):argmax(2):totable()
  local want_labels = golden.labels:totable()
  local correct = 0
  for i, p in ipairs(pred) do if p - 1 == want_labels[i] then correct = correct + 1 end end
  T.eq(a2.ablated.accuracy, correct / #pred * 100, "accuracy with those components mean-ablated")
end
-- }=====

-- {===== TextSpan
ok, text = run(string.format("textspan --model %s/model --decomposition %s/dec.safetensors --texts %s/descriptions.txt "
  .. "--layers 2 --rank 16 --texts-per-head 5 --classifier %s/k.safetensors --labels %s --out %s/spans.json",
  g, tmp, g, tmp, labels, tmp))
T.ok(ok, "textspan runs: " .. text)
local s = refract.json_read(tmp .. "/spans.json")
T.eq(#s.heads, 8, "8 heads: layers 2 and 3, in layer-then-head order")
local chosen = golden.chosen:totable()
for i, h in ipairs(s.heads) do
  T.eq({ h.layer, h.head }, { 2 + (i - 1) // 4, (i - 1) % 4 + 1 }, "layer-then-head order")
  local want = chosen[h.layer - 1][h.head]
  local got = {}
  for j, line in ipairs(h.lines) do got[j] = line - 1 end
  T.eq(got, want, string.format("layer %d head %d picks identical", h.layer, h.head))
  T.eq(h.texts[1], spans.chosen["layer " .. (h.layer - 1)]["head " .. (h.head - 1)][1][2], "texts")
  local total = 0
  for _, v in ipairs(h.variance) do
    T.ok(v > 0 and v < 1, "a share of the variance")
    total = total + v
  end
  T.ok(total <= 1 + 1e-6, "the shares add up to at most the whole")
end
T.eq(s.accuracy, spans.accuracy_mean_ablated_and_replaced, "accuracy_mean_ablated_and_replaced identical")
T.eq(s.accuracy_baseline, ablations.baseline, "baseline accuracy")
T.eq(s.heads[8].accuracy_after, s.accuracy, "the last head's accuracy is the final one")
T.eq(s.provenance.model.files["open_clip_model.safetensors"], weights_sha, "provenance")
local table_md = io.open(tmp .. "/spans.md"):read("a")
T.matches(table_md, "| 3 | 4 | a purple blob %(", "the Markdown table")

-- The module on the golden's own tensors: reconstructions and the final representation.
do
  local textspan = require("refract.textspan")
  local dec = { attn_heads = golden.dataset_attn_heads, mlps = golden.dataset_mlps, layers = 3, heads = 4, dim = 32,
                count = 96 }
  local r = textspan.run(dec, golden.pool_embeds, { layers = 2, rank = 16, texts = 5 })
  local d = (r.representation - golden.mean_ablated_and_replaced):abs():max():item()
  print(string.format("mean_ablated_and_replaced max |diff| %.3e (tolerance 1e-5)", d))
  T.ok(d <= 1e-5, "mean_ablated_and_replaced")
  local x = golden.dataset_attn_heads:select(2, 3):select(2, 1)
  local h = textspan.head(x, golden.pool_embeds, { rank = 16, texts = 5 })
  local want = golden.reconstructions:select(1, 2):select(1, 1)
  d = (h.reconstruction - want):abs():max():item()
  print(string.format("reconstruction of layer 3 head 1 max |diff| %.3e (tolerance 5e-6)", d))
  T.ok(d <= 5e-6, "reconstruction")
end
-- }=====

-- {===== groups: 6 images, 1 layer of 1 head, D = 2, classifier = identity (logits = z).
-- The head carries a spurious "place" signal (2, 0) or (0, 2), the layer's MLP the class
-- (1, 0) or (0, 1). Before: prediction = place, so (label, place) groups (0,0) and (1,1)
-- are right, (0,1) and (1,0) wrong. After mean-ablating head 1.1, its term is the mean
-- (1, 1) for every image and the prediction is the class: all right.
--   image  y place  z before  pred   z after  pred
--   a      0   0    (3, 0)    0 ok   (2, 1)   0 ok
--   b      0   1    (1, 2)    1 no   (2, 1)   0 ok
--   c      1   1    (0, 3)    1 ok   (1, 2)   1 ok
--   d      1   0    (2, 1)    0 no   (1, 2)   1 ok
--   e      0   0    (3, 0)    0 ok   (2, 1)   0 ok
--   f      1   1    (0, 3)    1 ok   (1, 2)   1 ok
-- Groups before: label 0 place 0: 2/2 = 100; label 0 place 1: 0/1 = 0; label 1 place 0:
-- 0/1 = 0; label 1 place 1: 2/2 = 100; overall 4/6; worst 0 (label 0, place 1, first).
do
  local y = { 0, 0, 1, 1, 0, 1 }
  local place = { 0, 1, 1, 0, 0, 1 }
  local heads, mlps = {}, {}
  for i = 1, 6 do
    heads[i] = { { place[i] == 0 and { 2, 0 } or { 0, 2 } } }
    mlps[i] = { { 0, 0 }, y[i] == 0 and { 1, 0 } or { 0, 1 } }
  end
  -- the decomposition records its images in another order than the CSV's rows
  local order = { "f", "e", "d", "c", "b", "a" }
  local rows = { f = 6, e = 5, d = 4, c = 3, b = 2, a = 1 }
  local ah, ml, paths = {}, {}, {}
  for i, name in ipairs(order) do
    ah[i], ml[i] = heads[rows[name]], mlps[rows[name]]
    paths[i] = "/data/birds/" .. name .. ".jpg"
  end
  refract.write(tmp .. "/groups_dec.safetensors", { attn_heads = refract.tensor(ah), mlps = refract.tensor(ml),
    cls_attn = refract.zeros({ 6, 1, 2 }) }, { paths = refract.json_encode(paths) })
  refract.write(tmp .. "/identity.safetensors", { classifier = refract.eye(2) })
  local csv = { "img_filename,y,place,split,note" }
  for i, name in ipairs({ "a", "b", "c", "d", "e", "f" }) do
    csv[#csv + 1] = string.format('birds/%s.jpg,%d,%d,2,"bird, %s"', name, y[i], place[i], name)
  end
  write("metadata.csv", table.concat(csv, "\r\n") .. "\r\n")
  ok, text = run(string.format("ablate --decomposition %s/groups_dec.safetensors --classifier %s/identity.safetensors "
    .. "--labels %s/metadata.csv:y --groups %s/metadata.csv:place --heads 1.1 --out %s/groups.json",
    tmp, tmp, tmp, tmp, tmp))
  T.ok(ok, "ablate --groups runs: " .. text)
  local r = refract.json_read(tmp .. "/groups.json")
  T.eq(r.groups.column, "place", "group column")
  local function summary(part)
    local list = {}
    for i, x in ipairs(part.groups) do list[i] = { x.label, x.value, x.count, x.correct, x.accuracy } end
    return list
  end
  T.eq(summary(r.groups.before), { { 0, "0", 2, 2, 100 }, { 0, "1", 1, 0, 0 }, { 1, "0", 1, 0, 0 }, { 1, "1", 2, 2, 100 } },
    "groups before")
  T.eq(r.groups.before.worst.name, "label 0, place 1", "worst group before")
  T.eq(r.groups.before.overall, 4 / 6 * 100, "overall before")
  T.eq(summary(r.groups.after), { { 0, "0", 2, 2, 100 }, { 0, "1", 1, 1, 100 }, { 1, "0", 1, 1, 100 }, { 1, "1", 2, 2, 100 } },
    "groups after mean-ablating the place head")
  T.eq(r.groups.after.worst.accuracy, 100, "worst group after")
  T.eq(r.baseline, 4 / 6 * 100, "baseline = overall before")
  T.eq(r.ablated.accuracy, 100, "accuracy after")
  T.matches(text, "label 0, place 1%s+1 images%s+0%.00", "the groups are printed")
end
-- }=====

-- {===== bad invocations
local dec = tmp .. "/dec.safetensors"
local base = string.format("ablate --decomposition %s --classifier %s/k.safetensors --labels %s --out %s/x.json",
  dec, tmp, labels, tmp)
local function fails(args, needle, what)
  local good, out = run(args)
  T.ok(not good, what .. " fails")
  T.ok(out:find(needle, 1, true) ~= nil, string.format("%s: %q lacks %q", what, out, needle))
end
fails(base:gsub(dec, tmp .. "/missing.safetensors"), "missing.safetensors: no such decomposition file", "missing decomposition")
fails(base:gsub(" %-%-out [^ ]+", ""), "--out is required", "no --out")
fails(base .. " --heads 3.9", 'head 9 in "3.9" is out of range: the model has heads 1..4', "head out of range")
fails(base .. " --heads 3-1", 'bad head "3-1"', "bad L.H")
fails(base .. " --heads 0.1", 'layer 0 in "0.1" is out of range: the model has layers 1..3', "layer 0")
fails(base .. " --mlps 4", 'MLP 4 in "4" is out of range: the model has MLPs 0..3', "MLP out of range")
fails(base .. " --bogus", "unknown option --bogus", "unknown option")
fails(base:gsub("x%.json", "x.txt"), "x.txt: expected a .json file", "--out extension")
fails(base:gsub("x%.json", "no/such/x.json"), "does not exist", "--out folder")
local short = {}
for i = 1, 95 do short[i] = tostring(i % 6) end
write("short.txt", table.concat(short, "\n") .. "\n")
fails(base:gsub(labels:gsub("%p", "%%%0"), tmp .. "/short.txt"), "short.txt: 95 labels for 96 images", "labels count")
local range = {}
for i = 1, 96 do range[i] = i == 40 and "6" or "0" end
write("range.txt", table.concat(range, "\n") .. "\n")
fails(base:gsub(labels:gsub("%p", "%%%0"), tmp .. "/range.txt"), "range.txt:40: label 6 is out of range for 6 classes (0..5)",
  "label out of range")
fails(base:gsub(labels:gsub("%p", "%%%0"), tmp .. "/missing.csv:y"), "missing.csv: cannot read", "missing labels file")
fails(string.format("ablate --decomposition %s --classifier %s/textspan.safetensors:pool_embeds --labels %s --out %s/x.json",
  dec, g, labels, tmp), "must be [32, C]", "classifier of the wrong shape")
write("bad_templates.txt", "a photo of a {}.\na photo of a thing.\n")
fails(string.format("classifier --model %s/model --classes %s --templates %s/bad_templates.txt --out %s/k3.safetensors",
  g, classes, tmp, tmp), "bad_templates.txt:2: template \"a photo of a thing.\" has no {}", "template without {}")
fails(string.format("classifier --model %s/model --classes %s/none.txt --templates %s --out %s/k3.safetensors",
  g, tmp, templates, tmp), "none.txt: cannot read class names", "missing classes file")
fails(string.format("classifier --model %s/model --classes %s --templates %s --out %s/k3.npy", g, classes, templates, tmp),
  "k3.npy: expected a .safetensors file", "classifier --out extension")
local ts = string.format("textspan --model %s/model --decomposition %s --texts %s/descriptions.txt --out %s/s.json",
  g, dec, g, tmp)
fails(ts .. " --rank 4 --texts-per-head 5", "--texts-per-head 5 exceeds --rank 4", "more texts than the rank")
fails(ts .. " --layers 4", "--layers must be at most 3", "too many layers")
fails(ts .. " --classifier " .. tmp .. "/k.safetensors", "--classifier and --labels go together", "classifier alone")
fails(ts .. " --layers 0", "--layers must be a positive integer", "zero layers")
-- }=====

os.execute("rm -rf '" .. tmp .. "'")
T.done()
