-- Handles cannot outlive what they point to (issue 10, item 2): a dataset freed while its
-- batches iterator runs (worker threads read its paths), numbers in path lists (converted
-- on the stack and popped before they were copied), lists and options read through
-- __index/__len (Lua code mid-read that freed what had been read), and strings with a NUL
-- byte (cut short where C takes them). Run under the sanitizer build too, where each of
-- these was a use-after-free report.
local refract = require("refract")
local T = require("testlib")

local g = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)") .. "/tiny-gelu"
local model = refract.load(g .. "/model")
local images = refract.dataset{ dir = g .. "/images" }
local paths = {}
for i = 1, #images do paths[i] = images:path(i) end

-- {===== a dataset freed while its batches iterator runs

-- 40 copies of the images, decoded by 4 workers two at a time; the dataset is freed after
-- the first batch, then its memory is reused by strings of the paths' size: the workers
-- must still read the paths (the last loader frees them), and the iterator must finish.
local many = {}
for k = 1, 40 do
  for _, p in ipairs(paths) do many[#many + 1] = p end
end
local function run_freed(close)
  local it, count
  do
    local ds <close> = refract.dataset{ files = many }
    it = ds:batches{ batch = 2, size = 32, workers = 4 }
    local _, _, c = it()
    count = c
    if not close then
      ds:free()
      T.fails(function() return ds:path(1) end, "dataset has been freed")
    end
  end
  collectgarbage()
  local junk = {}
  for i = 1, 20000 do junk[i] = string.rep("x", #many[1] - 6) .. string.format("%06d", i) end
  for _, _, c in it do count = count + c end
  return count
end
local ok, n = pcall(run_freed, false)
T.ok(ok, "the iterator runs on after ds:free(): " .. tostring(n))
T.eq(n, #many, "every image of the freed dataset")
ok, n = pcall(run_freed, true)
T.ok(ok, "the iterator runs on after its dataset's <close>: " .. tostring(n))
T.eq(n, #many, "every image of the closed dataset")

-- An iterator dropped mid-way (its workers still running) and its dataset collected.
do
  local it = refract.dataset{ files = many }:batches{ batch = 2, size = 32, workers = 4 }
  it()
end
collectgarbage()
collectgarbage()
T.ok(true, "a dropped iterator and its dataset are collected")

-- refract.images: the dataset it makes lives as long as its iterator.
local seen = 0
for _, _, c in refract.images{ files = paths, batch = 3, size = 32 } do
  collectgarbage()
  seen = seen + c
end
T.eq(seen, #paths, "refract.images")

-- }=====

-- {===== numbers in path and text lists

T.fails(function() refract.dataset{ files = { paths[1], 12345 } } end, "dataset: files[2] is a number, not a string")
T.fails(function() refract.dataset{ dir = 42 } end, "dataset: dir is a number, not a string")
T.fails(function() refract.preprocess({ paths[1], 7 }, { size = 32 }) end, "preprocess: path 2 is a number")
T.fails(function() model:tokenize({ "a photo", 3 }) end, "entry 2 is a number, not a string")

-- }=====

-- {===== lists and options read raw

-- A list whose entries come from __index (fresh strings, with a collection before each)
-- and whose length comes from __len: read raw, it is empty. Read through the metamethods,
-- the strings were popped and collected before the tokenizer used them.
local function proxy(make)
  return setmetatable({}, {
    __len = function() return 3 end,
    __index = function(_, i) collectgarbage() return make(i) end,
  })
end
T.eq(model:tokenize(proxy(function(i) return "text number " .. i end)):shape(), { 0, 77 },
  "tokenize: a proxy list is empty")
T.fails(function() refract.dataset{ files = proxy(function(i) return paths[i] end) } end, "no images")
T.eq(refract.tensor(proxy(function(i) return i end)):shape(), { 0 }, "refract.tensor: a proxy is empty")
T.eq(refract.zeros(proxy(function() return 2 end)):shape(), {}, "a proxy shape has no dimensions")
local v = refract.arange(5)
T.eq(v:index(1, proxy(function(i) return i end)):shape(), { 0 }, "index: a proxy list of indices is empty")
T.eq(v:sum(proxy(function() return 1 end)):shape(), { 5 }, "sum: a proxy list of dims reduces nothing")

-- An option table whose __index frees the model (or the pixels): never called now.
local pixels = refract.preprocess(paths[1], model)
local evil = setmetatable({}, { __index = function() model:free() pixels:free() end })
local d = model:decompose(pixels, evil)
T.ok(d.image_embeds ~= nil, "decompose with an options table whose __index frees the model")
T.ok(not tostring(model):find("freed"), "the model was not freed by a metamethod")
T.ok(not pixels:is_freed(), "the pixels were not freed by a metamethod")
T.eq(model:decomposer(evil):max_batch() >= 1, true, "a decomposer with the same options")
local p2 = refract.preprocess(paths[1], setmetatable({}, { __index = function() model:free() end }))
T.eq(p2:shape(), { 1, 3, 224, 224 }, "preprocess options read raw (defaults)")
T.ok(not tostring(model):find("freed"), "still not freed")
local it = images:batches(setmetatable({ size = 32 }, { __index = function() images:free() end }))
T.ok(it() ~= nil, "batches options read raw")

-- cat of more tensors than the stack was grown for (pushed past it before).
local one = refract.zeros(1)
local list = {}
for i = 1, 100001 do list[i] = one end
T.fails(function() refract.cat(list) end, "100001 tensors: at most 100000")

-- }=====

-- {===== a decomposer whose model was freed

do
  local m = refract.load(g .. "/model")
  local dec = m:decomposer()
  m:free()
  -- max_batch read the destroyed model's config and device budget.
  T.fails(function() return dec:max_batch() end, "max_batch: the decomposer's model has been freed")
  T.fails(function() return dec:run(refract.zeros(1, 3, 32, 32)) end, "run: the decomposer's model has been freed")
  dec:free()
end

-- }=====

-- {===== free() from a finalizer in the middle of a call

-- The collector runs finalizers inside any call that allocates (a result's handle, the
-- collector's step for device memory, a collection before a retry), after the call took
-- its operands' pointers: a __gc that freed an operand made the call use freed memory.
-- Now the handle is marked freed at once and its memory goes with its own __gc.
local function armed_finalizers(action)
  local state = { armed = false }
  for _ = 1, 200 do
    setmetatable({}, { __gc = function() if state.armed then action() end end })
  end
  state.armed = true
  return state
end
do
  local a, b = refract.rand(1 << 20, 1), refract.rand(1 << 20, 2)
  local state = armed_finalizers(function() a:free() end)
  local ok, err = pcall(function() for _ = 1, 50 do local _ = a + b end end)
  state.armed = false
  T.ok(a:is_freed(), "a finalizer freed the operand")
  T.ok(ok or tostring(err):find("tensor has been freed", 1, true), "a + b after its operand was freed: " .. tostring(err))
  collectgarbage()
end
do
  local m = refract.load(g .. "/model")
  local px = refract.preprocess(paths[1], m)
  local d = m:decomposer()
  local seg = refract.imagenet_seg(os.getenv("RF_TEST_DATA") .. "/imagenet-seg/gtsegs_tiny.mat")
  local state = armed_finalizers(function() m:free() px:free() d:free() seg:close() end)
  local ok, err = pcall(function()
    for _ = 1, 300 do
      local _ = seg:pixels(1, 1, m), m:decompose(px), d:run(px), m:encode_images(px)
    end
  end)
  state.armed = false
  T.ok(not ok and tostring(err):find("freed") or tostring(err):find("closed"),
    "model, pixels, decomposer and file freed by a finalizer mid-call: " .. tostring(err))
  T.ok(tostring(m):find("freed") ~= nil and px:is_freed(), "they read as freed at once")
  m, px, d, seg = nil, nil, nil, nil
  collectgarbage()
  collectgarbage()
end

-- }=====

-- {===== refract called from a __gc at exit

-- lua_close runs the finalizers of what is still reachable, and objects made then are never
-- finalized: a tensor or a model made in a __gc at exit leaked (a LeakSanitizer report under
-- the sanitizer build). Now refract refuses to make them while closing, also through
-- os.exit(code, true).
for _, exit in ipairs({ "", "; os.exit(0, true)" }) do
  local code = string.format("y = refract.zeros(3); x = setmetatable({}, { __gc = function() "
    .. "local ok, e = pcall(function() return refract.zeros(10), refract.load('%s/model') end); "
    .. "io.stderr:write(tostring(e), '\\n'); y:free() end })%s", g, exit)
  local r = T.run(string.format("'%s' -e \"%s\"", refract.executable(), code))
  T.ok(r.ok, "exit with a __gc calling refract" .. exit .. ": " .. r.err)
  T.ok(r.err:find("cannot be made while the interpreter closes", 1, true) ~= nil, "it is refused: " .. r.err)
  T.ok(not r.err:find("Sanitizer", 1, true), "no leak reported" .. exit)
end

-- }=====

-- {===== NUL bytes

T.fails(function() model:tokenize({ "a photo", "of a\0 dog" }) end, "text 2 holds a NUL byte (at byte 5)")
T.fails(function() refract.read(g .. "/reference.safetensors\0.npy") end, "holds a NUL byte")
T.fails(function() refract.read(g .. "/reference.safetensors", "pixels\0x") end, "holds a NUL byte")
T.fails(function() refract.image_load(paths[1] .. "\0junk") end, "holds a NUL byte")
T.fails(function() refract.dataset{ files = { paths[1] .. "\0x" } } end, "files[1] holds a NUL byte")
T.fails(function() refract.load(g .. "/model\0/x") end, "holds a NUL byte")
T.fails(function() refract.write(T.tmp("t.safetensors"), { ["a\0b"] = one }) end, "a tensor name holds a NUL byte")
T.fails(function() refract.write(T.tmp("t.safetensors"), one, { k = "v\0w" }) end, "a metadata value holds a NUL byte")
T.fails(function() refract.json_encode({ ["k\0ey"] = 1 }) end, "a key with a NUL byte")
T.fails(function() refract.sha256(g .. "/texts.json\0") end, "holds a NUL byte")
-- Lock, listdir and write_text paths, spawn's arguments and environment: cut at the NUL
-- before (a lock on another path, another program run).
T.fails(function() refract.lock(T.tmp("a.lock\0x")) end, "holds a NUL byte")
T.fails(function() refract.listdir(T.tmp() .. "\0x") end, "holds a NUL byte")
T.fails(function() refract.write_text(T.tmp("t.txt\0x"), "x") end, "holds a NUL byte")
T.fails(function() refract.spawn({ "/bin/true\0x" }) end, "spawn: an argument holds a NUL byte")
T.fails(function() refract.spawn({ "/bin/true" }, { A = "x\0y" }) end, "spawn: an environment value holds a NUL byte")
T.fails(function() refract.spawn({ "/bin/true" }, { A = 5 }) end, "the environment must map names to strings")
-- spawn's list read raw: through __len and __index its strings were fresh, popped and
-- left dangling in argv.
T.fails(function() refract.spawn(proxy(function() return "/bin/true" end)) end, "a list of 1 to 4095 strings expected")
T.fails(function() refract.isatty((1 << 32) + 1) end, "a file descriptor (0..2^31-1) expected")
T.fails(function() refract.imagenet_seg(os.getenv("RF_TEST_DATA") .. "/imagenet-seg/gtsegs_tiny.mat\0x") end,
  "holds a NUL byte")
T.fails(function() model:forward(refract.zeros(1, 3, 32, 32), { taps = { "q.1\0x" } }) end,
  "taps[1] holds a NUL byte")

-- }=====

T.done()
