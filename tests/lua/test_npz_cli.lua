-- `--out x.npz` on the commands that write tensors (encode, decompose): the same tensors
-- and metadata as their .safetensors output, and a bad extension refused before any work.
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

local function same_files(a, b, what)
  local x, y = refract.read(a), refract.read(b)
  local n = 0
  for name, t in pairs(x) do
    n = n + 1
    T.ok(y[name] ~= nil, what .. ": " .. name .. " in both")
    if y[name] then
      T.eq(t:shape(), y[name]:shape(), what .. ": " .. name .. " shape")
      T.eq(t:dtype(), y[name]:dtype(), what .. ": " .. name .. " dtype")
      T.eq((t:float() - y[name]:float()):abs():max():item(), 0, what .. ": " .. name .. " values")
    end
  end
  for name in pairs(y) do T.ok(x[name] ~= nil, what .. ": " .. name .. " in both") end
  T.ok(n > 0, what .. ": tensors")
  local mx, my = refract.metadata(a), refract.metadata(b)
  T.eq(mx.model, my.model, what .. ": metadata")
  T.eq(mx.paths, my.paths, what .. ": paths")
end

local images = string.format("%s/images/00_exact_disc.png %s/images/02_wide_triangle.png", g, g)
for _, ext in ipairs({ "safetensors", "npz" }) do
  local ok, text = run(string.format("encode --model %s/model --images %s --texts %s/texts.json --out %s/enc.%s",
    g, images, g, tmp, ext))
  T.ok(ok, "encode --out ." .. ext .. ": " .. text)
  ok, text = run(string.format("decompose --model %s/model --images %s --spatial --out %s/dec.%s", g, images, tmp, ext))
  T.ok(ok, "decompose --out ." .. ext .. ": " .. text)
end
same_files(tmp .. "/enc.npz", tmp .. "/enc.safetensors", "encode")
same_files(tmp .. "/dec.npz", tmp .. "/dec.safetensors", "decompose")
T.ok(refract.metadata(tmp .. "/dec.npz").paths:find("02_wide_triangle.png", 1, true), "paths recorded in the .npz")

for _, cmd in ipairs({ "encode", "decompose" }) do
  local ok, text = run(string.format("%s --model %s/nope --images %s --out %s/x.bin", cmd, g, images, tmp))
  T.ok(not ok, cmd .. " refuses --out x.bin")
  T.matches(text, "expected a %.safetensors or %.npz file", cmd .. ": before loading the model")
end

os.execute("rm -rf '" .. tmp .. "'")
T.done()
