-- .npz archives from Lua: refract.write / refract.read / refract.metadata / t:save round
-- trips (every dtype, device and host tensors, metadata), archives written by NumPy, and
-- misuse. test_npz.c checks the archive bytes themselves.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local base = os.tmpname()
local made = { base }
local function tmp(name)
  local path = base .. "-" .. name
  made[#made + 1] = path
  return path
end

-- every dtype in one archive, with metadata
local tensors = {
  weights = refract.tensor({ { 1.5, -2 }, { 0.25, 1024 } }),
  half = refract.tensor({ -0.5, 2048, 0.125 }, "f16"),
  labels = refract.tensor({ -1, 1 << 40, 7 }, "i64"),
  ids = refract.tensor({ 3, -4 }, "i32"),
  mask = refract.tensor({ { 0, 255 }, { 7, 1 } }, "u8"),
  brain = refract.tensor({ 1.5, -256 }, "bf16"),
}
local path = tmp("all.npz")
refract.write(path, tensors, { model = "tiny", paths = '["a.png"]' })
local back = refract.read(path)
for name, t in pairs(tensors) do
  T.ok(back[name] ~= nil, "member " .. name)
  T.eq(back[name]:totable(), t:totable(), name .. " values")
end
T.eq(back.brain:dtype(), "f32", "bf16 comes back widened")
T.eq(back.half:dtype(), "f16")
T.eq(back.labels:device(), "host")
T.eq(back.weights:device(), "device")
T.eq(refract.read(path, "labels"):totable(), { -1, 1 << 40, 7 })
local md = refract.metadata(path)
T.eq(md.model, "tiny")
T.eq(md.paths, '["a.png"]')

-- one tensor (t:save) is stored as "tensor"; an archive without metadata has none
local one = tmp("one.npz")
tensors.weights:save(one)
T.eq(refract.read(one, "tensor"):totable(), { { 1.5, -2 }, { 0.25, 1024 } })
T.eq(next(refract.metadata(one)), nil)

-- what NumPy writes, stored and deflated
for _, file in ipairs({ "savez.npz", "savez_compressed.npz" }) do
  local z = refract.read(data .. "/npz/" .. file)
  T.eq(z.weights:totable(), { { -1.5, 0, 0.25 }, { 2, 1024.5, -7 } }, file)
  T.eq(z.labels:totable(), { 3, 0, 1 << 40 }, file)
end

-- misuse
T.fails(function() return refract.read(path, "weight") end, "no tensor named 'weight' (it has:")
T.fails(function() return refract.read(tmp("missing.npz")) end, "missing.npz: cannot open")
local text = tmp("text.npz")
local f = assert(io.open(text, "wb"))
f:write("plain text, not a zip archive")
f:close()
T.fails(function() return refract.read(text) end, "not an .npz file")
T.fails(function() return refract.write(tmp("x.npz"), { a = 1 }) end, "not a tensor")
T.fails(function() return refract.write("/nonexistent-refract-dir/x.npz", tensors.ids) end,
  "/nonexistent-refract-dir/x.npz")

for _, p in ipairs(made) do os.remove(p) end
T.done()
