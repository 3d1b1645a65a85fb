-- Files that are not what they claim (issue 10, item 4), as scripts and commands meet
-- them: every reader refuses a FIFO (which hung the open), a folder and a device (which
-- never ends) with a message naming the path; files over the size limits are refused
-- before they are read; text lists must be lists of strings without NUL bytes; NaN or
-- infinity in preprocessing constants or in pixels read from files is an error naming it.
local refract = require("refract")
local T = require("testlib")
local util = require("refract.util")
local data = require("refract.data")

local g = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)") .. "/tiny-gelu"
local exe = refract.executable()
local image = g .. "/images/00_exact_disc.png"

local function write(name, bytes)
  local path = T.tmp(name)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

local function fifo(name)
  local path = T.tmp(name)
  assert(os.execute("mkfifo '" .. path .. "'"))
  return path
end

-- {===== FIFOs, folders and devices

local readers = {
  { "refract.read .npy", function(p) return refract.read(p) end, ".npy" },
  { "refract.read .safetensors", function(p) return refract.read(p) end, ".safetensors" },
  { "refract.metadata", function(p) return refract.metadata(p) end, ".safetensors" },
  { "refract.json_read", function(p) return refract.json_read(p) end, ".json" },
  { "refract.read_file", function(p) return refract.read_file(p) end, ".txt" },
  { "refract.sha256", function(p) return refract.sha256(p) end, ".bin" },
  { "refract.image_load", function(p) return refract.image_load(p) end, ".png" },
  { "refract.preprocess", function(p) return refract.preprocess(p, { size = 32 }) end, ".png" },
  { "refract.dataset list", function(p) return refract.dataset{ list = p } end, ".txt" },
  { "util.read_texts", function(p) return util.read_texts(p) end, ".txt" },
  { "util.read_texts JSON", function(p) return util.read_texts(p) end, ".json" },
  { "data.read_list", function(p) return data.read_list(p, "class names") end, ".txt" },
  { "refract.imagenet_seg", function(p) return refract.imagenet_seg(p) end, ".mat" },
  { "refract.mask_labels", function(p) return refract.mask_labels(p, 32) end, ".png" },
}
-- (The image decoder's own message says only "not a regular file".)
for i, r in ipairs(readers) do
  local f = fifo("fifo" .. i .. r[3])
  T.fails(function() r[2](f) end, "not a regular file")
  local dir = T.tmp("dir" .. i .. r[3])
  os.execute("mkdir '" .. dir .. "'")
  T.fails(function() r[2](dir) end, r[1] == "data.read_list" and "is a folder" or "not a regular file")
  if r[3] ~= ".npy" and r[3] ~= ".safetensors" and r[3] ~= ".json" then
    T.fails(function() r[2]("/dev/zero") end, "/dev/zero: ")
  end
end
T.fails(function() refract.read(T.tmp("fifo1.npy")) end, "fifo1.npy: is a FIFO (named pipe), not a regular file")
T.fails(function() refract.json_read(T.tmp("dir4.json")) end, "dir4.json: is a folder, not a regular file")
T.fails(function() refract.read_file("/dev/zero") end, "/dev/zero: is a device, not a regular file")
-- A model folder whose configuration is a FIFO, and a script that is one.
local model = T.tmp("fifo_model")
os.execute("mkdir '" .. model .. "'")
assert(os.execute("mkfifo '" .. model .. "/open_clip_config.json'"))
T.fails(function() refract.load(model) end, "open_clip_config.json: is a FIFO (named pipe)")
T.refused(T.run(string.format("'%s' '%s'", exe, fifo("script.lua"))), "is a FIFO (named pipe)", "a FIFO script")
T.refused(T.run(string.format("'%s' encode --model '%s' --texts '%s' --out '%s'", exe, g .. "/model",
  fifo("texts.txt"), T.tmp("x.safetensors"))), "is a FIFO (named pipe)", "encode --texts FIFO")
-- decompose with every image skipped, or an empty --pixels batch: a file holding only
-- count = 0, and "decomposed 1 images" on the terminal.
T.refused(T.run(string.format("'%s' decompose --model '%s' --images '%s' --on-error skip --out '%s'", exe,
  g .. "/model", fifo("skipped.png"), T.tmp("skipped.safetensors"))), "every one of the 1 images was skipped",
  "decompose with every image skipped")
refract.write(T.tmp("no_pixels.npy"), refract.zeros({ 0, 3, 32, 32 }))
T.refused(T.run(string.format("'%s' decompose --model '%s' --pixels '%s' --out '%s'", exe, g .. "/model",
  T.tmp("no_pixels.npy"), T.tmp("none.safetensors"))), "no images (the batch is empty)", "decompose of no pixels")
-- A folder's entries named as images that are not files (a FIFO, a device, a link to
-- nothing) are listed, so loading them names the problem or --on-error skip records them:
-- they were left out of the dataset without a word (a run over "every image" used fewer).
do
  local dir = T.tmp("odd_entries")
  assert(os.execute(string.format("mkdir -p '%s' && cp '%s' '%s/a.png' && mkfifo '%s/b.png' && ln -s /dev/zero '%s/c.png' "
    .. "&& ln -s '%s/nothing' '%s/d.jpg' && ln -s '%s/nothing' '%s/notes.txt'", dir, image, dir, dir, dir, dir, dir, dir,
    dir)))
  local ds = refract.dataset({ dir = dir })
  local names = {}
  for i = 1, #ds do names[i] = ds:path(i):sub(#dir + 2) end
  T.eq(names, { "a.png", "b.png", "c.png", "d.jpg" }, "entries named as images are listed")
  T.refused(T.run(string.format("timeout 20 '%s' decompose --model '%s' --dir '%s' --out '%s'", exe, g .. "/model", dir,
    T.tmp("odd.safetensors"))), "b.png: not a regular file (a FIFO)", "decompose --dir names the FIFO")
  local r = T.run(string.format("timeout 20 '%s' decompose --model '%s' --dir '%s' --on-error skip --out '%s'", exe,
    g .. "/model", dir, T.tmp("odd.safetensors")))
  T.ok(r.ok, "decompose --dir --on-error skip: " .. r.err)
  local md = refract.metadata(T.tmp("odd.safetensors"))
  T.eq(refract.json_decode(md.paths), { dir .. "/a.png" }, "the image that loads")
  local skipped = refract.json_decode(md.skipped)
  T.eq(#skipped, 3, "the others are recorded as skipped")
  T.eq(skipped[3][1], dir .. "/d.jpg", "with their paths")
  T.matches(skipped[3][2], "d%.jpg: cannot open: No such file", "and why")
end
-- A FIFO in a --chunks folder, where run.json or a chunk's checksum file belongs: decompose
-- (resuming) and merge opened it with io.open and waited forever. (`timeout` turns a hang
-- into a failure here.)
do
  local function chunked(dir, out)
    return string.format("timeout 20 '%s' decompose --model '%s' --images '%s' '%s' --chunks '%s' --chunk-size 1 "
      .. "--batch 1 --out '%s'", exe, g .. "/model", image, image, dir, out)
  end
  local made = T.tmp("chunks_made")
  T.ok(T.run(chunked(made, T.tmp("made.safetensors"))).ok, "a chunked run")
  for _, name in ipairs({ "run.json", "part-000002.sha256" }) do
    local dir = T.tmp("chunks_fifo_" .. name)
    os.execute(string.format("cp -r '%s' '%s' && rm '%s/%s'", made, dir, dir, name))
    assert(os.execute(string.format("mkfifo '%s/%s'", dir, name)))
    T.refused(T.run(chunked(dir, T.tmp("fifo.safetensors"))), name .. ": is a FIFO (named pipe)",
      "decompose --chunks with a FIFO as " .. name)
    T.refused(T.run(string.format("timeout 20 '%s' merge --chunks '%s' --out '%s'", exe, dir, T.tmp("m.safetensors"))),
      name .. ": is a FIFO (named pipe)", "merge --chunks with a FIFO as " .. name)
  end
end
-- Folders a command makes (--chunks, segment's --pictures): `mkdir -p` through a shell
-- took a name starting with '-' for an option, said nothing when it failed (the error
-- then blamed run.lock), and --chunks "" made run.lock and run.json in /.
do
  local function chunked(dir)
    return string.format("cd '%s' && '%s' decompose --model '%s' --images '%s' --chunks '%s' --chunk-size 1 "
      .. "--batch 1 --out '%s'", T.tmp(), exe, g .. "/model", image, dir, T.tmp("folders.safetensors"))
  end
  T.ok(T.run(chunked("-dash")).ok, "--chunks -dash runs")
  T.eq(refract.file_type(T.tmp("-dash/part-000001.sha256")), "file", "--chunks -dash: a folder named -dash")
  write("plain_file", "x")
  T.refused(T.run(chunked("plain_file/sub")), "--chunks plain_file/sub: plain_file is not a folder", "--chunks under a file")
  T.refused(T.run(chunked("")), "--chunks: an empty path names no folder", "--chunks ''")
  T.refused(T.run(string.format("'%s' segment --model '%s' --classifier '%s' --images '%s' --pictures '%s' --out '%s'",
    exe, g .. "/model", T.tmp("poisoned.safetensors"), image, T.tmp("plain_file/p"), T.tmp("s.json"))),
    "--pictures " .. T.tmp("plain_file/p") .. ": " .. T.tmp("plain_file") .. " is not a folder", "--pictures under a file")
end
T.eq(refract.file_type(T.tmp("fifo1.npy")), "other", "file_type of a FIFO")
T.eq(refract.file_type(T.tmp()), "directory", "file_type of a folder")
T.eq(refract.file_type(image), "file", "file_type of a file")
T.eq(refract.file_type(T.tmp("nothing")), nil, "file_type of nothing")

-- }=====

-- {===== size limits

-- Sparse files: their size is over the limit without writing it.
local huge = T.tmp("huge.json")
assert(os.execute("truncate -s 300M '" .. huge .. "'"))
T.fails(function() refract.json_read(huge) end, "over the limit of 268435456 for a JSON file")
T.fails(function() util.read_texts(huge) end, "over the limit")
T.fails(function() refract.read_file(write("small.txt", "0123456789"), 9) end, "over the limit of 9")
T.eq(refract.read_file(T.tmp("small.txt"), 10), "0123456789", "read_file at its limit")
local hf = T.tmp("hf_model")
os.execute(string.format("mkdir '%s' && cp '%s'/* '%s'/", hf, g .. "/model", hf))
write("hf_model/vocab.json", "{}")
assert(os.execute("truncate -s 70M '" .. hf .. "/merges.txt'"))
T.fails(function() refract.load(hf) end, "over the limit for a vocabulary or merges file")

-- A file too large for the device: the message names it (it said only "allocating a
-- tensor"). A 64 MiB budget and an 80 MB sparse .npy.
do
  local n = 20 * 1000 * 1000
  local header = string.format("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", n)
  header = header .. string.rep(" ", 63 - (10 + #header) % 64) .. "\n"
  local npy = T.tmp("big.npy")
  local out = assert(io.open(npy, "wb"))
  out:write("\x93NUMPY\x01\x00", string.pack("<I2", #header), header)
  out:close()
  assert(os.execute(string.format("truncate -s %d '%s'", 10 + #header + n * 4, npy)))
  T.refused(T.run(string.format("REFRACT_HEAP_BUDGET=67108864 '%s' -e \"refract.read('%s')\"", exe, npy)),
    "read: " .. npy .. ": out of device memory", "a file larger than the device budget")
end

-- }=====

-- {===== text lists

T.fails(function() util.read_texts(write("obj.json", '{"1": "a", "2": "b"}')) end, "expected a JSON list of strings")
T.fails(function() util.read_texts(write("empty_obj.json", ' {}')) end, "expected a JSON list of strings")
T.eq(util.read_texts(write("empty_list.json", "[]")), {}, "an empty JSON list")
T.fails(function() util.read_texts(write("num.json", '["a", 3]')) end, "entry 2 is not a string")
T.fails(function() util.read_texts(write("null.json", '["a", null]')) end, "entry 2 is not a string")
T.fails(function() util.read_texts(write("scalar.json", '"a"')) end, "expected a JSON list of strings")
T.fails(function() util.read_texts(write("nul.txt", "a photo\nof a \0dog\n")) end, "nul.txt: text 2 holds a NUL byte (at byte 6)")
T.eq(util.read_texts(write("lines.txt", "a\r\nb\n\nc")), { "a", "b", "", "c" }, "text lines")
T.eq(util.read_texts(write("empty.txt", "")), {}, "an empty text file")
T.fails(function() refract.json_read(write("nul.json", '["a\\u0000b"]')) end, "NUL")
T.refused(T.run(string.format("'%s' encode --model '%s' --texts '%s' --out '%s'", exe, g .. "/model",
  T.tmp("obj.json"), T.tmp("x.safetensors"))), "expected a JSON list of strings", "encode --texts object")
-- A list file of images with a NUL byte is not a list.
T.fails(function() refract.dataset{ list = write("images.txt", image .. "\n\0\n") } end, "holds a NUL byte")
-- A list's relative lines are relative to its folder, however long its path.
local deep = T.tmp(string.rep("d", 200) .. "/" .. string.rep("e", 200) .. "/" .. string.rep("f", 200)
  .. "/" .. string.rep("g", 200) .. "/" .. string.rep("h", 200))
os.execute("mkdir -p '" .. deep .. "' && cp '" .. image .. "' '" .. deep .. "/x.png'")
local listed = refract.dataset{ list = write(deep:sub(#T.tmp() + 2) .. "/list.txt", "x.png\n") }
T.eq(listed:path(1), deep .. "/x.png", "a relative line under a path of " .. #deep .. " characters")

-- }=====

-- {===== NaN and infinity

T.fails(function() refract.preprocess(image, { size = 32, mean = { 0 / 0, 0, 0 } }) end, "mean[1] is")
T.fails(function() refract.preprocess(image, { size = 32, std = { 1, math.huge, 1 } }) end, "std[2] is")
T.fails(function() refract.preprocess(image, { size = 32, std = { 1, 1, 1e39 } }) end, "std must be positive and finite")
T.fails(function() refract.preprocess(image, { size = 32, mean = { 1, 2 } }) end, "mean and std need 3 numbers")
T.fails(function() refract.dataset{ files = { image } }:batches{ size = 32, mean = { 0, -math.huge, 0 } } end, "mean[2]")
local clip = refract.load(g .. "/model")
local pixels = refract.preprocess({ image, image }, clip)
local host = pixels:host()
host:set(1, 2, refract.full({ 3, 32, 32 }, 0 / 0))
local nan = T.tmp("nan_pixels.npy")
refract.write(nan, host)
T.fails(function() clip:encode_images(refract.read(nan)) end, "pixels: image 2 of the batch holds NaN at channel 1, row 1, column 1")
T.fails(function() clip:decompose(refract.read(nan)) end, "image 2 of the batch holds NaN")
T.refused(T.run(string.format("'%s' encode --model '%s' --pixels '%s' --out '%s'", exe, g .. "/model", nan,
  T.tmp("e.safetensors"))), "image 2 of the batch holds NaN", "encode --pixels with NaN")
T.refused(T.run(string.format("'%s' decompose --model '%s' --pixels '%s' --out '%s'", exe, g .. "/model", nan,
  T.tmp("d.safetensors"))), "image 2 of the batch holds NaN", "decompose --pixels with NaN")
-- Finite pixels that overflow float32 inside the model (3e38 from a file) gave NaN
-- embeddings and decompositions without a word.
local huge = pixels:host()
huge:set(1, 2, refract.full({ 3, 32, 32 }, 3e38))
T.fails(function() clip:encode_images(huge) end, "pixels: the embedding of image 2 of the batch is NaN")
T.fails(function() clip:decompose(huge) end, "the embedding of image 2 of the batch is NaN")
T.fails(function() clip:forward(huge) end, "the embedding of image 2 of the batch is NaN")
-- A classifier or projection with NaN or infinity made every logit of its class NaN, and
-- argmax picked a class (ablate, segment) or decompose wrote NaN, without a word.
local directions = refract.randn({ 32, 3 }, 1)
directions:set(1, 2, refract.tensor({ 0, 0, math.huge }))
local poisoned = T.tmp("poisoned.safetensors")
refract.write(poisoned, { classifier = directions })
T.fails(function() clip:decompose(pixels, { project = directions }) end,
  "the projection holds infinity at row 2, column 3: its directions must be finite")
T.fails(function() require("refract.classifier").read(poisoned) end,
  "poisoned.safetensors: the classifier holds infinity at row 2, column 3")
T.refused(T.run(string.format("'%s' decompose --model '%s' --images '%s' --project '%s' --out '%s'", exe,
  g .. "/model", image, poisoned .. ":classifier", T.tmp("p.safetensors"))), "--project " .. poisoned .. ":classifier: decomposer: the projection holds infinity",
  "decompose --project with infinity")

-- }=====

T.done()
