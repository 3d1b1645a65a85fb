-- The encode and decompose commands reproduce the tiny-gelu golden from the command line:
-- pixels bit-exact for every image (PNG and JPEG), embeddings and every decomposition tensor within the
-- golden README's tolerances, dataset means, and clear errors for bad invocations.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local exe = refract.executable()
local tmp = T.tmp()

-- refract with `args`: whether it succeeded, and its stdout and stderr together.
local function run(args)
  local r = T.run(string.format("'%s' %s", exe, args))
  return r.ok, r.out .. r.err
end

local function max_diff(a, b)
  T.eq(a:shape(), b:shape(), "shape")
  return (a:float() - b:float()):abs():max():item()
end

local ref = refract.read(g .. "/reference.safetensors")
local index = refract.json_read(g .. "/images/index.json")
local files = {}
for _, e in ipairs(index) do files[#files + 1] = g .. "/images/" .. e.file end

-- encode: every image (the PNGs and the JPEG), the texts
local ok, text = run(string.format("encode --model %s/model --images %s --texts %s/texts.json --out %s/enc.safetensors",
  g, table.concat(files, " "), g, tmp))
T.ok(ok, "encode runs: " .. text)
local enc = refract.read(tmp .. "/enc.safetensors")
T.eq(max_diff(enc.pixels, ref.pixels), 0, "pixels bit-exact for every image, JPEG included")
T.ok(max_diff(enc.image_embeds, ref.image_embeds) <= 2e-5, "image_embeds")
T.eq(enc.text_tokens:totable(), ref.text_tokens:totable(), "text_tokens")
T.ok(max_diff(enc.text_embeds, ref.text_embeds) <= 5e-5, "text_embeds")

-- decompose: the golden's preprocessed pixels, every tensor of item 3
ok, text = run(string.format("decompose --model %s/model --pixels %s/reference.safetensors:pixels --spatial --out %s/dec.safetensors",
  g, g, tmp))
T.ok(ok, "decompose runs: " .. text)
local dec = refract.read(tmp .. "/dec.safetensors")
for name, tol in pairs({ attn_spatial = 1e-6, attn_heads = 1e-6, mlps = 5e-6, ln_post_mean = 2e-6,
                         ln_post_std = 2e-6, image_embeds = 2e-5 }) do
  local d = max_diff(dec[name], ref[name])
  print(string.format("cli %-14s max |diff| %.3e (tolerance %g)", name, d, tol))
  T.ok(d <= tol, name)
end
-- the sum identity through the files
local e = dec.image_embeds
local total = dec.attn_spatial:sum({ 2, 3, 4 }) + dec.mlps:sum(2)
T.ok(max_diff(total, e / e:norm(2, true)) <= 1e-5, "sum identity")

-- exact centring keeps the identity
ok = run(string.format("decompose --model %s/model --pixels %s/reference.safetensors:pixels --spatial --centering exact --out %s/exact.safetensors",
  g, g, tmp))
T.ok(ok, "decompose --centering exact runs")
local ex = refract.read(tmp .. "/exact.safetensors")
T.ok(max_diff(ex.attn_spatial:sum({ 2, 3, 4 }) + ex.mlps:sum(2), e / e:norm(2, true)) <= 1e-5, "exact identity")

-- dataset components and means of item 4
local ts = refract.read(g .. "/textspan.safetensors")
ok, text = run(string.format("decompose --model %s/model --pixels %s/textspan.safetensors:dataset_pixels --batch 16 --out %s/ds.safetensors",
  g, g, tmp))
T.ok(ok, "dataset decompose runs: " .. text)
local ds = refract.read(tmp .. "/ds.safetensors")
T.ok(max_diff(ds.attn_heads, ts.dataset_attn_heads) <= 1e-6, "dataset_attn_heads")
T.ok(max_diff(ds.mlps, ts.dataset_mlps) <= 5e-6, "dataset_mlps")
T.ok(max_diff(ds.cls_attn, ts.dataset_cls_attn) <= 1e-6, "dataset_cls_attn")
T.ok(max_diff(ds.mean_attn_heads, ts.dataset_attn_heads:mean(1)) <= 1e-6, "mean_attn_heads")
ok = run(string.format("decompose --model %s/model --pixels %s/textspan.safetensors:dataset_pixels --mean-only --out %s/means.safetensors",
  g, g, tmp))
local means = refract.read(tmp .. "/means.safetensors")
T.eq(means.attn_heads, nil, "--mean-only writes no per-image tensors")
T.eq(means.count:item(), 96)
T.ok(max_diff(means.mean_mlps, ts.dataset_mlps:mean(1)) <= 5e-6, "mean_mlps")
T.ok(max_diff(means.mean_cls_attn, ts.dataset_cls_attn:mean(1)) <= 1e-6, "mean_cls_attn")

-- reductions and a projection from the command line: the per-patch class map
refract.write(tmp .. "/classifier.safetensors", { classifier = ts.classifier })
ok, text = run(string.format("decompose --model %s/model --pixels %s/reference.safetensors:pixels --spatial --reduce layers,heads --project %s/classifier.safetensors:classifier --out %s/map.safetensors",
  g, g, tmp, tmp))
T.ok(ok, "projected decompose runs: " .. text)
local map = refract.read(tmp .. "/map.safetensors").attn_spatial
T.eq(map:shape(), { 8, 17, 6 })
local direct = dec.attn_spatial:sum({ 2, 4 }):matmul(ts.classifier)
T.ok(max_diff(map, direct) <= 1e-6, "per-patch class map equals the projected full decomposition")

-- bad invocations: a message on stderr and exit status 1, never a crash
local bad = {
  { "decompose --model " .. g .. "/model --out x.safetensors", "give exactly one of" },
  { "decompose --model " .. g .. "/model --pixels nope.npy --out x.safetensors", "nope.npy" },
  { "decompose --model /nonexistent --images a.png --out x.safetensors", "not a model directory" },
  { "decompose --model " .. g .. "/model --images " .. g .. "/texts.json --out x.safetensors", "texts.json" },
  { "decompose --model " .. g .. "/model --pixels " .. g .. "/reference.safetensors:pixels --centering odd --out " .. tmp .. "/x.safetensors", "--centering" },
  { "decompose --model " .. g .. "/model --pixels " .. g .. "/reference.safetensors:pixels --reduce rows --out " .. tmp .. "/x.safetensors", "unknown reduce axis" },
  { "encode --model " .. g .. "/model --texts " .. g .. "/images/00_exact_disc.png --out " .. tmp .. "/x.safetensors", "holds a NUL byte" },
  { "encode --model " .. g .. "/model --out " .. tmp .. "/x.safetensors", "nothing to encode" },
  { "encode --bogus", "unknown option --bogus" },
}
for _, case in ipairs(bad) do
  local r = T.run(string.format("'%s' %s", exe, case[1]))
  T.refused(r, case[2], case[1])
  T.matches(r.err, "^refract: ", "the message comes first: " .. case[1])
end

T.done()
