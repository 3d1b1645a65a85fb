-- Tensor files from Lua: refract.read / refract.write / t:save / refract.metadata with
-- .npy and .safetensors files: round trips of every dtype, the golden files, and misuse.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local tmp = T.tmp

local function write_bytes(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function slurp(path) return assert(T.read_file(path)) end
local count = T.count

-- every dtype through both formats (values exact in every dtype); bf16 comes back as
-- f32 (NumPy has no bf16, and bf16 read from files is widened for the device)
local cases = {
  { "f32", { { 1.5, -2 }, { 0.25, 1024 } }, "f32", "device" },
  { "f16", { -0.5, 2048, 0.125 }, "f16", "device" },
  { "bf16", { { 1.5 }, { -256 }, { 0.0078125 } }, "f32", "device" },
  { "i64", { { -1, 1 << 40, 7 } }, "i64", "host" },
  { "i32", { -2147483648, 0, 2147483647 }, "i32", "host" },
  { "u8", { { { 0, 255 }, { 7, 128 } } }, "u8", "host" },
}
for _, c in ipairs(cases) do
  local dtype, values, want_dtype, want_place = c[1], c[2], c[3], c[4]
  local x = refract.tensor(values, dtype)
  for _, ext in ipairs({ ".npy", ".safetensors" }) do
    local what = dtype .. ext
    local path = tmp(what)
    refract.write(path, x)
    local y = refract.read(path)
    if ext == ".safetensors" then
      T.eq(count(y), 1, what .. " tensors")
      y = y.tensor
    end
    T.eq(y:dtype(), want_dtype, what .. " dtype")
    T.eq(y:device(), want_place, what .. " placement")
    T.eq(y:shape(), x:shape(), what .. " shape")
    T.eq(y:totable(), values, what .. " values")
  end
end

-- t:save, 0-d and zero-size tensors
local s = refract.tensor(3.25)
s:save(tmp("scalar.npy"))
T.eq(refract.read(tmp("scalar.npy")):totable(), 3.25)
T.eq(refract.read(tmp("scalar.npy")):shape(), {})
local e = refract.read(data .. "/npy/i8_0x3.npy")
T.eq(e:shape(), { 0, 3 })
e:save(tmp("empty.safetensors"))
T.eq(refract.read(tmp("empty.safetensors"), "tensor"):shape(), { 0, 3 })

-- a table of tensors with metadata; read all, one by name, and the metadata
local w = refract.tensor({ { 1, 2 }, { 3, 4 } })
local ids = refract.tensor({ 49406, 320, 49407 }, "i64")
local bundle = tmp("bundle.safetensors")
refract.write(bundle, { weight = w, ["tokens.ids"] = ids }, { author = "refract", layers = "3" })
local all = refract.read(bundle)
T.eq(count(all), 2)
T.eq(all.weight:totable(), { { 1, 2 }, { 3, 4 } })
T.eq(all["tokens.ids"]:totable(), { 49406, 320, 49407 })
T.eq(refract.read(bundle, "tokens.ids"):device(), "host")
T.eq(refract.metadata(bundle), { author = "refract", layers = "3" })
T.eq(refract.metadata(tmp("empty.safetensors")), {})
-- writing the same table twice gives the same bytes (names are sorted)
refract.write(tmp("again.safetensors"), { ["tokens.ids"] = ids, weight = w }, { layers = "3", author = "refract" })
T.ok(slurp(bundle) == slurp(tmp("again.safetensors")), "same table, same file")

-- tables are written widest dtype first, so every tensor's data is aligned to its
-- element size within the file
local mixed = tmp("mixed.safetensors")
refract.write(mixed, { a = refract.tensor({ 1, 2, 3 }, "u8"), b = refract.tensor({ 1, 2 }),
  c = refract.tensor({ 5 }, "i64"), d = refract.tensor({ 1 }, "f16") })
local header = slurp(mixed)
T.ok(header:find('"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}', 1, true), "i64 first")
T.ok(header:find('"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}', 1, true), "then f32")
T.ok(header:find('"d":{"dtype":"F16","shape":[1],"data_offsets":[16,18]}', 1, true), "then f16")
T.ok(header:find('"a":{"dtype":"U8","shape":[3],"data_offsets":[18,21]}', 1, true), "u8 last")

-- files written by NumPy
local f4 = refract.read(data .. "/npy/f4_2x3.npy")
T.eq(f4:dtype(), "f32")
T.eq(f4:device(), "device")
T.eq(f4:totable(), { { -1.5, 0, 0.25 }, { 2, 1024.5, -7 } })
T.eq(refract.read(data .. "/npy/f2_5.npy"):totable(), { 0, 1, -2, 0.5, 65504 })
local i8 = refract.read(data .. "/npy/i8_3x2.npy")
T.eq(i8:device(), "host")
T.eq(i8:totable(), { { -1, 1 << 40 }, { 0, 1 << 62 }, { math.mininteger, 7 } })
T.eq(refract.read(data .. "/npy/f4_scalar.npy"):item(), 3.25)
T.eq(refract.read(data .. "/npy/f4_v3.npy"):totable(), { 0, 1, 2, 3 })

-- the golden reference file: shapes, placement, a few values, metadata
local ref = refract.read(data .. "/tiny-gelu/reference.safetensors")
T.eq(count(ref), 20)
T.eq(ref.attn_heads:shape(), { 8, 3, 4, 32 })
T.eq(ref.attn_spatial:shape(), { 8, 3, 17, 4, 32 })
T.eq(ref.image_embeds:dtype(), "f32")
T.eq(ref.image_embeds:device(), "device")
local emb = ref.image_embeds:totable()
T.near({ emb[1][1], emb[1][2], emb[1][3], emb[8][32] },
  { 0.3616635799407959, -0.27971354126930237, -0.2344934046268463, -1.6595539 }, 1e-6, "image_embeds")
local disc = ref["decoded.00_exact_disc"]
T.eq(disc:dtype(), "u8")
T.eq(disc:device(), "host")
T.eq(disc:shape(), { 32, 32, 3 })
local px = disc:totable()
T.eq(px[1][1], { 30, 60, 200 })
T.eq(px[17][17], { 235, 30, 30 })
T.eq(ref.text_tokens:dtype(), "i64")
local meta = refract.metadata(data .. "/tiny-gelu/reference.safetensors")
T.eq(meta.layers, "3")
T.eq(meta.heads, "4")
T.eq(refract.read(data .. "/tokenizer/tokens.safetensors", "tokens"):totable()[1][1], 49406)
-- a golden file copied through Lua reads back the same
refract.write(tmp("copy.safetensors"), ref, meta)
local copy = refract.read(tmp("copy.safetensors"))
T.eq(copy.pixels:totable(), ref.pixels:totable())
T.eq(copy.gt_labels:totable(), ref.gt_labels:totable())
T.eq(refract.metadata(tmp("copy.safetensors")), meta)

-- misuse: clear Lua errors naming the file and the problem, never a crash
local x = refract.tensor({ 1, 2, 3 })
local st = tmp("x.safetensors")
T.fails(function() return refract.read({}) end, "string expected")
T.fails(function() return refract.read(tmp("x.txt")) end, "unknown file type")
T.fails(function() return refract.read(tmp("missing.npy")) end, "missing.npy: cannot open")
T.fails(function() return refract.read(tmp("missing.safetensors")) end, "cannot open")
T.fails(function() return refract.read(bundle, "nope") end, "no tensor named 'nope' (it has: tokens.ids, weight)")
T.fails(function() return refract.read(data .. "/npy/f4_2x3.npy", "x") end, "one unnamed tensor")
T.fails(function() return refract.metadata(data .. "/npy/f4_2x3.npy") end, "only kept in .safetensors")
T.fails(function() return refract.write(st) end, "tensor or table of tensors expected")
T.fails(function() return refract.write(st, "text") end, "tensor or table of tensors expected")
T.fails(function() return refract.write(st, { a = x, b = 3 }) end, "the value for 'b' is a number, not a tensor")
T.fails(function() return refract.write(st, { x }) end, "tensor names must be strings")
T.fails(function() return refract.write(st, { a = x }, { n = 3 }) end, "metadata keys and values must be strings")
T.fails(function() return refract.write(st, { a = x }, "meta") end, "table expected")
T.fails(function() return refract.write(tmp("x.npy"), { a = x }) end, "a .npy file holds one tensor")
T.fails(function() return refract.write(tmp("x.npy"), x, { a = "b" }) end, "metadata needs a .safetensors or .npz file")
T.fails(function() return refract.write(tmp("x.bin"), x) end, "unknown file type")
T.fails(function() return refract.write("/nonexistent-refract-dir/x.npy", x) end,
  "write: /nonexistent-refract-dir/x.npy: cannot create")
T.fails(function() return refract.write(st, { __metadata__ = x }) end, "reserved")
T.fails(function() return x:save() end, "string expected")
T.fails(function() return refract.Tensor.save({}, tmp("y.npy")) end, "refract.Tensor expected")
local gone = refract.tensor({ 1 })
gone:free()
T.fails(function() return gone:save(tmp("gone.npy")) end, "tensor has been freed")
T.fails(function() return refract.write(st, { g = gone }) end, "tensor 'g' has been freed")
-- malformed files surface the reader's message
write_bytes(tmp("bad.safetensors"), "\1\0\0")
T.fails(function() return refract.read(tmp("bad.safetensors")) end, "bad.safetensors: only 3 bytes")
write_bytes(tmp("bad.npy"), "\147NUMPY\1\0\10\0{'descr':}")
T.fails(function() return refract.read(tmp("bad.npy")) end, "bad.npy: malformed .npy header")
local npy = slurp(data .. "/npy/f4_2x3.npy")
write_bytes(tmp("short.npy"), npy:sub(1, -5))
T.fails(function() return refract.read(tmp("short.npy")) end, "short.npy: 20 bytes of data")
-- a failed write leaves the old file in place
T.fails(function() return refract.write(bundle, { a = x, b = "x" }) end, "not a tensor")
T.eq(count(refract.read(bundle)), 2)

T.done()
