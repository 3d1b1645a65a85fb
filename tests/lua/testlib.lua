-- testlib: assertions for Lua tests run by `refract` under ctest (exit 1 on failure), and
-- one scratch folder per test run (T.tmp), removed by T.done.
local M = { failures = 0, checks = 0 }

-- A value as text: list elements in order, then the other keys sorted (k = v).
local function show(v)
  if type(v) ~= "table" then return type(v) == "string" and string.format("%q", v) or tostring(v) end
  local parts, keys = {}, {}
  for i, x in ipairs(v) do parts[i] = show(x) end
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= #parts) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. " = " .. show(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- Equal values, and for tables the same keys on both sides with equal values.
local function deep_eq(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.deep_eq = deep_eq

local function fail(msg)
  M.failures = M.failures + 1
  io.stderr:write(debug.traceback("FAIL: " .. msg, 3), "\n")
end

function M.eq(got, want, what)
  M.checks = M.checks + 1
  if not deep_eq(got, want) then
    fail(string.format("%sgot %s, want %s", what and (what .. ": ") or "", show(got), show(want)))
  end
end

function M.ok(cond, what)
  M.checks = M.checks + 1
  if not cond then fail(what or "condition is false") end
end

-- |got - want| <= tol, written so that NaN fails (every comparison with NaN is false);
-- NaN matches only a wanted NaN, and infinities only themselves.
local function close(got, want, tol)
  if type(got) ~= "number" or type(want) ~= "number" then return false end
  if want ~= want then return got ~= got end
  return got == want or math.abs(got - want) <= tol
end
M.close = close

function M.near(got, want, tol, what)
  M.checks = M.checks + 1
  if type(got) == "table" and type(want) == "table" then
    for i = 1, math.max(#got, #want) do
      if type(got[i]) == "table" then M.near(got[i], want[i], tol, what)
      elseif not close(got[i], want[i], tol) then
        fail(string.format("%s[%d]: got %s, want %s (tol %g)", what or "", i, tostring(got[i]),
          tostring(want[i]), tol))
        return
      end
    end
  elseif not close(got, want, tol) then
    fail(string.format("%sgot %s, want %s (tol %g)", what and (what .. ": ") or "",
      type(got) == "number" and string.format("%.9g", got) or show(got),
      type(want) == "number" and string.format("%.9g", want) or show(want), tol))
  end
end

function M.matches(s, pattern, what)
  M.checks = M.checks + 1
  if type(s) ~= "string" or not s:find(pattern) then
    fail(string.format("%s%q does not match %q", what and (what .. ": ") or "", tostring(s), pattern))
  end
end

-- The call must raise an error whose message contains `needle` (plain text).
function M.fails(f, needle)
  M.checks = M.checks + 1
  local ok, err = pcall(f)
  if ok then
    fail("expected an error containing " .. string.format("%q", needle))
  elseif not tostring(err):find(needle, 1, true) then
    fail(string.format("error %q lacks %q", tostring(err), needle))
  end
end

-- T.count(t) -> the number of keys of t (any keys, not only 1..n).
function M.count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- {===== scratch files

local scratch    -- this run's folder, made on first use

-- T.tmp(name) -> a path `name` inside a folder of this test run's own (made on first
-- use); T.tmp() -> the folder. T.done removes the folder and everything in it.
function M.tmp(name)
  if not scratch then
    scratch = os.tmpname()   -- a new empty file: its unique name becomes the folder's
    os.remove(scratch)
    assert(os.execute("mkdir -p '" .. scratch .. "'"), "cannot make a scratch folder " .. scratch)
  end
  return name and (scratch .. "/" .. name) or scratch
end

-- T.read_file(path) -> the file's bytes, or nil if it cannot be opened.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- {===== commands

local runs = 0

-- T.run(command) -> { ok, how, code, out, err }: runs a shell command with its stdout and
-- stderr captured in the scratch folder; ok, how ("exit" or "signal") and code are what
-- os.execute returns.
function M.run(command)
  runs = runs + 1
  local out, err = M.tmp("run" .. runs .. ".out"), M.tmp("run" .. runs .. ".err")
  local ok, how, code = os.execute(string.format("{ %s\n} > '%s' 2> '%s'", command, out, err))
  return { ok = ok, how = how, code = code, out = M.read_file(out) or "", err = M.read_file(err) or "" }
end

-- A failed T.run result must be a refused command, not a crash: exit status 1 (not a
-- signal, nor a shell's 128 + signal), a message on stderr containing `needle` (plain
-- text), and no sanitizer report (ASan exits 1 after a crash too).
function M.refused(r, needle, what)
  what = what and (what .. ": ") or ""
  M.checks = M.checks + 1
  if r.how ~= "exit" or r.code ~= 1 then
    fail(string.format("%sexpected exit status 1, got %s %s; stderr: %s", what, tostring(r.how),
      tostring(r.code), r.err))
  elseif not r.err:find(needle, 1, true) then
    fail(string.format("%sstderr %q lacks %q", what, r.err, needle))
  elseif r.err:find("Sanitizer", 1, true) or r.err:find("runtime error:", 1, true) then
    fail(string.format("%sa sanitizer report on stderr: %s", what, r.err))
  end
end

-- }=====

function M.done()
  collectgarbage()
  if scratch then os.execute("rm -rf '" .. scratch .. "'") end
  print(string.format("%d checks, %d failed", M.checks, M.failures))
  if M.failures > 0 then os.exit(1) end
end

return M
