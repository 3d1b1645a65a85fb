-- refract retrieve on a small decomposition (the tiny-gelu golden's PNG images): the
-- query image ranks first with similarity 1, scores and order agree with cosines computed
-- here from the decomposition, text queries, the contact sheet's size and frames, the
-- JSON listing, and clear errors for bad component strings and invocations.
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

local files = {}
for _, e in ipairs(refract.json_read(g .. "/images/index.json")) do
  if e.file:match("%.png$") then files[#files + 1] = g .. "/images/" .. e.file end
end
local dec_path = tmp .. "/dec.safetensors"
local ok, text = run(string.format("decompose --model %s/model --images %s --out %s", g, table.concat(files, " "), dec_path))
T.ok(ok, "decompose runs: " .. text)
local dec = refract.read(dec_path)

-- cosines of the centred contributions of head 3.2, computed here
local function cosines(vectors, q)
  local rows = vectors:totable()
  local mean = {}
  for d = 1, #rows[1] do
    local s = 0
    for i = 1, #rows do s = s + rows[i][d] end
    mean[d] = s / #rows
  end
  local function centred(v) local c = {} for d = 1, #v do c[d] = v[d] - mean[d] end return c end
  local function dot(a, b) local s = 0 for d = 1, #a do s = s + a[d] * b[d] end return s end
  local query = q or centred(rows[1])
  local out = {}
  for i = 1, #rows do
    local c = centred(rows[i])
    out[i] = dot(c, query) / math.sqrt(dot(c, c) * dot(query, query))
  end
  return out
end

local sheet, json = tmp .. "/sheet.png", tmp .. "/r.json"
ok, text = run(string.format("retrieve --decomposition %s --component 3.2 --query-image 1 --k 4 --size 32 --sheet %s --out %s",
  dec_path, sheet, json))
T.ok(ok, "retrieve runs: " .. text)
T.matches(text, "head 3%.2")
local too_big_ok, too_big = run(string.format("retrieve --decomposition %s --component 3.2 --query-image 1 --size 99999 --sheet %s/big.png",
  dec_path, tmp))
T.ok(not too_big_ok and too_big:find("--size must be at most 8192 pixels", 1, true), "--size past the limit is named: " .. too_big)
local r = refract.json_read(json)
T.eq(#r.neighbours, 4, "k neighbours")
T.eq(r.neighbours[1].image, 1, "the query image ranks first")
T.near(r.neighbours[1].score, 1, 1e-5, "with similarity 1")
T.eq(r.neighbours[1].file, files[1])
T.eq(r.query.image, 1)
T.eq(r.centred, true)
local want = cosines(dec.attn_heads:select(2, 3):select(2, 2))
local order = {}
for i = 1, #want do order[i] = i end
table.sort(order, function(a, b) return want[a] > want[b] end)
for rank, n in ipairs(r.neighbours) do
  T.eq(n.image, order[rank], "rank " .. rank)
  T.near(n.score, want[n.image], 1e-5, "score at rank " .. rank)
  T.eq(n.rank, rank)
end
T.ok(r.provenance.inputs[1].sha256 ~= nil, "provenance of the decomposition")
-- the sheet: 4 cells of 32 + 2 * 4 frame, 6 apart; the query's frame is orange
local img = refract.image_load(sheet)
T.eq(img:shape(), { 6 + 32 + 8 + 2 + 8 + 6, 4 * (40 + 6) + 6, 3 }, "sheet size")
T.eq(img[7][7]:totable(), { 255, 140, 0 }, "the query image is framed in orange")
T.eq(img[7][7 + 46]:totable(), { 140, 140, 140 }, "the others in gray")

-- by path, and the whole representation
ok, text = run(string.format("retrieve --decomposition %s --component all --query-image %s --sheet %s --out %s",
  dec_path, files[3]:match("[^/]+$"), sheet, json))
T.ok(ok, "query by file name: " .. text)
r = refract.json_read(json)
T.eq(r.neighbours[1].image, 3, "the named image first")
T.eq(#r.neighbours, 7, "k is capped at the number of images")
ok, text = run(string.format("retrieve --decomposition %s --component mlp.0 --query-image 2 --sheet %s", dec_path, sheet))
T.ok(ok, "the embedding term: " .. text)
T.matches(text, "the embedding term")

-- a text query: the text's embedding against the centred head contributions
ok, text = run(string.format("retrieve --decomposition %s --component 2.* --query-text 'a red circle' --model %s/model --k 7 --sheet %s --out %s",
  dec_path, g, sheet, json))
T.ok(ok, "text query: " .. text)
r = refract.json_read(json)
T.eq(r.query.text, "a red circle")
local model <close> = refract.load(g .. "/model")
local t = model:encode_texts({ "a red circle" })[1]:totable()
local layer = cosines(dec.attn_heads:select(2, 2):sum(2), t)
for rank = 2, #r.neighbours do
  T.ok(r.neighbours[rank].score <= r.neighbours[rank - 1].score, "descending")
end
for _, n in ipairs(r.neighbours) do T.near(n.score, layer[n.image], 1e-5, "text score") end

-- bad components and invocations
ok = run(string.format("decompose --model %s/model --pixels %s/reference.safetensors:pixels --out %s/nopaths.safetensors", g, g, tmp))
T.ok(ok, "decompose from pixels")
local base = string.format("retrieve --decomposition %s --sheet %s", dec_path, sheet)
for _, case in ipairs({
  { base .. " --component 4.1 --query-image 1", "bad component \"4.1\": the layer must be an integer in 1..3" },
  { base .. " --component 0.1 --query-image 1", "the layer must be an integer in 1..3" },
  { base .. " --component 1.5 --query-image 1", "the head must be an integer in 1..4" },
  { base .. " --component mlp.4 --query-image 1", "the MLP layer must be an integer in 0..3" },
  { base .. " --component head3 --query-image 1", "expected LAYER.HEAD, LAYER.*, mlp.LAYER or all" },
  { base .. " --component 1.2.3 --query-image 1", "expected LAYER.HEAD" },
  { base .. " --component 1.1 --query-image 9", "the decomposition has images 1..7" },
  { base .. " --component 1.1 --query-image nope.png", "no such image" },
  { base .. " --component 1.1", "exactly one of --query-image or --query-text" },
  { base .. " --component 1.1 --query-text cat", "--query-text needs --model" },
  { base .. " --component 1.1 --query-image 1 --k 0", "--k must be a positive integer" },
  { string.format("retrieve --decomposition %s --sheet %s/s.jpg --component 1.1 --query-image 1", dec_path, tmp), "expected a .png file" },
  { string.format("retrieve --decomposition %s/nopaths.safetensors --sheet %s --component 1.1 --query-image 1", tmp, sheet),
    "does not record its images' paths" },
}) do
  local failed_ok, out = run(case[1])
  T.ok(not failed_ok, "fails: " .. case[1])
  T.matches(out, case[2]:gsub("[%-%.%[%]%(%)%*]", "%%%0"), case[1])
end

-- images replaced after the decomposition: the sheet names the file and what is wrong with
-- it. A FIFO there made io.open wait for a writer forever (`timeout` ends such a hang).
local copies = tmp .. "/copies"
os.execute(string.format("mkdir -p '%s' && cp %s '%s'", copies, table.concat(files, " ", 1, 3), copies))
local copied_dec = tmp .. "/copies.safetensors"
ok, text = run(string.format("decompose --model %s/model --dir %s --out %s", g, copies, copied_dec))
T.ok(ok, "decompose --dir: " .. text)
local victim = copies .. "/" .. files[2]:match("[^/]+$")
for _, case in ipairs({
  { "rm -f '%s' && mkfifo '%s'", "is a FIFO, a device or a socket" },
  { "rm -f '%s' && mkdir '%s'", "is a folder" },
  { "rm -rf '%s' && ln -s /dev/zero '%s'", "is a FIFO, a device or a socket" },
  { "rm -rf '%s' && ln -s '%s.gone' '%s'", "no such file" },
  { "rm -rf '%s' && head -c 100 '" .. files[2] .. "' > '%s'", "truncated PNG" },
}) do
  os.execute(string.format(case[1], victim, victim, victim))
  local cmd = string.format("timeout 60 '%s' retrieve --decomposition %s --component all --query-image 1 --sheet %s/c.png > '%s/out.txt' 2>&1",
    exe, copied_dec, tmp, tmp)
  local failed_ok, how, code = os.execute(cmd)
  local out = refract.read_file(tmp .. "/out.txt")
  T.ok(code ~= 124, "ends without waiting: " .. case[2])
  T.ok(not failed_ok, "fails: " .. case[2] .. ": " .. out)
  T.matches(out, victim:gsub("[%-%.%[%]%(%)%*]", "%%%0") .. ": " .. case[2]:gsub("[%-%.%[%]%(%)%*]", "%%%0"), case[2])
  T.ok(not out:find("stack traceback", 1, true), "a message, not a traceback: " .. out)
  os.execute(string.format("rm -rf '%s'", victim))
end

os.execute("rm -rf '" .. tmp .. "'")
T.done()
