-- refract.demo_shapes: `refract demo` on the bundled tinyclip-shapes model and 300 labelled
-- images of its world: the paper's story (Gandelsman et al., ICLR 2024) told with the
-- bundled modules, from one decomposition of the images:
--   1. zero-shot accuracy per attribute (refract.classifier, refract.ablate);
--   2. the mean-ablation study: which attention layers carry the direct effect;
--   3. TextSpan over the last layers' heads, each head named by the attribute its texts
--      are about, and checked by how well its direct contribution alone classifies;
--   4. zero-shot segmentation against the masks, with the all-foreground baseline;
--   5. retrieval by one head's direct contribution (a background head, a shape head).
-- Prints a summary and writes a report folder (report.md, pictures, results.json).
--
--   require("refract.demo_shapes").run({ report = "out" })
local refract = require("refract")
local data = require("refract.data")
local classifier = require("refract.classifier")
local ablate = require("refract.ablate")
local textspan = require("refract.textspan")
local segment = require("refract.segment")
local retrieve = require("refract.retrieve")
local provenance = require("refract.provenance")
local report = require("refract.report")
local Progress = require("refract.progress")

local M = {}

M.textspan_layers = 2   -- TextSpan over the heads of the last 2 layers
M.texts_per_head = 5
M.pictures = 6          -- segmentation pictures of the first 6 images
M.neighbours = 8        -- retrieval: the query and its 7 nearest images
M.query = 1             -- retrieval: the first image is the query

local function pct(v) return string.format("%.1f%%", v) end

-- {===== the world: attributes, classifiers, labels

-- Every attribute of the world: { name, classes (label names, in index order), prompts
-- (the names put into the templates), templates, words, classifier [D, C], labels }.
function M.attributes(model, world, paths)
  local prompts = refract.json_read(world .. "/prompts.json")
  local classes = refract.json_read(world .. "/labels.json").classes
  local list = {}
  for _, name in ipairs(prompts.attributes) do
    local p = prompts[name]
    local a = { name = name, classes = classes[name], prompts = p.names or classes[name], templates = p.templates,
                words = p.words }   -- words[class]: the phrases that name the class in a text
    a.classifier = classifier.build(model, a.prompts, a.templates)
    a.labels = data.read_labels(world .. "/labels.csv:" .. name, { count = #paths, paths = paths, classes = a.classes })
    a.chance = 100 / #a.classes
    list[#list + 1] = a
  end
  return list
end

-- What a text says of each attribute: { [attribute] = class }. A class is named in a text
-- by its name or by one of its `words` (prompts.json: background "stripes" is also
-- "striped background"); phrases are looked for longest first and taken out of the text
-- once found, so "a plain white background" is about the background, not the colour.
function M.text_attributes(text, attributes)
  local phrases = {}
  for _, a in ipairs(attributes) do
    for _, class in ipairs(a.classes) do
      for _, w in ipairs(a.words and a.words[class] or { class }) do
        phrases[#phrases + 1] = { pattern = " " .. w .. " ", attribute = a.name, class = class }
      end
    end
  end
  table.sort(phrases, function(x, y)
    if #x.pattern ~= #y.pattern then return #x.pattern > #y.pattern end
    return x.pattern < y.pattern
  end)
  local s = " " .. text:lower():gsub("[^%a]+", " ") .. " "
  local says = {}
  for _, p in ipairs(phrases) do
    local i = s:find(p.pattern, 1, true)
    while i do
      says[p.attribute] = says[p.attribute] or p.class
      s = s:sub(1, i) .. s:sub(i + #p.pattern - 1)
      i = s:find(p.pattern, 1, true)
    end
  end
  return says
end

-- A head's role from its TextSpan texts: the attribute whose values differ most among
-- them. Each attribute scores the variance shares of the texts that name it, each of its
-- classes counted once (at its largest share): texts that all say "circle" and differ in
-- their backgrounds span backgrounds, not shapes. Returns the role (nil if no text names
-- an attribute) and its score as a share of the texts' variance.
function M.role(texts, variance, attributes)
  local largest, total = {}, 0
  for i, t in ipairs(texts) do
    total = total + variance[i]
    for name, class in pairs(M.text_attributes(t, attributes)) do
      largest[name] = largest[name] or {}
      largest[name][class] = math.max(largest[name][class] or 0, variance[i])
    end
  end
  local role, best = nil, 0
  for _, a in ipairs(attributes) do
    local score = 0
    for _, v in pairs(largest[a.name] or {}) do score = score + v end
    if score > best then role, best = a.name, score end
  end
  return role, total > 0 and best / total or 0
end

-- }=====

-- {===== one decomposition, segmentation on the way

-- Decomposes every image once (with the per-token terms) and segments it with the shape
-- classifier on the way (refract.segment scores it against the masks); keeps the
-- per-head, MLP and CLS terms for the other analyses. Returns the decomposition
-- (refract.data's form) and the segmentation result.
local function decompose_and_segment(model, items, shape, pictures_dir)
  local c = model:config()
  local decomposer <close> = model:decomposer({ spatial = true })
  local batch = decomposer:max_batch()
  local next_batch = segment.batches_of(items, model, batch)
  local kept = { attn_heads = {}, mlps = {}, cls_attn = {} }
  local function batches()
    local pixels, entries = next_batch()
    if not pixels then return nil end
    local d = decomposer:run(pixels)
    local best, maps = segment.maps_from(d, shape.classifier, c)
    for name, t in pairs(d) do
      if kept[name] then table.insert(kept[name], t) else t:free() end
    end
    return pixels, entries, best, maps
  end
  local progress = Progress.new(#items)
  local seg = segment.run(model, shape.classifier, batches, {
    pictures = pictures_dir, pictures_max = M.pictures, class_names = shape.classes,
    progress = function(n) progress:add(n) end,
  })
  progress:finish()
  local tensors, paths = {}, {}
  for name, list in pairs(kept) do
    tensors[name] = #list == 1 and list[1] or refract.cat(list, 1)
    if #list > 1 then for _, t in ipairs(list) do t:free() end end
  end
  for i, item in ipairs(items) do paths[i] = item.path end
  return data.decomposition(tensors, { paths = paths, source = "the demo's decomposition" }), seg
end

-- }=====

-- {===== analyses

-- Accuracy (%) of one component's direct contribution alone, per attribute (scores
-- centred over the images: what varies between images, as retrieval compares them).
local function alone_accuracy(vectors, attributes)
  local centred = retrieve.centred(vectors)
  local acc = {}
  for _, a in ipairs(attributes) do acc[a.name] = (ablate.accuracy(centred, a.classifier, a.labels)) end
  centred:free()
  return acc
end

local function textspan_heads(model, dec, attributes, shape, pool_file)
  local texts = data.read_list(pool_file, "texts")
  local pool = textspan.embed_pool(model, texts)
  local rank = textspan.default_rank(dec.dim, model:config().head_width)
  local run = textspan.run(dec, pool, { layers = M.textspan_layers, texts = M.texts_per_head, rank = rank,
                                        classifier = shape.classifier, labels = shape.labels })
  run.representation:free()
  pool:free()
  for _, h in ipairs(run.heads) do
    h.name = string.format("%d.%d", h.layer, h.head)
    h.texts = {}
    for i, j in ipairs(h.chosen) do h.texts[i] = texts[j] end
    h.role, h.role_share = M.role(h.texts, h.variance, attributes)
    local x = dec.attn_heads:select(2, h.layer):select(2, h.head)
    h.alone = alone_accuracy(x, attributes)
    x:free()
  end
  return run, texts
end

-- The head of the given role whose direct contribution alone classifies that attribute
-- best (nil if no head has that role).
local function head_with_role(heads, role)
  local best
  for _, h in ipairs(heads) do
    if h.role == role and (not best or h.alone[role] > best.alone[role]) then best = h end
  end
  return best
end

-- Retrieval by one head: the query image's nearest neighbours, the contact sheet, and how
-- many neighbours share each of the query's attributes.
local function retrieval(dec, head, attributes, dir)
  local component = retrieve.component(dec, head.name)
  local vectors = retrieve.centred(component.vectors)
  component.vectors:free()
  local query = vectors[M.query]
  local hits = retrieve.nearest(vectors, query, M.neighbours)
  query:free()
  vectors:free()
  local file = string.format("retrieval-head-%d-%d.png", head.layer, head.head)
  retrieve.sheet(dir .. "/" .. file, dec.paths, hits, { query = M.query, size = 96 })
  local shared = {}
  local others = 0
  for _, hit in ipairs(hits) do
    if hit.image ~= M.query then
      others = others + 1
      for _, a in ipairs(attributes) do
        if a.labels[hit.image] == a.labels[M.query] then shared[a.name] = (shared[a.name] or 0) + 1 end
      end
    end
  end
  local listing = {}
  for r, hit in ipairs(hits) do
    listing[r] = { rank = r, image = hit.image, file = dec.paths[hit.image]:match("([^/]+)$"), score = hit.score }
  end
  return { head = head.name, role = head.role, sheet = file, neighbours = listing, others = others,
           shared = shared }
end

-- }=====

-- {===== the report

local function query_attributes(attributes)
  local parts = {}
  for _, a in ipairs(attributes) do parts[#parts + 1] = a.classes[a.labels[M.query] + 1] end
  return table.concat(parts, ", ")
end

local function write_report(r, ctx)
  local attributes, study, run, seg, sheets = ctx.attributes, ctx.study, ctx.run, ctx.seg, ctx.sheets
  local dec = ctx.dec
  r:heading(1, "refract demo: tinyclip-shapes on " .. dec.count .. " images of its world")
  r:paragraph(string.format("Model `%s` (%s). Dataset `%s` (%d images with masks and labels). One "
    .. "decomposition of every image (%d layers x %d heads, embedding size %d) feeds every section. "
    .. "Layers and heads are numbered from 1; `L.H` is head H of layer L. Made in %.1f s by refract %s; "
    .. "`results.json` holds every number and the provenance (arguments, SHA-256 of the model and inputs).",
    ctx.model_dir, ctx.description, ctx.world, dec.count, dec.layers, dec.heads, dec.dim, ctx.seconds,
    refract.version))

  r:heading(2, "1. Zero-shot accuracy per attribute")
  local rows = {}
  for _, a in ipairs(attributes) do
    local prompts = {}
    for _, t in ipairs(a.templates) do prompts[#prompts + 1] = "`" .. t .. "`" end
    rows[#rows + 1] = { a.name, #a.classes, pct(study[a.name].baseline), pct(a.chance), table.concat(prompts, " ") }
  end
  r:table({ "attribute", "classes", "accuracy", "chance", "prompt templates" }, rows, { "l", "r", "r", "r", "l" })

  r:heading(2, "2. Which layers carry the direct effect (mean-ablation)")
  r:paragraph("Each image's representation is the sum of its decomposed terms; a mean-ablated term is "
    .. "replaced by its mean over the images. Accuracy (%) with the attention layers 1..k mean-ablated "
    .. "(heads summed), and with every MLP term or every CLS-to-CLS term mean-ablated:")
  local header = { "attribute", "none" }
  for k = 1, dec.layers do header[#header + 1] = k == 1 and "1" or ("1.." .. k) end
  header[#header + 1] = "MLPs"
  header[#header + 1] = "CLS terms"
  local align = { "l" }
  for i = 2, #header do align[i] = "r" end
  rows = {}
  for _, a in ipairs(attributes) do
    local s = study[a.name]
    local row = { a.name }
    for _, v in ipairs(s.attention_layer_ablations) do row[#row + 1] = string.format("%.1f", v) end
    row[#row + 1] = string.format("%.1f", s.mlp_mean_ablation)
    row[#row + 1] = s.cls_ablation and string.format("%.1f", s.cls_ablation) or "-"
    rows[#rows + 1] = row
  end
  r:table(header, rows, align)
  r:paragraph(ctx.layer_finding)
  r:picture("accuracy against mean-ablated attention layers", "ablation.svg")

  r:heading(2, string.format("3. What the last %d layers' heads do (TextSpan)", M.textspan_layers))
  r:paragraph(string.format("TextSpan picks, for each head, %d texts of the pool `%s` (%d descriptions of "
    .. "the world) whose directions explain the most of the head's variance over the images (share in "
    .. "brackets), the earlier layers mean-ablated. The role is the attribute whose values differ most "
    .. "among the head's texts (the variance shares of its distinct values, each counted once at its "
    .. "largest; the score in brackets is its share of the texts' variance); the last columns check it: the accuracy of the head's direct contribution "
    .. "alone as a zero-shot classifier of each attribute (scores centred over the images).",
    M.texts_per_head, ctx.pool_file, ctx.pool_size))
  header = { "head", "role (share)", "texts (share of the head's variance)" }
  for _, a in ipairs(attributes) do header[#header + 1] = a.name end
  align = { "l", "l", "l" }
  for i = 4, #header do align[i] = "r" end
  rows = {}
  for _, h in ipairs(run.heads) do
    local texts = {}
    for i, t in ipairs(h.texts) do texts[i] = string.format("%s (%.1f%%)", t, 100 * h.variance[i]) end
    local row = { h.name, h.role and string.format("%s (%.0f%%)", h.role, 100 * h.role_share) or "-",
                  table.concat(texts, "<br>") }
    for _, a in ipairs(attributes) do
      local v = pct(h.alone[a.name])
      row[#row + 1] = a.name == h.role and ("**" .. v .. "**") or v
    end
    rows[#rows + 1] = row
  end
  r:table(header, rows, align)
  r:paragraph(string.format("Shape accuracy: %s with every term, %s with layers 1..%d mean-ablated, %s "
    .. "with the %d heads also replaced by their %d-text reconstructions.", pct(run.accuracy_baseline),
    pct(run.accuracy_mean_ablated), dec.layers - M.textspan_layers, pct(run.accuracy), #run.heads,
    M.texts_per_head))

  r:heading(2, "4. Zero-shot segmentation")
  r:paragraph(string.format("Each image's class is the best column of the shape classifier; every patch "
    .. "scores the direct contributions of all heads reading it, projected on that class minus the mean "
    .. "over the classes; upsampled, scaled to [0, 1] and thresholded at its mean; scored against the "
    .. "masks as the ImageNet-segmentation benchmark's code scores it. %d images:", seg.images))
  local b = seg.all_foreground
  r:table({ "", "pixel accuracy", "mIoU", "IoU background", "IoU object", "mAP" }, {
    { "decomposition", pct(100 * seg.pixel_accuracy), pct(100 * seg.miou), pct(100 * seg.iou[1]),
      pct(100 * seg.iou[2]), pct(100 * seg.map) },
    { "all-foreground baseline", pct(100 * b.pixel_accuracy), pct(100 * b.miou), pct(100 * b.iou[1]),
      pct(100 * b.iou[2]), "-" },
  }, { "l", "r", "r", "r", "r", "r" })
  r:paragraph("The first images: relevance (viridis, 0 to 1), relevance over the image, and the "
    .. "thresholded mask against the ground truth (white: object found, red: false alarm, blue: "
    .. "object missed, black: background).")
  rows = {}
  for i = 1, math.min(M.pictures, #seg.per_image) do
    local p = seg.per_image[i]
    local stem = "segmentation/" .. segment.picture_name(p.file)
    local iou = (p.inter[2] / math.max(p.union[2], 1)) * 100
    rows[#rows + 1] = { string.format("%s<br>class: %s<br>object IoU %.0f%%", p.file, p.class_name, iou),
                        report.image("relevance of " .. p.file, stem .. "_heatmap.png"),
                        report.image("overlay of " .. p.file, stem .. "_overlay.png"),
                        report.image("mask of " .. p.file, stem .. "_mask.png") }
  end
  r:table({ "image", "relevance", "overlay", "mask vs ground truth" }, rows)

  r:heading(2, "5. Retrieval by one head")
  r:paragraph(string.format("Images ranked by the cosine similarity of one head's direct contribution "
    .. "(centred over the images) to the query's: image %s (%s), framed in orange; the bar under each "
    .. "image is its similarity.", dec.paths[M.query]:match("([^/]+)$"), query_attributes(attributes)))
  for _, s in ipairs(sheets) do
    local shares = {}
    for _, a in ipairs(attributes) do
      shares[#shares + 1] = string.format("%s %d/%d", a.name, s.shared[a.name] or 0, s.others)
    end
    r:paragraph(string.format("**Head %s (%s).** Neighbours sharing the query's attribute: %s.", s.head,
      s.role or "no role", table.concat(shares, ", ")))
    r:picture("retrieval by head " .. s.head, s.sheet)
  end

  r:heading(2, "The same with the commands")
  r:paragraph("Every section is a bundled module with a command (`refract COMMAND --help`): "
    .. "`refract classifier`, `refract decompose --dir ... --spatial`, `refract ablate`, `refract textspan`, "
    .. "`refract segment --dir ... --pictures`, `refract retrieve --component L.H --sheet`; "
    .. "this demo is `scripts/demo.lua` with `lua/lib/refract/demo_shapes.lua`.")
end

-- }=====

-- The finding of the ablation study: where the mean accuracy over the attributes drops
-- most as one more attention layer is mean-ablated.
local function layer_finding(attributes, study, layers)
  local means = {}
  for k = 1, layers + 1 do
    local s = 0
    for _, a in ipairs(attributes) do s = s + study[a.name].attention_layer_ablations[k] end
    means[k] = s / #attributes
  end
  local worst, drop = 1, -math.huge
  for k = 1, layers do
    if means[k] - means[k + 1] > drop then worst, drop = k, means[k] - means[k + 1] end
  end
  local text = string.format("Mean over the attributes: %.1f%% with nothing ablated, %.1f%% with "
    .. "layers 1..%d mean-ablated, %.1f%% when layer %d is ablated too: ", means[1], means[worst],
    worst - 1, means[worst + 1], worst)
  if worst == 1 then text = string.format("Mean over the attributes: %.1f%% with nothing ablated, %.1f%% with "
    .. "layer 1 mean-ablated: ", means[1], means[2]) end
  if worst == layers then
    text = text .. "the last attention layer carries the direct effect."
  else
    text = text .. string.format("layer %d carries most of the direct effect.", worst)
  end
  return text, means, worst
end

-- Runs the demo. opts.report: the report folder (made if missing); opts.dtype; opts.home
-- (default refract.home()).
function M.run(opts)
  require("refract.util").check_options(opts, "demo_shapes.run", { "report", "dtype", "home" })
  local start = refract.clock()
  local home = opts.home or refract.home()
  local model_dir = home .. "/scripts/data/models/tinyclip-shapes"
  local world = home .. "/scripts/data/datasets/shapes-world"
  local pool_file = home .. "/scripts/data/text/shapes_descriptions.txt"
  local dir = opts.report
  local r = report.new(dir)
  report.check_dir(dir .. "/segmentation", "--report")

  local model = refract.load(model_dir, { dtype = opts.dtype })
  local c = model:config()
  print(string.format("model: tinyclip-shapes (%s)", c.description))
  local items = segment.folder({ dir = world .. "/images", masks = world .. "/masks" })
  local paths = {}
  for i, item in ipairs(items) do paths[i] = item.path end
  print(string.format("dataset: %d images of its world with masks and labels (%s)", #items, world))
  local record = provenance.new({ model = model_dir, command = "demo", inputs = {
    world .. "/labels.csv", world .. "/prompts.json", pool_file } })

  local attributes = M.attributes(model, world, paths)
  local by_name = {}
  for _, a in ipairs(attributes) do by_name[a.name] = a end
  local shape = by_name.shape

  local dec, seg = decompose_and_segment(model, items, shape, dir .. "/segmentation")

  local study = {}
  for _, a in ipairs(attributes) do study[a.name] = ablate.study(dec, a.classifier, a.labels) end
  local finding, means = layer_finding(attributes, study, dec.layers)
  local series = {}
  for _, a in ipairs(attributes) do series[#series + 1] = { name = a.name, values = study[a.name].attention_layer_ablations } end
  data.write_text(r:path("ablation.svg"), ablate.chart(series, dec.layers, {
    title = "tinyclip-shapes: accuracy as attention layers are mean-ablated",
    note = string.format("%d images of its world; layers 1..k mean-ablated (heads summed), MLPs kept", dec.count) }))

  local run, pool = textspan_heads(model, dec, attributes, shape, pool_file)

  local sheets = {}
  for _, role in ipairs({ "background", "shape" }) do
    local head = head_with_role(run.heads, role)
    if head then sheets[#sheets + 1] = retrieval(dec, head, attributes, dir) end
  end
  if #sheets == 0 then sheets[1] = retrieval(dec, run.heads[#run.heads], attributes, dir) end

  local seconds = refract.clock() - start
  write_report(r, { attributes = attributes, study = study, run = run, seg = seg, sheets = sheets, dec = dec,
                    model_dir = "scripts/data/models/tinyclip-shapes", world = "scripts/data/datasets/shapes-world",
                    description = c.description, layer_finding = finding, pool_file = "shapes_descriptions.txt",
                    pool_size = #pool, seconds = seconds })
  local report_path = r:write("report.md")

  -- results.json: every number of the report
  local results = { images = dec.count, layers = dec.layers, heads = dec.heads, zero_shot = {}, ablation = study,
                    ablation_mean = means, textspan = { layers = M.textspan_layers, texts_per_head = M.texts_per_head,
                    accuracy_baseline = run.accuracy_baseline, accuracy_mean_ablated = run.accuracy_mean_ablated,
                    accuracy = run.accuracy, heads = {} }, segmentation = {}, retrieval = sheets,
                    seconds = seconds, provenance = record }
  for _, a in ipairs(attributes) do
    results.zero_shot[a.name] = { accuracy = study[a.name].baseline, chance = a.chance, classes = a.classes,
                                  templates = a.templates }
  end
  for _, h in ipairs(run.heads) do
    table.insert(results.textspan.heads, { layer = h.layer, head = h.head, texts = h.texts, variance = h.variance,
      role = h.role, role_share = h.role_share, alone_accuracy = h.alone, accuracy_after = h.accuracy })
  end
  for _, k in ipairs({ "images", "pixel_accuracy", "iou", "miou", "map", "all_foreground", "per_image" }) do
    results.segmentation[k] = seg[k]
  end
  data.write_text(r:path("results.json"), refract.json_encode(results, 1) .. "\n")

  -- the summary
  print("")
  local zs = {}
  for _, a in ipairs(attributes) do
    zs[#zs + 1] = string.format("%s %s (chance %s)", a.name, pct(study[a.name].baseline), pct(a.chance))
  end
  print("zero-shot accuracy: " .. table.concat(zs, ", "))
  print("mean-ablation: " .. finding)
  print(string.format("TextSpan, heads of the last %d layers (%d texts each; role = what differs among its texts):",
    M.textspan_layers, M.texts_per_head))
  for _, h in ipairs(run.heads) do
    local role = h.role and string.format("%-10s", h.role) or "-         "
    local alone = h.role and string.format(" alone: %s %s", h.role, pct(h.alone[h.role])) or ""
    print(string.format("  %s %s %-28s%s", h.name, role, string.format("%q", h.texts[1]), alone))
  end
  local b = seg.all_foreground
  print(string.format("segmentation: mIoU %s against %s for the all-foreground mask (pixel accuracy %s, mAP %s)",
    pct(100 * seg.miou), pct(100 * b.miou), pct(100 * seg.pixel_accuracy), pct(100 * seg.map)))
  for _, s in ipairs(sheets) do
    local role = s.role and by_name[s.role]
    print(string.format("retrieval by head %s (%s): %d of %d neighbours share the query's %s", s.head,
      s.role or "no role", role and (s.shared[role.name] or 0) or 0, s.others, role and role.name or "attributes"))
  end
  print(string.format("wrote %s in %.1f s", report_path, refract.clock() - start))
  return results
end

return M
