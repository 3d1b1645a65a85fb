-- Files and folders the user may not read, search or write (issue 10): every command
-- fails with a message naming the path and "Permission denied", and never takes such a
-- file for a missing one (a finished chunk was written over) nor a folder it may not
-- search for "no such folder". chmod means nothing to root, so as root the commands run
-- as `nobody` (setpriv); where privileges cannot be dropped the test skips.
local refract = require("refract")
local T = require("testlib")

local g = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)") .. "/tiny-gelu"
local exe = refract.executable()
local tmp = T.tmp()
local image = g .. "/images/00_exact_disc.png"

local function sh(cmd) assert(os.execute(cmd), cmd) end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The work folder belongs to whoever runs the commands.
local as_user = ""
local uid = io.popen("id -u"):read("l")
if uid == "0" then
  as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=" .. q(tmp) .. " "
end
sh(string.format("cp -r %s/model %s/model && mkdir %s/images && cp %s/images/*.png %s/images/", q(g), q(tmp), q(tmp),
  q(g), q(tmp)))
if uid == "0" then sh("chown -R 65534:65534 " .. q(tmp) .. " && chmod 755 " .. q(tmp)) end
local function run(args) return T.run("cd " .. q(tmp) .. " && " .. as_user .. q(exe) .. " " .. args) end
local probe = run("-e \"assert(io.open('images/x', 'w')):close() os.remove('images/x')\"")
sh("chmod 000 " .. q(tmp .. "/images/00_exact_disc.png"))
if not probe.ok or not run("-e \"assert(not io.open('images/00_exact_disc.png'))\"").ok then
  print("SKIP: cannot run the commands as a user that permissions apply to: " .. probe.err)
  os.execute("rm -rf " .. q(tmp))
  os.exit(77)
end

-- {===== inputs that cannot be read

T.refused(run("decompose --model model --images images/00_exact_disc.png --out d.safetensors"),
  "images/00_exact_disc.png: cannot open: Permission denied", "an unreadable image")
local r = run("decompose --model model --dir images --on-error skip --out d.safetensors")
T.ok(r.ok, "--on-error skip leaves an unreadable image out: " .. r.err)
T.matches(refract.metadata(tmp .. "/d.safetensors").skipped, "Permission denied", "and records why")
-- A model folder that cannot be listed or searched: it said "no open_clip_config.json or
-- config.json", of a folder that has both.
for _, mode in ipairs({ "000", "600" }) do
  sh(string.format("cp -r %s/model %s/model%s && chmod %s %s/model%s", q(tmp), q(tmp), mode, mode, q(tmp), mode))
  T.refused(run(string.format("-e \"refract.load('model%s')\"", mode)),
    "model" .. mode .. "/open_clip_config.json: cannot open: Permission denied", "a model folder of mode " .. mode)
end
sh("chmod 000 " .. q(tmp .. "/model/open_clip_model.safetensors"))
T.refused(run("-e \"refract.load('model')\""), "model/open_clip_model.safetensors: cannot open: Permission denied",
  "unreadable weights")
sh("chmod 644 " .. q(tmp .. "/model/open_clip_model.safetensors"))
-- segment --masks: a folder it may search but not list was "no such folder".
sh(string.format("mkdir %s/masks && cp %s/images/masks/* %s/masks/ && chmod 311 %s/masks", q(tmp), q(g), q(tmp), q(tmp)))
refract.write(tmp .. "/k.safetensors", { classifier = refract.randn({ 32, 3 }, 1) })
if uid == "0" then sh("chown 65534:65534 " .. q(tmp .. "/k.safetensors")) end
T.refused(run("segment --model model --classifier k.safetensors --images images/01_large_pentagon.png "
  .. "--masks masks --out s.json"), "--masks masks: cannot open the folder: Permission denied", "segment --masks not listable")

-- }=====

-- {===== chunk folders

sh("chmod 644 " .. q(tmp .. "/images/00_exact_disc.png"))
local function chunked(dir)
  return run(string.format("decompose --model model --dir images --chunks %s --chunk-size 2 --batch 2 --out %s.safetensors",
    dir, dir))
end
T.ok(chunked("c").ok, "a chunked run")
local finished = refract.listdir(tmp .. "/c")
local before = {}
for _, name in ipairs(finished) do before[name] = refract.sha256(tmp .. "/c/" .. name) end
-- A read-only folder of finished chunks: resuming fails at once, naming what it cannot
-- create, and every chunk is left as it was.
sh(string.format("cp -rp %s/c %s/ro && chmod 555 %s/ro", q(tmp), q(tmp), q(tmp)))
T.refused(chunked("ro"), "ro/run.lock: cannot create: Permission denied", "a read-only chunk folder")
for _, name in ipairs(finished) do
  T.eq(refract.sha256(tmp .. "/ro/" .. name), before[name], "read-only folder: " .. name .. " untouched")
end
T.ok(run("merge --chunks ro --out ro_merged.safetensors").ok, "merge reads a read-only chunk folder")
-- A finished chunk or checksum the user may not read is an error naming it, not a chunk
-- to compute again (its file was silently replaced).
for _, name in ipairs({ "part-000002.safetensors", "part-000002.sha256" }) do
  local dir = "nr_" .. name:match("%.(%w+)$")
  sh(string.format("cp -rp %s/c %s/%s && chmod 000 %s/%s/%s", q(tmp), q(tmp), dir, q(tmp), dir, name))
  local inode = io.popen(string.format("stat -c %%i %s/%s/%s", q(tmp), dir, name)):read("l")
  T.refused(chunked(dir), dir .. "/" .. name .. ": cannot open: Permission denied", "an unreadable " .. name)
  T.eq(io.popen(string.format("stat -c %%i %s/%s/%s", q(tmp), dir, name)):read("l"), inode, name .. " not replaced")
  T.refused(run(string.format("merge --chunks %s --out %s_m.safetensors", dir, dir)), "Permission denied",
    "merge with an unreadable " .. name)
end

-- }=====

-- {===== outputs that cannot be written

sh(string.format("mkdir %s/ro_out && chmod 555 %s/ro_out", q(tmp), q(tmp)))
T.refused(run("decompose --model model --images images/01_large_pentagon.png --out ro_out/d.safetensors"),
  "--out ro_out/d.safetensors: folder ro_out is not writable", "a read-only output folder")
T.refused(run("-e \"refract.write_text('ro_out/x.json', '{}')\""), "ro_out/x.json: cannot create ro_out/x.json.tmp: Permission denied",
  "write_text in a read-only folder")
T.refused(run("-e \"refract.mkdir('ro_out/a/b')\""), "cannot create the folder ro_out/a: Permission denied",
  "mkdir in a read-only folder")

-- }=====

os.execute("chmod -R u+rwx " .. q(tmp))
T.done()
