-- A dataset run interrupted by kill -INT or kill -9 and run again ends with the same files,
-- byte for byte, as a run that was never interrupted.
local refract = require("refract")
local T = require("testlib")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local exe = refract.executable()
local tmp = T.tmp()

-- A list of 300 images (the golden PNGs over and over), relative to the list's folder.
local f = assert(io.open(tmp .. "/list.txt", "w"))
local names = { "00_exact_disc.png", "01_large_pentagon.png", "02_wide_triangle.png", "04_small_square.png",
                "05_gray_checker.png", "06_rgba_diamond.png", "07_noise_star.jpg" }
os.execute(string.format("cp %s/images/*.png %s/images/*.jpg '%s'", g, g, tmp))
for i = 1, 300 do f:write(names[(i - 1) % #names + 1], "\n") end
f:close()

local function args(chunks, out)
  return string.format("decompose --model %s/model --list %s/list.txt --spatial --chunks %s/%s --chunk-size 4 --batch 2 --out %s/%s",
    g, tmp, tmp, chunks, tmp, out)
end

local function run(a)
  return os.execute(string.format("'%s' %s > /dev/null 2>&1", exe, a))
end

local read_all = T.read_file

local function parts(dir)
  local list = {}
  local p = io.popen("ls '" .. dir .. "'")
  for name in p:lines() do list[#list + 1] = name end
  p:close()
  return list
end

T.ok(run(args("clean", "clean.safetensors")), "uninterrupted run")
local clean = parts(tmp .. "/clean")
T.eq(#clean, 2 * 75 + 1, "75 chunk files of 4 images, their checksums and the run record")

-- Interrupt a run after its first chunk files appear, then run it again.
local function interrupted(signal, name)
  os.execute(string.format("('%s' %s > /dev/null 2>&1 & echo $! > '%s/pid')", exe, args(name, name .. ".safetensors"), tmp))
  local pid = read_all(tmp .. "/pid"):match("%d+")
  local seen = 0
  for _ = 1, 2000 do
    seen = #parts(tmp .. "/" .. name)
    if seen >= 3 then break end
    os.execute("sleep 0.01")
  end
  os.execute(string.format("kill -%s %s 2>/dev/null", signal, pid))
  -- Wait until the process has gone before running again.
  for _ = 1, 3000 do
    if not os.execute(string.format("kill -0 %s 2>/dev/null", pid)) then break end
    os.execute("sleep 0.01")
  end
  local before = #parts(tmp .. "/" .. name)
  print(string.format("kill -%s after %d of 75 chunk files", signal, before))
  T.ok(before < 75, "the run was interrupted before it finished (" .. signal .. ")")
  T.ok(read_all(tmp .. "/" .. name .. ".safetensors") == nil, "no output file from the interrupted run")
  T.ok(run(args(name, name .. ".safetensors")), "the resumed run finishes")
  local got = parts(tmp .. "/" .. name)
  T.eq(got, clean, "the same chunk files")
  for _, file in ipairs(clean) do
    T.ok(read_all(tmp .. "/clean/" .. file) == read_all(tmp .. "/" .. name .. "/" .. file), file .. " identical")
  end
  T.ok(read_all(tmp .. "/clean.safetensors") == read_all(tmp .. "/" .. name .. ".safetensors"), "means identical")
end

interrupted("INT", "int")
interrupted("9", "kill")

-- A chunk folder made with other options is refused, not mixed.
local ok = os.execute(string.format("'%s' %s --centering exact > '%s/msg' 2>&1", exe, args("clean", "x.safetensors"), tmp))
T.ok(not ok, "other options are refused")
T.ok(read_all(tmp .. "/msg"):find("centering", 1, true) ~= nil, "the message names the option")

T.done()
