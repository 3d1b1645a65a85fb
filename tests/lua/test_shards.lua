-- Shared chunk folders: 1, 2, 3 and 7 shards (one after another and all at once), a run
-- that fills in what shards left, and --devices workers all give the chunk files of one
-- uninterrupted run and merge into the same bytes; a plain run's folder lock; chunk
-- locks of live processes respected and of dead ones taken over; corrupt, missing,
-- duplicated and foreign chunks named; --on-error skip; links planted at OUT.tmp.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local exe = refract.executable()
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_all(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs `refract ARGS` in the shell; returns success and what it printed.
local function run(args)
  local ok = os.execute(string.format("%s %s > %s/log 2>&1", quote(exe), args, quote(tmp)))
  return ok, read_all(tmp .. "/log") or ""
end

-- Starts `refract ARGS` in the background (output to a log file); returns its pid.
local started = 0
local function start(args)
  started = started + 1
  return refract.spawn({ "/bin/sh", "-c", string.format("exec %s %s > %s/bg-%d.log 2>&1", quote(exe),
    args, quote(tmp), started) })
end

local function wait_ok(pid, what)
  local how, code = refract.wait(pid)
  T.ok(how == "exit" and code == 0, what .. string.format(" (%s %s)", how, code))
end

-- 15 images (the goldens' images over and over): 8 chunks of 2, the last of 1.
os.execute(string.format("cp %s/images/*.png %s/images/*.jpg %s", g, g, quote(tmp)))
local images = { "00_exact_disc.png", "01_large_pentagon.png", "02_wide_triangle.png",
                 "04_small_square.png", "05_gray_checker.png", "06_rgba_diamond.png", "07_noise_star.jpg" }
local lines = {}
for i = 1, 15 do lines[i] = images[(i - 1) % #images + 1] end
write_all(tmp .. "/list.txt", table.concat(lines, "\n") .. "\n")
local CHUNKS = 8

local base = string.format("decompose --model %s/model --list %s/list.txt --spatial --chunk-size 2 --batch 2", g, tmp)
local function chunked(dir, extra)
  return string.format("%s --chunks %s/%s %s", base, tmp, dir, extra or "")
end

local function chunk_files(dir)
  local list = {}
  for _, name in ipairs(refract.listdir(tmp .. "/" .. dir)) do
    if name:match("^part%-%d+%.safetensors$") or name:match("^part%-%d+%.sha256$") then list[#list + 1] = name end
  end
  return list
end

-- The reference: one uninterrupted plain run, its full merge, and a run without chunks.
local ok, out = run(chunked("ref", "--out " .. tmp .. "/ref.safetensors"))
T.ok(ok, "the reference run: " .. out)
local ref_files = chunk_files("ref")
T.eq(#ref_files, 2 * CHUNKS, "8 chunks and their checksum files")
T.ok(run(string.format("merge --chunks %s/ref --out %s/ref-full.safetensors", tmp, tmp)), "full merge of the reference")
T.ok(run(string.format("merge --chunks %s/ref --out %s/ref-mean.safetensors --mean-only", tmp, tmp)), "mean-only merge")
T.ok(read_all(tmp .. "/ref-mean.safetensors") == read_all(tmp .. "/ref.safetensors"),
  "merge --mean-only gives the bytes of the run's --out")
T.ok(run(string.format("%s --out %s/plain.safetensors", base, tmp)), "a run without --chunks")
do
  local full, plain = refract.read(tmp .. "/ref-full.safetensors"), refract.read(tmp .. "/plain.safetensors")
  for _, name in ipairs({ "attn_spatial", "attn_heads", "mlps", "cls_attn", "ln_post_mean", "ln_post_std", "image_embeds" }) do
    T.eq(full[name]:shape(), plain[name]:shape(), name .. " shape")
    T.eq((full[name] - plain[name]):abs():max():item(), 0, name .. ": the merged per-image values are those of a run without chunks")
  end
  T.eq(full.count:item(), 15, "count")
  T.eq(refract.metadata(tmp .. "/ref-full.safetensors").paths, refract.metadata(tmp .. "/plain.safetensors").paths, "paths")
end

-- A folder made by shards must hold the reference's files and merge to its bytes.
local function same_as_reference(dir, what)
  T.eq(chunk_files(dir), ref_files, what .. ": the same chunk files")
  for _, name in ipairs(ref_files) do
    T.ok(read_all(tmp .. "/ref/" .. name) == read_all(tmp .. "/" .. dir .. "/" .. name), what .. ": " .. name .. " identical")
  end
  local merged, msg = run(string.format("merge --chunks %s/%s --out %s/%s-full.safetensors", tmp, dir, tmp, dir))
  T.ok(merged, what .. ": merge: " .. msg)
  T.ok(read_all(tmp .. "/" .. dir .. "-full.safetensors") == read_all(tmp .. "/ref-full.safetensors"), what .. ": full merge identical")
  merged = run(string.format("merge --chunks %s/%s --out %s/%s-mean.safetensors --mean-only", tmp, dir, tmp, dir))
  T.ok(merged and read_all(tmp .. "/" .. dir .. "-mean.safetensors") == read_all(tmp .. "/ref.safetensors"),
    what .. ": means identical to the plain run's --out")
end

for _, n in ipairs({ 1, 2, 3, 7 }) do
  -- One after another: each shard makes exactly its chunks, k ≡ K (mod N).
  local dir = "seq" .. n
  for k = 1, n do
    T.ok(run(chunked(dir, string.format("--shard %d/%d", k, n))), string.format("shard %d/%d", k, n))
    for c = 1, CHUNKS do
      local want = (c - 1) % n + 1 <= k
      T.eq(read_all(string.format("%s/%s/part-%06d.sha256", tmp, dir, c)) ~= nil, want,
        string.format("after shard %d/%d, chunk %d is %s", k, n, c, want and "there" or "not there yet"))
    end
  end
  same_as_reference(dir, n .. " shards in sequence")
  if n > 1 then
    dir = "par" .. n
    local pids = {}
    for k = 1, n do pids[k] = start(chunked(dir, string.format("--shard %d/%d", k, n))) end
    for k = 1, n do wait_ok(pids[k], string.format("concurrent shard %d/%d", k, n)) end
    same_as_reference(dir, n .. " shards at once")
  end
end

-- A run without --shard fills in what shard 1 of 3 left.
T.ok(run(chunked("fill", "--shard 1/3")), "shard 1/3 alone")
ok, out = run(chunked("fill", "--out " .. tmp .. "/fill.safetensors"))
T.ok(ok, "a plain run finishes the folder: " .. out)
T.ok(read_all(tmp .. "/fill.safetensors") == read_all(tmp .. "/ref.safetensors"), "its means are the reference's")
same_as_reference("fill", "shard + plain run")

-- --devices: one worker per listed device (the same device twice: two workers).
for _, devices in ipairs({ "0", "0,0", "all" }) do
  local dir = "dev" .. devices:gsub(",", "_")
  ok, out = run(chunked(dir, "--devices " .. devices .. " --out " .. tmp .. "/" .. dir .. ".safetensors"))
  T.ok(ok, "--devices " .. devices .. ": " .. out)
  T.ok(read_all(tmp .. "/" .. dir .. ".safetensors") == read_all(tmp .. "/ref.safetensors"), "--devices " .. devices .. ": means identical")
  same_as_reference(dir, "--devices " .. devices)
end
T.ok(not run(chunked("devbad", "--devices 99 --out " .. tmp .. "/x.safetensors")), "a device that does not exist")
T.matches(select(2, run(chunked("devbad", "--devices 99 --out " .. tmp .. "/x.safetensors"))), "not a device index", "its message")

-- Bad invocations.
for _, case in ipairs({
  { chunked("bad", "--shard 0/3"), "1 <= K <= N" }, { chunked("bad", "--shard 4/3"), "1 <= K <= N" },
  { chunked("bad", "--shard 2"), "K/N" }, { base .. " --shard 1/2 --out x.safetensors", "--shard needs --chunks" },
  { chunked("bad", "--shard 1/2 --out " .. tmp .. "/x.safetensors"), "a shard writes no --out" },
  { chunked("bad", "--shard 1/2 --devices 0"), "not both" }, { chunked("bad", ""), "--out FILE is required" },
  { chunked("bad", "--on-error ignore --out x.safetensors"), "abort or skip" },
  { "merge --chunks " .. tmp .. "/ref", "--out FILE is required" },
  { "merge --out " .. tmp .. "/x.safetensors", "--chunks DIR is required" },
  { "merge --chunks " .. tmp .. " --out " .. tmp .. "/x.safetensors", "run.json is missing" },
}) do
  local failed_ok, msg = run(case[1])
  T.ok(not failed_ok, "refused: " .. case[1])
  T.ok(msg:find(case[2], 1, true) ~= nil, case[2] .. " in: " .. msg)
end

-- Runs on one folder must agree on what changes a chunk's bytes.
ok, out = run(string.format("decompose --model %s/model --list %s/list.txt --spatial --chunk-size 2 --batch 1 --chunks %s/seq1 --shard 1/2",
  g, tmp, tmp))
T.ok(not ok and out:find("batch = 2, not 1", 1, true) and out:find("--batch 2", 1, true), "another batch size is refused: " .. out)
ok, out = run(chunked("seq1", "--centering exact --shard 1/2"))
T.ok(not ok and out:find("centering = reference, not exact", 1, true), "other options are refused: " .. out)

-- A process that holds a lock until killed (it prints READY when it has it).
local function hold(path)
  local pid = refract.spawn({ exe, "-e", string.format(
    "local l = assert(require('refract').lock(%q)); io.open(%q, 'w'):close(); require('refract').sleep(600)",
    path, path .. ".ready") })
  for _ = 1, 1000 do
    if read_all(path .. ".ready") then break end
    refract.sleep(0.02)
  end
  os.remove(path .. ".ready")
  return pid
end

-- The folder lock: a second plain run fails at once, naming the holder; shards go on.
os.execute(string.format("mkdir -p %s/busy", quote(tmp)))
local holder = hold(tmp .. "/busy/run.lock")
local t0 = refract.clock()
ok, out = run(chunked("busy", "--out " .. tmp .. "/busy.safetensors"))
T.ok(not ok, "a second plain run on a folder in use fails")
T.ok(out:find("is in use by another run", 1, true) and out:find("held by pid " .. holder, 1, true), "its message names the holder: " .. out)
T.ok(refract.clock() - t0 < 10, "at once")
T.ok(run(chunked("busy", "--shard 1/2")), "a shard still runs on a folder a plain run holds")
refract.kill(holder, "KILL")
refract.wait(holder)
ok, out = run(chunked("busy", "--out " .. tmp .. "/busy.safetensors"))
T.ok(ok, "once its holder is dead (kill -9), a plain run takes the folder over: " .. out)
same_as_reference("busy", "after a dead run lock")
T.ok(read_all(tmp .. "/busy/run.lock") == nil, "the run lock is released at the end")

-- Chunk locks: a live holder's chunk is left alone (and waited for); once it is killed
-- the chunk is taken over. A stale lock from the start costs nothing.
os.execute(string.format("mkdir -p %s/locks", quote(tmp)))
local dead = hold(tmp .. "/locks/part-000002.lock")
refract.kill(dead, "KILL")
refract.wait(dead)
T.ok(read_all(tmp .. "/locks/part-000002.lock") ~= nil, "a dead process's chunk lock is left behind")
holder = hold(tmp .. "/locks/part-000005.lock")
local runner = start(chunked("locks", "--out " .. tmp .. "/locks.safetensors"))
local others_done = false
for _ = 1, 3000 do
  local n = 0
  for c = 1, CHUNKS do if c ~= 5 and read_all(string.format("%s/locks/part-%06d.sha256", tmp, c)) then n = n + 1 end end
  if n == CHUNKS - 1 then others_done = true break end
  refract.sleep(0.05)
end
T.ok(others_done, "the run makes every chunk nobody else holds, chunk 2's stale lock included")
refract.sleep(1.5)
T.ok(read_all(tmp .. "/locks/part-000005.safetensors") == nil, "chunk 5, locked by a live process, is left alone")
T.eq({ refract.wait(runner, 0) }, {}, "the run waits for it")
refract.kill(holder, "KILL")
refract.wait(holder)
wait_ok(runner, "once its holder is killed, the run takes chunk 5 over and ends")
T.ok(read_all(tmp .. "/locks.safetensors") == read_all(tmp .. "/ref.safetensors"), "and its means are the reference's")
same_as_reference("locks", "after chunk locks")

-- What runs killed at any point leave (temporary files, stale locks and their private
-- files) is cleared by the next run, which ends with the reference's folder.
os.execute(string.format("cp -r %s/ref %s/litter", quote(tmp), quote(tmp)))
local dead_line = "pid=1 host=elsewhere-node boot=x start=1 token=0123\n"
for name, content in pairs({
  ["run.json.tmp"] = "{ half", ["run.json.0123456789abcdef.tmp"] = "{", ["run.lock"] = dead_line,
  ["part-000002.safetensors.tmp"] = "half a chunk", ["part-000003.sha256.tmp"] = "ab",
  ["part-000005.lock"] = dead_line, ["part-000006.lock.0123.new"] = dead_line,
  ["part-000006.lock.4567.stale"] = dead_line,
}) do
  write_all(tmp .. "/litter/" .. name, content)
  os.execute(string.format("touch -d '-2 hours' %s/litter/%s", quote(tmp), name))
end
os.remove(tmp .. "/litter/run.json")
os.remove(tmp .. "/litter/part-000002.sha256")
os.remove(tmp .. "/litter/part-000003.sha256")
ok, out = run(chunked("litter", "--out " .. tmp .. "/litter.safetensors"))
T.ok(ok, "a run over a killed run's leftovers: " .. out)
T.eq(refract.listdir(tmp .. "/litter"), refract.listdir(tmp .. "/ref"), "they are all cleared")
same_as_reference("litter", "after leftovers")

-- A flipped byte: merge refuses and names the chunk; a run reports it and makes it again.
os.execute(string.format("cp -r %s/ref %s/flip", quote(tmp), quote(tmp)))
local victim = tmp .. "/flip/part-000004.safetensors"
local bytes = read_all(victim)
local at = #bytes - 100
write_all(victim, bytes:sub(1, at - 1) .. string.char((bytes:byte(at) + 1) % 256) .. bytes:sub(at + 1))
ok, out = run(string.format("merge --chunks %s/flip --out %s/x.safetensors", tmp, tmp))
T.ok(not ok and out:find(victim .. " fails its checksum", 1, true), "merge names the corrupt chunk: " .. out)
-- Reading the folder as a decomposition (ablate, retrieve, textspan) checks it as merge does:
-- the flipped byte was read without a word.
local data = require("refract.data")
T.fails(function() data.read_decomposition(tmp .. "/flip") end, victim .. " fails its checksum")
T.eq(data.read_decomposition(tmp .. "/ref").count, 15, "the whole folder reads")
-- An --out inside the chunks folder replaced a finished chunk.
local before = read_all(tmp .. "/ref/part-000001.safetensors")
ok, out = run(string.format("merge --chunks %s/ref --out %s/ref/part-000001.safetensors", tmp, tmp))
T.ok(not ok and out:find("would replace a file of the chunks folder", 1, true), "merge --out onto a chunk: " .. out)
ok, out = run(chunked("ref", "--out " .. tmp .. "/ref/part-000002.safetensors"))
T.ok(not ok and out:find("would replace a file of the chunks folder", 1, true), "decompose --out onto a chunk: " .. out)
T.eq(read_all(tmp .. "/ref/part-000001.safetensors"), before, "the chunk is untouched")
ok, out = run(chunked("flip", "--out " .. tmp .. "/flip.safetensors"))
T.ok(ok and out:find(victim .. " fails its checksum", 1, true) and out:find("computed again", 1, true), "a run reports it: " .. out)
same_as_reference("flip", "after a flipped byte")

-- Missing, unfinished, duplicated and foreign chunks are refused by name.
os.execute(string.format("cp -r %s/ref %s/holes", quote(tmp), quote(tmp)))
os.remove(tmp .. "/holes/part-000003.safetensors")
os.remove(tmp .. "/holes/part-000003.sha256")
os.remove(tmp .. "/holes/part-000006.sha256")
os.execute(string.format("cp %s/holes/part-000002.safetensors '%s/holes/part-000002 (copy).safetensors'", quote(tmp), tmp))
T.ok(run(string.format("decompose --model %s/model --list %s/list.txt --spatial --centering exact --chunk-size 2 --batch 2 --chunks %s/exact --out %s/exact.safetensors",
  g, tmp, tmp, tmp)), "a run with other options")
os.execute(string.format("cp %s/exact/part-000007.safetensors %s/exact/part-000007.sha256 %s/holes/", quote(tmp), quote(tmp), quote(tmp)))
ok, out = run(string.format("merge --chunks %s/holes --out %s/x.safetensors", tmp, tmp))
T.ok(not ok, "merge refuses the folder")
T.ok(out:find("missing chunks (of 8): 3", 1, true), "names the missing chunk: " .. out)
T.ok(out:find("without their checksum file", 1, true) and out:find(": 6", 1, true), "names the unfinished chunk")
T.ok(out:find("part-000002 (copy).safetensors", 1, true), "names the duplicate")
T.ok(out:find("from another run: " .. tmp .. "/holes/part-000007.safetensors (centering = exact", 1, true), "names the foreign chunk")
T.ok(read_all(tmp .. "/x.safetensors") == nil, "and writes nothing")

-- --on-error: a truncated image stops a run with its path, or is skipped and recorded.
write_all(tmp .. "/broken.png", read_all(tmp .. "/00_exact_disc.png"):sub(1, 300))
local skip_lines = {}
for i = 1, 6 do skip_lines[i] = lines[i] end
table.insert(skip_lines, 4, "broken.png")
write_all(tmp .. "/skip.txt", table.concat(skip_lines, "\n") .. "\n")
local skip_base = string.format("decompose --model %s/model --list %s/skip.txt --chunk-size 2 --batch 2", g, tmp)
ok, out = run(skip_base .. " --chunks " .. tmp .. "/abort --out " .. tmp .. "/abort.safetensors")
T.ok(not ok and out:find(tmp .. "/broken.png", 1, true) and out:find("--on-error skip", 1, true), "a bad image is named: " .. out)
for round = 1, 2 do
  ok, out = run(skip_base .. " --on-error skip --chunks " .. tmp .. "/skip --out " .. tmp .. "/skip" .. round .. ".safetensors")
  T.ok(ok and (round == 2 or out:find("skipping " .. tmp .. "/broken.png", 1, true)), "--on-error skip, run " .. round .. ": " .. out)
end
T.ok(read_all(tmp .. "/skip1.safetensors") == read_all(tmp .. "/skip2.safetensors"), "resuming a run with a skipped image changes nothing")
T.ok(run(string.format("merge --chunks %s/skip --out %s/skip-full.safetensors", tmp, tmp)), "merging it")
ok = run(skip_base .. " --on-error skip --out " .. tmp .. "/skip-plain.safetensors")
T.ok(ok, "--on-error skip without chunks")
for _, file in ipairs({ "skip1", "skip-full", "skip-plain" }) do
  local md = refract.metadata(tmp .. "/" .. file .. ".safetensors")
  local skipped = refract.json_decode(md.skipped or "[]")
  T.eq(#skipped, 1, file .. ": one image skipped")
  T.eq(skipped[1] and skipped[1][1], tmp .. "/broken.png", file .. ": its path")
  T.ok(skipped[1] and skipped[1][2]:find("truncated", 1, true), file .. ": and why")
  T.eq(refract.read(tmp .. "/" .. file .. ".safetensors", "count"):item(), 6, file .. ": count of the images kept")
end
do
  local full, plain = refract.read(tmp .. "/skip-full.safetensors"), refract.read(tmp .. "/skip-plain.safetensors")
  T.eq(full.image_embeds:shape(), { 6, full.image_embeds:shape(2) }, "six rows")
  T.ok((full.image_embeds - plain.image_embeds):abs():max():item() < 1e-5, "the same rows as without chunks")
  local md = refract.metadata(tmp .. "/skip-full.safetensors")
  T.eq(#refract.json_decode(md.paths), 6, "the paths of the rows")
end

-- Links planted at the temporary names redirect nothing.
write_all(tmp .. "/victim", "keep me")
os.execute(string.format("ln -s %s/victim %s/linked.safetensors.tmp", quote(tmp), quote(tmp)))
os.execute(string.format("mkdir -p %s/planted && ln -s %s/victim %s/planted/part-000001.safetensors.tmp", quote(tmp), quote(tmp), quote(tmp)))
ok, out = run(chunked("planted", "--out " .. tmp .. "/linked.safetensors"))
T.ok(ok, "runs with links planted at OUT.tmp and a chunk's .tmp: " .. out)
T.eq(read_all(tmp .. "/victim"), "keep me", "the file the links name is untouched")
T.ok(read_all(tmp .. "/linked.safetensors") == read_all(tmp .. "/ref.safetensors"), "the output is whole and right")
T.ok(read_all(tmp .. "/planted/part-000001.safetensors") == read_all(tmp .. "/ref/part-000001.safetensors"), "and chunk 1")
os.execute(string.format("ln -s %s/victim %s/ref.npz.tmp", quote(tmp), quote(tmp)))
ok, out = run(string.format("merge --chunks %s/ref --out %s/ref.npz", tmp, tmp))
T.ok(ok, "merge into .npz with a link planted at its .tmp: " .. out)
T.eq(read_all(tmp .. "/victim"), "keep me", "the file the link names is untouched")
do
  local npz, st = refract.read(tmp .. "/ref.npz"), refract.read(tmp .. "/ref-full.safetensors")
  for name, t in pairs(st) do
    T.ok(npz[name] ~= nil and (t:dtype() == "i64" and t:item() == npz[name]:item() or
      (t - npz[name]):abs():max():item() == 0), name .. " in the .npz")
  end
end

-- A --mean-only folder merges only with --mean-only.
T.ok(run(chunked("meanonly", "--mean-only --out " .. tmp .. "/meanonly.safetensors")), "a --mean-only chunked run")
ok, out = run(string.format("merge --chunks %s/meanonly --out %s/x.safetensors", tmp, tmp))
T.ok(not ok and out:find("made with --mean-only", 1, true), "its full merge is refused: " .. out)
ok = run(string.format("merge --chunks %s/meanonly --out %s/meanonly-merged.safetensors --mean-only", tmp, tmp))
T.ok(ok and read_all(tmp .. "/meanonly-merged.safetensors") == read_all(tmp .. "/meanonly.safetensors"), "merge --mean-only gives its --out")

-- Model or projection files replaced while they load: run.json would say the chunks were
-- made with the new files, though they were made with the old ones. The fingerprint taken
-- before loading must still hold when the record is made.
do
  local chunks = require("refract.chunks")
  os.execute(string.format("cp -r %s/model %s/swap && printf x > %s/proj.bin", quote(g), quote(tmp), quote(tmp)))
  local before = chunks.fingerprint(tmp .. "/swap", tmp .. "/proj.bin")
  T.eq(chunks.record({}, {}, tmp .. "/swap", tmp .. "/proj.bin", before).model_sha256, before.model_sha256,
    "an unchanged model is recorded")
  write_all(tmp .. "/proj.bin", "y")
  T.fails(function() chunks.record({}, {}, tmp .. "/swap", tmp .. "/proj.bin", before) end,
    tmp .. "/proj.bin changed while it was being loaded")
  write_all(tmp .. "/proj.bin", "x")
  write_all(tmp .. "/swap/open_clip_config.json", read_all(tmp .. "/swap/open_clip_config.json") .. " ")
  T.fails(function() chunks.record({}, {}, tmp .. "/swap", tmp .. "/proj.bin", before) end,
    "the model in " .. tmp .. "/swap changed while it was being loaded")
end

os.execute("rm -rf " .. quote(tmp))
T.done()
