-- Rough edges a new user hit (issue 9, item 9): every options table refuses keys it does
-- not know (C bindings and Lua modules alike); model:config() has logit_scale, from the
-- checkpoint or else the config; datasets take pattern/exclude globs; encode reads
-- --dir/--list and records the paths as decompose does; every command checks --out
-- before it loads anything.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local exe = refract.executable()
local tmp = T.tmp()

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- {===== unknown option keys

local model = refract.load(g .. "/model")
local pixels = refract.preprocess(g .. "/images/00_exact_disc.png", model)
local unknown = {
  { "load", function() refract.load(g .. "/model", { dtyp = "f16" }) end },
  { "decompose", function() model:decompose(pixels, { spatal = true }) end },
  { "decomposer", function() model:decomposer({ reduce_axes = "layers" }) end },
  { "preprocess", function() refract.preprocess(g .. "/images/00_exact_disc.png", { siz = 32 }) end },
  { "dataset", function() refract.dataset({ dir = g .. "/images", recursive = true }) end },
  { "batches", function() refract.dataset({ dir = g .. "/images" }):batches({ model = model, bach = 2 }) end },
  { "images", function() refract.images({ dir = g .. "/images", model = model, bach = 2 }) end },
  { "bench_gemm", function() refract.bench_gemm({ m = 8, n = 8, k = 8, second = 1 }) end },
  { "heatmap", function() refract.heatmap(refract.zeros({ 2, 2 }), { colourmap = "gray" }) end },
  { "forward", function() model:forward(pixels, { tap = { "embed" } }) end },
}
for _, case in ipairs(unknown) do
  T.fails(case[2], case[1] .. ": unknown option '")
end
T.fails(function() refract.dataset({ dir = g .. "/images", [1] = "x" }) end, "dataset: options are named (dir, ")
T.fails(function() model:decompose(pixels, "spatial") end, "decompose: options must be a table, not string")
-- Boolean options take booleans: spatial = 0 or "false" read as true.
T.fails(function() model:decompose(pixels, { spatial = 0 }) end, "spatial must be true or false, not number")
T.fails(function() model:decomposer({ spatial = "false" }) end, "spatial must be true or false, not string")
T.fails(function() refract.load(g .. "/model", { vision_only = "yes" }) end, "vision_only must be true or false")
-- the keys each function does take still work, and refract.images takes the union
local n = 0
for p, _, count in refract.images({ dir = g .. "/images", model = model, batch = 4, start = 2, stop = 5, workers = 1,
                                    pattern = "*.png" }) do
  n = n + count
  p:free()
end
T.eq(n, 4, "refract.images with dataset, batches and preprocessing keys")
local d = model:decompose(pixels, { spatial = true, reduce = { "layers" }, centering = "exact" })
T.ok(d.attn_spatial ~= nil, "decompose with its own keys")

local data = require("refract.data")
local textspan = require("refract.textspan")
local lib = {
  { "textspan.embed_pool", function() textspan.embed_pool(model, { "a cat" }, { batches = 2 }) end },
  { "textspan.head", function() textspan.head(d.image_embeds, d.image_embeds, { rank = 1, texts = 1, centre = true }) end },
  { "textspan.run", function() textspan.run({}, nil, { layer = 2 }) end },
  { "classifier.build", function() require("refract.classifier").build(model, { "cat" }, { "a {}." }, { batchs = 1 }) end },
  { "data.read_labels", function() data.read_labels(g .. "/missing.npy", { classnames = {} }) end },
  { "data.read_groups", function() data.read_groups(g .. "/missing.npy", { number = 3 }) end },
  { "data.read_values", function() data.read_values(g .. "/missing.npy", { path = {} }) end },
  { "data.decomposition", function() data.decomposition({}, { file = "x" }) end },
  { "ablate.representation", function() require("refract.ablate").representation({}, { head = {} }) end },
  { "ablate.chart", function() require("refract.ablate").chart({}, 2, { subtitle = "x" }) end },
  { "provenance.new", function() require("refract.provenance").new({ input = {} }) end },
  { "random_clip.write", function() require("refract.random_clip").write(tmp .. "/rc", "tiny", { seeds = 1 }) end },
  { "svg.line_chart", function() require("refract.svg").line_chart({ x = { 1 }, series = {}, xlabel = "x" }) end },
  { "segment.folder", function() require("refract.segment").folder({ dir = g .. "/images", mask = "x" }) end },
  { "segment.run", function() require("refract.segment").run(model, nil, nil, { picture = "x" }) end },
  { "retrieve.sheet", function() require("refract.retrieve").sheet("x.png", {}, {}, { k = 1 }) end },
}
for _, case in ipairs(lib) do
  T.fails(case[2], case[1] .. ": unknown option ")
end
for _, t in pairs(d) do t:free() end

-- }=====

-- {===== logit_scale

local file = home .. "/scripts/data/models/tinyclip-shapes/open_clip_model.safetensors"
local stored = refract.read(file, "logit_scale"):item()
T.near(stored, 4.1227, 1e-4, "tinyclip-shapes stores its learned logit scale (README: 4.12)")
T.eq(refract.load(home .. "/scripts/data/models/tinyclip-shapes"):config().logit_scale, stored,
  "config().logit_scale is the checkpoint's")
T.near(model:config().logit_scale, math.log(1 / 0.07), 1e-6, "tiny-gelu keeps open_clip's initial ln(1/0.07)")
-- Without the tensor, the config's initial value; without either, nil.
local weights = refract.read(g .. "/model/open_clip_model.safetensors")
weights.logit_scale = nil
local cfg = refract.json_read(g .. "/model/open_clip_config.json")
for _, case in ipairs({ { "noscale", nil }, { "initscale", 1.5 } }) do
  local dir = tmp .. "/" .. case[1]
  sh("mkdir -p " .. dir)
  cfg.model_cfg.init_logit_scale = case[2]
  local f = io.open(dir .. "/open_clip_config.json", "w")
  f:write(refract.json_encode(cfg))
  f:close()
  refract.write(dir .. "/open_clip_model.safetensors", weights)
  T.eq(refract.load(dir):config().logit_scale, case[2], "logit_scale from the config: " .. case[1])
end
cfg.model_cfg.init_logit_scale = "big"
local f = io.open(tmp .. "/noscale/open_clip_config.json", "w")
f:write(refract.json_encode(cfg))
f:close()
T.fails(function() refract.load(tmp .. "/noscale") end, "init_logit_scale must be a number within float32's range")
-- Finite as a double but infinite as a float32 (found by fuzz_config).
cfg.model_cfg.init_logit_scale = 1e300
f = io.open(tmp .. "/noscale/open_clip_config.json", "w")
f:write(refract.json_encode(cfg))
f:close()
T.fails(function() refract.load(tmp .. "/noscale") end, "init_logit_scale must be a number within float32's range")

-- }=====

-- {===== pattern and exclude

local images = tmp .. "/imgs"
sh(string.format("mkdir -p %s/sub && cp %s/images/00_exact_disc.png %s/a.png && cp %s/images/07_noise_star.jpg %s/b.jpg"
  .. " && cp %s/images/01_large_pentagon.png %s/sub/c.png", images, g, images, g, images, g, images))
local function listing(spec)
  spec.dir = images
  local ds = refract.dataset(spec)
  local names = {}
  for i = 1, #ds do names[i] = ds:path(i):sub(#images + 2) end
  return names
end
T.eq(listing({}), { "a.png", "b.jpg", "sub/c.png" }, "every image")
T.eq(listing({ pattern = "*.png" }), { "a.png", "sub/c.png" }, "a file name glob matches in every folder")
T.eq(listing({ pattern = "sub/*" }), { "sub/c.png" }, "a glob with a / matches the path below dir")
T.eq(listing({ pattern = "*" }), { "a.png", "b.jpg", "sub/c.png" }, "* matches every name")
T.eq(listing({ exclude = "sub/*" }), { "a.png", "b.jpg" }, "exclude")
T.eq(listing({ pattern = "*.png", exclude = "c.*" }), { "a.png" }, "pattern and exclude together")
T.fails(function() listing({ pattern = "*.gif" }) end, "no image under " .. images .. " matches pattern *.gif")
T.fails(function() refract.dataset({ files = { images .. "/a.png" }, pattern = "*" }) end,
  "pattern and exclude go with dir")
T.fails(function() listing({ pattern = 3 }) end, "dataset: pattern is a number, not a string")
T.fails(function() refract.dataset({ dir = images, files = { images .. "/a.png" } }) end,
  "dataset: give one of dir=, list= or files=, not several")

-- }=====

-- {===== commands: encode --dir/--list, --pattern, --out checked first

local function run(args)
  return T.run(string.format("'%s' %s", exe, args))
end

-- encode --on-error skip: an unreadable image is left out of every output and recorded;
-- the rows kept equal a run without it. By default it stops the run, naming the image.
sh(string.format("mkdir -p %s/skip && cp %s/images/00_exact_disc.png %s/images/01_large_pentagon.png %s/skip/ "
  .. "&& printf xx > %s/skip/00b.png", tmp, g, g, tmp, tmp))
T.refused(run(string.format("encode --model %s/model --dir %s/skip --out %s/skip.safetensors", g, tmp, tmp)),
  tmp .. "/skip/00b.png: not an image file", "encode stops at an unreadable image")
local skip_run = run(string.format("encode --model %s/model --dir %s/skip --batch 2 --on-error skip --out %s/skip.safetensors",
  g, tmp, tmp))
T.ok(skip_run.ok, "encode --on-error skip: " .. skip_run.err)
T.matches(skip_run.out, "%(1 image skipped%)")
local skip_md = refract.metadata(tmp .. "/skip.safetensors")
T.eq(refract.json_decode(skip_md.paths), { tmp .. "/skip/00_exact_disc.png", tmp .. "/skip/01_large_pentagon.png" },
  "encode --on-error skip: paths of the rows kept")
T.eq(refract.json_decode(skip_md.skipped)[1][1], tmp .. "/skip/00b.png", "encode --on-error skip: the skip recorded")
T.ok(run(string.format("encode --model %s/model --dir %s/skip --pattern '0?_*' --out %s/noskip.safetensors", g, tmp, tmp)).ok,
  "encode without the bad image")
local with_skip, without = refract.read(tmp .. "/skip.safetensors"), refract.read(tmp .. "/noskip.safetensors")
-- (Batched differently, the products round differently: equal to float32 precision.)
T.ok((with_skip.image_embeds - without.image_embeds):abs():max():item() < 1e-5, "the rows kept are the same")
T.refused(run(string.format("encode --model %s/model --texts %s/skip/00b.png --on-error skip --out %s/x.safetensors",
  g, tmp, tmp)), "--on-error goes with --images, --dir or --list", "encode --on-error without images")

local r = run(string.format("encode --model %s/model --dir %s --pattern '*.png' --out %s/enc.safetensors", g, images, tmp))
T.ok(r.ok, "encode --dir --pattern: " .. r.err)
local md = refract.metadata(tmp .. "/enc.safetensors")
T.eq(refract.json_decode(md.paths), { images .. "/a.png", images .. "/sub/c.png" }, "encode records the paths")
local enc = refract.read(tmp .. "/enc.safetensors")
T.eq(enc.image_embeds:shape(), { 2, 32 }, "two images encoded")
local want = model:encode_images(refract.preprocess({ images .. "/a.png", images .. "/sub/c.png" }, model))
T.ok((enc.image_embeds - want):abs():max():item() <= 1e-5, "encode --dir gives the embeddings of the files")
local list = io.open(tmp .. "/list.txt", "w")
list:write("imgs/b.jpg\nimgs/a.png\n")
list:close()
r = run(string.format("encode --model %s/model --list %s/list.txt --batch 1 --out %s/list.npz", g, tmp, tmp))
T.ok(r.ok, "encode --list: " .. r.err)
T.eq(refract.json_decode(refract.metadata(tmp .. "/list.npz").paths), { tmp .. "/imgs/b.jpg", tmp .. "/imgs/a.png" },
  "encode --list records the paths in the list's order")
T.refused(run(string.format("encode --model %s/model --images %s/a.png --pattern '*.png' --out %s/x.safetensors",
  g, images, tmp)), "--pattern and --exclude go with --dir")
T.refused(run(string.format("encode --model %s/model --images %s/a.png --dir %s --out %s/x.safetensors", g, images,
  images, tmp)), "give one of --images, --dir, --list or --pixels")

r = run(string.format("decompose --model %s/model --dir %s --exclude 'sub/*' --out %s/dec.safetensors", g, images, tmp))
T.ok(r.ok, "decompose --dir --exclude: " .. r.err)
T.eq(refract.json_decode(refract.metadata(tmp .. "/dec.safetensors").paths), { images .. "/a.png", images .. "/b.jpg" },
  "decompose --exclude")
T.refused(run(string.format("decompose --model %s/model --list %s/list.txt --pattern x --out %s/x.safetensors", g, tmp,
  tmp)), "--pattern and --exclude go with --dir")
-- Stray arguments: decompose and encode ignored them, so `--centering=exact` ran with the
-- reference centering (another result, without a word) and an image after --out was left
-- out. `--name=value` is named as such in every command.
local image = g .. "/images/00_exact_disc.png"
for _, cmd in ipairs({ "decompose", "encode" }) do
  T.refused(run(string.format("%s --model %s/model --images %s --out %s/x.safetensors %s", cmd, g, image, tmp, image)),
    "unexpected argument " .. image, cmd .. " with an image after --out")
end
-- --name=value is --name value; a flag takes none, and an option's value is never the next option.
T.ok(run(string.format("decompose --model=%s/model --images=%s --centering=exact --out=%s/eq.safetensors", g, image,
  tmp)).ok, "decompose with --name=value")
T.eq(refract.metadata(tmp .. "/eq.safetensors").centering, "exact", "--centering=exact is taken")
T.refused(run(string.format("decompose --model %s/model --images %s --spatial=yes --out %s/x.safetensors", g, image, tmp)),
  "--spatial takes no value (--spatial=yes)", "a flag with a value")
T.refused(run(string.format("merge --chunks --out %s/x.safetensors", tmp)),
  "--chunks needs a value, not the option --out", "an option's value is not the next option")
T.refused(run(string.format("decompose --model %s/model --images --out %s/x.safetensors", g, tmp)),
  "--images needs a value, not the option --out", "a list option followed by an option")

sh(string.format("mkdir -p %s/seg/masks && cp %s/images/00_exact_disc.png %s/images/01_large_pentagon.png %s/seg/ "
  .. "&& cp %s/images/masks/00_exact_disc.png %s/seg/masks/", tmp, g, g, tmp, g, tmp))
local classes = io.open(tmp .. "/classes.txt", "w")
classes:write("disc\npentagon\n")
classes:close()
r = run(string.format("classifier --model %s/model --classes %s/classes.txt --templates %s/scripts/data/text/templates.txt "
  .. "--out %s/k.safetensors", g, tmp, home, tmp))
T.ok(r.ok, "classifier: " .. r.err)
r = run(string.format("segment --model %s/model --classifier %s/k.safetensors --dir %s/seg --pattern '00_*' --out %s/seg.json",
  g, tmp, tmp, tmp))
T.ok(r.ok, "segment --dir --pattern: " .. r.err)
local seg = refract.json_read(tmp .. "/seg.json")
T.eq(#seg.per_image, 1, "segment --pattern picks one image (its mask is never an image)")
T.eq(seg.per_image[1].file, "00_exact_disc.png", "the image the pattern names")

-- Every command refuses a bad --out before it reads anything: the model does not even exist.
local missing = tmp .. "/no-model"
local commands = {
  { "encode", "--model %s --texts %s/texts.json --out %s", { "safetensors", "npz" } },
  { "decompose", "--model %s --dir " .. images .. " --out %s", { "safetensors", "npz" } },
  { "classifier", "--model %s --classes x --templates y --out %s", { "safetensors" } },
  { "ablate", "--decomposition %s --classifier x --labels y --out %s", { "json" } },
  { "textspan", "--model %s --decomposition x --texts y --out %s", { "json" } },
  { "segment", "--model %s --classifier x --dir " .. images .. " --out %s", { "json" } },
  { "retrieve", "--decomposition %s --component 1.1 --query-image 1 --sheet " .. tmp .. "/s.png --out %s", { "json" } },
  { "retrieve", "--decomposition %s --component 1.1 --query-image 1 --sheet %s", { "png" }, "--sheet" },
}
for _, c in ipairs(commands) do
  local option = c[4] or "--out"
  local function args(out)
    local a = c[2]:gsub("%%s/texts.json", g .. "/texts.json")
    return c[1] .. " " .. string.format(a, missing, out)
  end
  T.refused(run(args(tmp .. "/out.bin")), option .. " " .. tmp .. "/out.bin: expected a ." .. c[3][1],
    c[1] .. ": wrong extension")
  T.refused(run(args(tmp .. "/nowhere/out." .. c[3][1])), "folder " .. tmp .. "/nowhere does not exist",
    c[1] .. ": missing folder")
  sh("mkdir -p " .. tmp .. "/isdir." .. c[3][1])
  T.refused(run(args(tmp .. "/isdir." .. c[3][1])), "is a folder", c[1] .. ": a folder")
end
sh("touch " .. tmp .. "/plainfile")
T.refused(run("demo --report " .. tmp .. "/plainfile"), "--report " .. tmp .. "/plainfile", "demo: --report is a file")
-- An output that is one of the command's inputs: the write replaced it once the run was
-- done (decompose --pixels e.safetensors --out e.safetensors lost the pixels).
local image = g .. "/images/00_exact_disc.png"
T.ok(run(string.format("encode --model %s/model --images %s --out %s/e.safetensors", g, image, tmp)).ok, "encode")
local pixels_sha = refract.sha256(tmp .. "/e.safetensors")
for _, form in ipairs({ "--pixels %s/e.safetensors:pixels --out %s/e.safetensors",
                        "--pixels=%s/e.safetensors:pixels --out=%s/./e.safetensors" }) do
  T.refused(run(string.format("decompose --model %s/model " .. form, g, tmp, tmp)),
    "is one of this command's inputs", "decompose over its own --pixels file: " .. form)
end
T.eq(refract.sha256(tmp .. "/e.safetensors"), pixels_sha, "the input is left as it was")
sh(string.format("cp -r %s/model %s/m2", g, tmp))
T.refused(run(string.format("encode --model %s/m2 --images %s --out %s/m2/open_clip_model.safetensors", tmp, image, tmp)),
  "m2/open_clip_model.safetensors: is one of this command's inputs", "encode over its model's weights")
T.ok(run(string.format("encode --model %s/m2 --images %s --out %s/m2/embeds.safetensors", tmp, image, tmp)).ok,
  "another file in the model folder is not an input")
T.ok(run(string.format("encode --model %s/m2 --images %s --out %s/m2/embeds.safetensors", tmp, image, tmp)).ok,
  "nor is the last run's output")

-- }=====

-- Positions in messages count from 1, as the lists a script passed: a bad second text
-- was "text 1", a bad token in row 2 "at [1, 2]".
T.fails(function() model:tokenize({ "fine", "bad \xff byte" }) end, "tokenize: text 2: text is not valid UTF-8")
local rows = model:tokenize({ "a", "b" }):totable()
rows[2][3] = 1000000000
T.fails(function() model:encode_texts(refract.tensor(rows, "i64")) end,
  "token id 1000000000 of text 2, position 3 (counting from 1) is outside the vocabulary")
-- Integer options past the integers: tonumber let 1e99 through and math.tointeger of it
-- read as "absent", so the default was used without a word (textspan --rank, segment
-- --batch), or a float chunk size was recorded (decompose --chunk-size).
local image1 = g .. "/images/00_exact_disc.png"
T.refused(run(string.format("decompose --model %s/model --images %s --chunks %s/c1e99 --chunk-size 1e99 --out %s/d.safetensors",
  g, image1, tmp, tmp)), "--chunk-size must be a positive integer", "decompose --chunk-size 1e99")
T.refused(run(string.format("decompose --model %s/model --images %s --batch 2.5 --out %s/d.safetensors", g, image1, tmp)),
  "--batch must be a positive integer", "decompose --batch 2.5")
T.refused(run(string.format("segment --model %s/model --classifier %s/textspan.safetensors:classifier --images %s --batch 1e99 --out %s/s.json",
  g, g, image1, tmp)), "--batch must be a positive integer", "segment --batch 1e99")
T.refused(run(string.format("classifier --model %s/model --classes %s/descriptions.txt --templates %s/descriptions.txt --batch 1e99 --out %s/k.safetensors",
  g, g, g, tmp)), "--batch must be a positive integer", "classifier --batch 1e99")
T.refused(run(string.format("textspan --model %s/model --decomposition %s/textspan.safetensors --texts %s/descriptions.txt --rank 1e99 --out %s/t.json",
  g, g, g, tmp)), "--rank must be a positive integer", "textspan --rank 1e99")
T.done()
