-- refract demo tells the paper's story on the bundled model and its world: the report
-- folder holds every section with its pictures, and the numbers say what the paper says
-- (zero-shot accuracy far above chance, the last attention layer carrying the direct
-- effect, a background head and a shape head in the last layer, segmentation far above
-- the all-foreground baseline, a head retrieving by its attribute). `demo --model` runs
-- on a checkpoint with the bundled photos. Also the helpers that name heads' roles and
-- the projected maps of demo --model.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local exe = refract.executable()
local tmp = T.tmp()

local function run(args)
  return T.run(string.format("'%s' %s", exe, args))
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Every picture a report links exists and is a PNG (with its signature) or an SVG.
local function check_pictures(dir, text)
  local count = 0
  for file in text:gmatch("!%[[^%]]*%]%(([^)]+)%)") do
    count = count + 1
    local f = io.open(dir .. "/" .. file, "rb")
    T.ok(f ~= nil, "the report's picture exists: " .. file)
    if f then
      local head = f:read(8)
      f:close()
      if file:match("%.png$") then T.eq(head, "\137PNG\r\n\26\n", file .. " is a PNG")
      else T.matches(head, "^<svg", file .. " is an SVG") end
    end
  end
  return count
end

-- {===== the bundled story

local dir = tmp .. "/report"
local start = refract.clock()
local r = run("demo --report " .. dir)
local seconds = refract.clock() - start
T.ok(r.ok, "demo runs: " .. r.err)
print(string.format("demo: %.1f s", seconds))
local report = T.read_file(dir .. "/report.md")
for _, section in ipairs({ "Zero%-shot accuracy per attribute", "Which layers carry the direct effect",
                           "TextSpan", "Zero%-shot segmentation", "Retrieval by one head" }) do
  T.matches(report, "\n## %d%. [^\n]*" .. section, "report section " .. section)
end
T.ok(check_pictures(dir, report) >= 6 * 3 + 3, "the report links the chart, the segmentation pictures and the sheets")
T.matches(r.out, "zero%-shot accuracy: shape", "the summary is printed")
T.matches(r.out, "segmentation: mIoU", "the summary gives the mIoU")

local res = refract.json_read(dir .. "/results.json")
T.eq(res.images, 300, "300 images of the world")
for name, z in pairs(res.zero_shot) do
  T.ok(z.accuracy >= z.chance + 40, string.format("zero-shot %s %.1f%% far above chance %.1f%%", name, z.accuracy,
    z.chance))
end
-- the ablation: the last attention layer carries the direct effect
local means = res.ablation_mean
T.ok(means[#means] < means[#means - 1] - 20 and means[#means - 1] > 80,
  string.format("mean accuracy %.1f%% with layers 1..L-1 ablated, %.1f%% with all", means[#means - 1], means[#means]))
T.matches(r.out, "the last attention layer carries the direct effect", "the summary says so")
for name, a in pairs(res.ablation) do
  T.eq(#a.attention_layer_ablations, res.layers + 1, name .. ": L + 1 ablation numbers")
  T.eq(a.attention_layer_ablations[1], a.baseline, name .. ": the first is the baseline")
end
-- TextSpan roles in the last layer, each checked by the head's accuracy alone
local last = {}
for _, h in ipairs(res.textspan.heads) do
  T.eq(#h.texts, res.textspan.texts_per_head, "texts per head")
  if h.layer == res.layers and h.role then last[h.role] = h end
end
T.ok(last.background ~= nil, "a background head in the last layer")
T.ok(last.shape ~= nil, "a shape head in the last layer")
if last.background then
  T.ok(last.background.alone_accuracy.background >= 90, "the background head alone classifies backgrounds")
  T.ok(last.background.alone_accuracy.shape < 40, "but not shapes")
end
if last.shape then T.ok(last.shape.alone_accuracy.shape >= 60, "the shape head alone classifies shapes") end
T.ok(res.textspan.accuracy > 80, "shape accuracy with the heads replaced by their texts")
-- segmentation
local seg = res.segmentation
T.ok(seg.miou > seg.all_foreground.miou + 0.3, string.format("mIoU %.3f far above the all-foreground %.3f", seg.miou,
  seg.all_foreground.miou))
T.ok(seg.map > 0.5 and seg.pixel_accuracy > 0.8, "mAP and pixel accuracy")
T.eq(#seg.per_image, 300, "every image scored")
-- retrieval: the background head's neighbours share the query's background
local sheets = {}
for _, s in ipairs(res.retrieval) do sheets[s.role] = s end
T.ok(sheets.background ~= nil and sheets.background.shared.background >= sheets.background.others - 1,
  "the background head retrieves images of the query's background")
T.ok(sheets.shape ~= nil and sheets.shape.shared.shape >= sheets.shape.others - 2,
  "the shape head retrieves images of the query's shape")
T.eq(res.provenance.command, "demo", "provenance")
T.ok(res.provenance.model.files["open_clip_model.safetensors"] ~= nil, "the model's checksum")

-- }=====

-- {===== roles from texts

local story = require("refract.demo_shapes")
local attributes = {
  { name = "shape", classes = { "circle", "star" } },
  { name = "colour", classes = { "red", "white" } },
  { name = "background", classes = { "plain white", "stripes" },
    words = { ["plain white"] = { "plain white background" }, stripes = { "striped background", "stripes" } } },
}
T.eq(story.text_attributes("A white circle on a plain white background.", attributes),
  { shape = "circle", colour = "white", background = "plain white" }, "longest phrases first, then taken out")
T.eq(story.text_attributes("a circle on a plain white background.", attributes),
  { shape = "circle", background = "plain white" }, "the background's white is not a colour")
T.eq(story.text_attributes("a thing", attributes), {}, "nothing named")
local role, share = story.role({ "a circle on stripes.", "a circle on a plain white background." }, { 0.3, 0.1 },
  attributes)
T.eq(role, "background", "the attribute that differs among the texts, not the one they share")
T.near(share, 1, 1e-12, "all of the texts' variance")
role, share = story.role({ "a red circle.", "a red star.", "a white circle." }, { 0.4, 0.3, 0.2 }, attributes)
T.eq(role, "shape", "shape: circle 0.4 + star 0.3 beats colour: red 0.4 + white 0.2")
T.near(share, 0.7 / 0.9, 1e-12, "its share")

-- }=====

-- {===== demo --model

local g = home .. "/tests/data/tiny-gelu"
local model = refract.load(g .. "/model")
local k = model:encode_texts({ "a cat", "a dog", "a red circle", "stars" }):normalize(2):t()
local pixels = refract.preprocess({ home .. "/scripts/data/images/astronaut.png", home .. "/scripts/data/images/rocket.jpg" },
  model)
local best, maps = require("refract.segment").patch_maps(model, pixels, k)
local projected, head_maps, contributions = require("refract.demo_photos").class_maps(model, pixels, k, best)
for i = 1, 2 do
  local scale = maps[i]:abs():max():item()
  T.ok((maps[i] - projected[i]):abs():max():item() <= 1e-5 * scale, "projected maps are the segmentation's, image " .. i)
  T.eq(#head_maps[i], model:config().heads, "one map per head of the last layer")
  T.eq(#contributions[i], model:config().heads, "one contribution per head")
end

local templates = io.open(tmp .. "/templates.txt", "w")
templates:write("a photo of a {}.\na drawing of a {}.\n")
templates:close()
local classes = io.open(tmp .. "/classes.txt", "w")
classes:write("astronaut\ncat\ncoffee cup\nrocket\ngalaxy\nshoe\n")
classes:close()
local pdir = tmp .. "/photos"
r = run(string.format("demo --model %s/model --classes %s/classes.txt --templates %s/templates.txt --report %s", g, tmp,
  tmp, pdir))
T.ok(r.ok, "demo --model runs: " .. r.err)
report = T.read_file(pdir .. "/report.md")
T.eq(check_pictures(pdir, report), 5 * 3 + 1, "five photos' segmentation pictures and the heads' picture")
res = refract.json_read(pdir .. "/results.json")
T.eq(#res.photos, 5, "the five bundled photos")
for _, p in ipairs(res.photos) do
  local total = 0
  for j, t in ipairs(p.top) do
    total = total + t.probability
    if j > 1 then T.ok(t.probability <= p.top[j - 1].probability, "ranked") end
  end
  T.ok(#p.top == 5 and total <= 1 + 1e-6, "five classes, probabilities")
end
T.near(res.logit_scale, math.log(1 / 0.07), 1e-6, "the model's logit scale")

-- misuse
T.refused(run("demo --classes x"), "--classes and --templates go with --model")
T.refused(run("demo --dtype f64"), "--dtype must be f32 or f16")
T.refused(run("demo --model " .. tmp .. "/none --report " .. tmp .. "/r2"), tmp .. "/none")

-- }=====

T.done()
