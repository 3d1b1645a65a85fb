-- Lock files (refract.lock): one holder at a time; a live holder's lock is respected;
-- a lock whose holder died (kill -9), whose pid was reused, that predates a reboot, or
-- that another host stopped renewing is taken over; a file that is not a lock is
-- neither trusted nor silently removed while fresh. Also refract.listdir, spawn, wait.
local refract = require("refract")
local T = require("testlib")

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")
local exe = refract.executable()

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

local function line_of(path)
  return (read_all(path) or ""):gsub("\n$", "")
end

-- One holder; a second try (even by the same process) gets nil and who holds it.
local path = tmp .. "/a.lock"
local a = refract.lock(path)
T.ok(a ~= nil, "a free lock is taken")
local me = line_of(path)
T.matches(me, "^pid=%d+ host=%S+ boot=%S+ start=%d+ token=%x+$", "the lock line")
local b, why = refract.lock(path)
T.ok(b == nil, "a held lock is not taken twice")
T.matches(why, "^held by pid %d+ on host %S+ %(renewed ", "who holds it")
T.ok(a:refresh(), "the holder's refresh says it still holds it")
a:release()
T.ok(read_all(path) == nil, "release removes the file")
T.ok(not a:refresh(), "a released lock is no longer held")
a:release()  -- twice is harmless

local host = me:match("host=(%S+)")
local boot = me:match("boot=(%S+)")
local token = string.rep("ab", 16)

-- A process that took a lock and was killed with -9: its lock is taken over.
local child = refract.spawn({ exe, "-e", string.format(
  "local l = require('refract').lock(%q); io.open(%q, 'w'):close(); require('refract').sleep(60)",
  path, tmp .. "/ready") })
for _ = 1, 500 do
  if read_all(tmp .. "/ready") then break end
  refract.sleep(0.02)
end
local held = refract.lock(path)
T.ok(held == nil, "a live child's lock is respected")
if held then held:release() end
refract.kill(child, "KILL")
T.eq(select(1, refract.wait(child)), "signal", "the child was killed")
T.ok(read_all(path) ~= nil, "kill -9 left the lock file")
local took = refract.lock(path)
T.ok(took ~= nil, "a dead process's lock is taken over")
T.eq(line_of(path):match("pid=(%d+)"), me:match("pid=(%d+)"), "the lock now names this process")
if took then took:release() end

-- A lock naming a live pid of this host whose process started at another time (the pid
-- was reused): stale. The same pid with its true start time: live.
local live_pid, live_start = me:match("pid=(%d+)"), me:match("start=(%d+)")
write_all(path, string.format("pid=%s host=%s boot=%s start=%d token=%s\n", live_pid, host, boot,
  tonumber(live_start) + 12345, token))
took = refract.lock(path)
T.ok(took ~= nil, "a reused pid's lock is taken over")
if took then took:release() end
write_all(path, string.format("pid=%s host=%s boot=%s start=%s token=%s\n", live_pid, host, boot,
  live_start, token))
T.ok(refract.lock(path) == nil, "a lock of a running process (this one) is respected")
os.remove(path)

-- Made on this host before a reboot (another boot id): stale.
write_all(path, string.format("pid=%s host=%s boot=another-boot start=%s token=%s\n", live_pid,
  host, live_start, token))
took = refract.lock(path)
T.ok(took ~= nil, "a lock from before a reboot is taken over")
if took then took:release() end

-- Another host's lock: respected while renewed within the timeout, stale after it.
write_all(path, string.format("pid=1 host=elsewhere-node boot=x start=1 token=%s\n", token))
T.ok(refract.lock(path, 600) == nil, "another host's fresh lock is respected")
os.execute(string.format("touch -d '-20 minutes' '%s'", path))
T.ok(refract.lock(path, 3600) == nil, "another host's lock renewed 20 min ago, timeout 1 h: respected")
took = refract.lock(path, 600)
T.ok(took ~= nil, "another host's lock not renewed for 20 min, timeout 10 min: taken over")
if took then took:release() end

-- REFRACT_LOCK_TIMEOUT sets the default timeout.
write_all(path, string.format("pid=1 host=elsewhere-node boot=x start=1 token=%s\n", token))
os.execute(string.format("touch -d '-90 seconds' '%s'", path))
local ok = os.execute(string.format("REFRACT_LOCK_TIMEOUT=60 '%s' -e 'assert(require(\"refract\").lock(%q))'",
  exe, path))
T.ok(ok, "REFRACT_LOCK_TIMEOUT=60 makes a lock renewed 90 s ago stale")
os.remove(path)

-- A file at the lock's place that is not a lock: an error while fresh, stale once old.
write_all(path, "not a lock\n")
T.fails(function() refract.lock(path) end, "is not a refract lock file")
os.execute(string.format("touch -d '-2 hours' '%s'", path))
took = refract.lock(path)
T.ok(took ~= nil, "an old file that is not a lock is taken over")
if took then took:release() end

-- Many processes racing for one stale lock: exactly one wins.
write_all(path, string.format("pid=1 host=elsewhere-node boot=x start=1 token=%s\n", token))
os.execute(string.format("touch -d '-2 hours' '%s'", path))
local racers = {}
for i = 1, 6 do
  racers[i] = refract.spawn({ exe, "-e", string.format([[
    local r = require("refract")
    local l = r.lock(%q)
    if l then io.open(%q .. "/won-" .. %d, "w"):close(); r.sleep(2) end]], path, tmp, i) })
end
for i = 1, 6 do T.eq({ refract.wait(racers[i]) }, { "exit", 0 }, "racer " .. i .. " ends cleanly") end
local won = 0
for _, name in ipairs(refract.listdir(tmp)) do
  if name:match("^won%-") then won = won + 1 end
end
T.eq(won, 1, "exactly one of 6 racers takes the stale lock")
local leftovers = {}
for _, name in ipairs(refract.listdir(tmp)) do
  if name:match("^a%.lock") then leftovers[#leftovers + 1] = name end
end
T.eq(leftovers, {}, "no lock files or temporaries left")

-- What killed lockers leave next to a lock (their private .new files, a .stale one) is
-- swept by the next process to take it; a live process's file is left alone.
os.remove(path)
write_all(path .. ".dead1.new", string.format("pid=1 host=elsewhere-node boot=x start=1 token=dead1\n"))
os.execute(string.format("touch -d '-2 hours' '%s.dead1.new'", path))
write_all(path .. ".dead2.stale", string.format("pid=%s host=%s boot=another-boot start=1 token=dead2\n", live_pid, host))
write_all(path .. ".empty.new", "")
os.execute(string.format("touch -d '-5 minutes' '%s.empty.new'", path))
write_all(path .. ".fresh.new", "")
write_all(path .. ".live.new", string.format("pid=%s host=%s boot=%s start=%s token=live\n", live_pid, host, boot, live_start))
took = refract.lock(path)
T.ok(took ~= nil, "the lock is taken")
local left = {}
for _, name in ipairs(refract.listdir(tmp)) do
  if name:match("^a%.lock%.") then left[#left + 1] = name end
end
T.eq(left, { "a.lock.fresh.new", "a.lock.live.new" }, "dead lockers' files swept, a live one's and a fresh one's kept")
if took then took:release() end
os.remove(path .. ".fresh.new")
os.remove(path .. ".live.new")

-- listdir: sorted names, no . and ..; errors name the folder.
os.execute(string.format("mkdir -p '%s/d' && touch '%s/d/b' '%s/d/a' '%s/d/C'", tmp, tmp, tmp, tmp))
T.eq(refract.listdir(tmp .. "/d"), { "C", "a", "b" }, "listdir in byte order")
T.fails(function() refract.listdir(tmp .. "/none") end, tmp .. "/none")

-- mkdir: parents made, an existing folder is fine, a name starting with '-' is a name
-- (`mkdir -p` through a shell took it for an option), and the errors name the path and why.
refract.mkdir(tmp .. "/m/n//o/")
T.eq(refract.file_type(tmp .. "/m/n/o"), "directory", "mkdir makes the parents")
refract.mkdir(tmp .. "/m/n/o")
os.execute(string.format("cd '%s' && '%s' -e 'refract.mkdir(\"-p\")'", tmp, refract.executable()))
T.eq(refract.file_type(tmp .. "/-p"), "directory", "mkdir of a name starting with '-'")
T.fails(function() refract.mkdir(tmp .. "/d/a/x") end, "mkdir: " .. tmp .. "/d/a/x: " .. tmp .. "/d/a is not a folder")
T.fails(function() refract.mkdir(tmp .. "/d/b") end, tmp .. "/d/b is not a folder")
T.fails(function() refract.mkdir("") end, "mkdir: an empty path names no folder")
T.fails(function() refract.mkdir("/proc/refract-x") end, "cannot create the folder /proc/refract-x: ")
T.fails(function() refract.mkdir(tmp .. "/x\0y") end, "holds a NUL byte")

-- spawn/wait: exit codes, signals, environment, timeouts.
local pid = refract.spawn({ "/bin/sh", "-c", 'test "$RF_X" = "1 2" && exit 7' }, { RF_X = "1 2" })
T.eq({ refract.wait(pid) }, { "exit", 7 }, "exit code and environment")
pid = refract.spawn({ "/bin/sleep", "30" })
T.eq({ refract.wait(pid, 0.1) }, {}, "still running after the timeout")
refract.kill(pid, "TERM")
T.eq({ refract.wait(pid) }, { "signal", 15 }, "killed by SIGTERM")
pid = refract.spawn({ tmp .. "/no-such-program" })
T.eq({ refract.wait(pid) }, { "exit", 127 }, "a missing program exits 127")
T.fails(function() refract.spawn({ "/bin/true", 3 }) end, "argument 2 is a number")
T.fails(function() refract.spawn({ "/bin/true" }, { ["A=B"] = "x" }) end, "bad environment variable name")
-- Process ids are checked before they are narrowed to a pid_t: 2^32 + 1 became pid 1
-- (init), 2^32 - 1 became -1 (every process); a NaN timeout waited forever. (The test
-- uses 2^32 + 2147483632, a pid no system hands out, so that it signals nothing if the
-- check is ever lost.)
local wrapped = (1 << 32) + 2147483632
T.fails(function() refract.kill(wrapped, "TERM") end, "a process id expected")
T.fails(function() refract.wait(wrapped, 0) end, "a process id expected")
local sleeper = refract.spawn({ "/bin/sleep", "30" })
T.fails(function() refract.wait(sleeper, 0 / 0) end, "timeout_s must be a number of seconds")
T.fails(function() refract.wait(sleeper, -1) end, "timeout_s must be a number of seconds")
T.eq(select("#", refract.wait(sleeper, 0)), 0, "still running after a timeout of 0")
refract.kill(sleeper, "KILL")
T.eq(select(1, refract.wait(sleeper)), "signal", "the sleeper was killed")
T.fails(function() refract.isatty((1 << 32) + 1) end, "a file descriptor (0..2^31-1) expected")
T.fails(function() refract.isatty(-1) end, "a file descriptor")
T.eq(refract.isatty(1 << 20), false, "a descriptor that is not open is no terminal")

os.execute("rm -rf '" .. tmp .. "'")
T.done()
