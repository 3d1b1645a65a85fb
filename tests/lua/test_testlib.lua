-- The test library's own checks can fail: T.near fails on NaN (got or wanted) and past
-- the tolerance, T.eq's deep_eq sees keys missing on either side, T.refused tells a
-- refused command from a crash. Each failing check is run with its report silenced and
-- its failure taken back, so only this file's own verdicts count.
local T = require("testlib")

-- f() must record exactly one failure (which is then taken back); `what` names the case.
local function must_fail(what, f)
  local before, stderr = T.failures, io.stderr
  io.stderr = { write = function() end }
  f()
  io.stderr = stderr
  local failed = T.failures - before
  T.failures = before
  T.ok(failed == 1, what .. " must fail")
end

local nan, inf = 0 / 0, math.huge

-- T.near
T.near(1.0, 1.0 + 1e-7, 1e-6, "within the tolerance")
T.near({ 1, { 2, 3 } }, { 1, { 2, 3 + 1e-9 } }, 1e-6, "nested tables")
T.near(inf, inf, 0, "infinity matches itself")
T.near(nan, nan, 0, "a wanted NaN matches NaN")
must_fail("NaN got", function() T.near(nan, 1, 1e-3) end)
must_fail("NaN want", function() T.near(1, nan, 1e-3) end)
must_fail("NaN in a table", function() T.near({ 1, nan }, { 1, 2 }, 1e-3) end)
must_fail("NaN in a nested table", function() T.near({ { nan } }, { { 0 } }, 1) end)
must_fail("past the tolerance", function() T.near(1, 1.1, 0.05) end)
must_fail("infinity vs a number", function() T.near(inf, 1e300, 1e300) end)
must_fail("a missing element", function() T.near({ 1, 2 }, { 1, 2, 3 }, 1) end)
must_fail("not a number", function() T.near("1", 1, 1) end)

-- T.eq / deep_eq
T.eq({ a = 1, 2, { b = 3 } }, { a = 1, 2, { b = 3 } }, "same keys, same values")
must_fail("a key only in got", function() T.eq({ a = 1, b = 2 }, { a = 1 }) end)
must_fail("a key only in want", function() T.eq({ a = 1 }, { a = 1, b = 2 }) end)
must_fail("a nested missing key", function() T.eq({ x = { 1 } }, { x = { 1, y = 0 } }) end)
must_fail("a longer list", function() T.eq({ 1, 2, 3 }, { 1, 2 }) end)
must_fail("a hole past the end", function() T.eq({ 1, [5] = 5 }, { 1 }) end)
must_fail("different types", function() T.eq(1, "1") end)

-- T.refused on made-up results of T.run
T.refused({ how = "exit", code = 1, err = "refract: bad thing\n" }, "bad thing", "a refusal")
must_fail("a signal", function() T.refused({ how = "signal", code = 11, err = "refract: bad thing" }, "bad") end)
must_fail("a shell's 128 + signal", function() T.refused({ how = "exit", code = 139, err = "refract: bad" }, "bad") end)
must_fail("success", function() T.refused({ ok = true, how = "exit", code = 0, err = "" }, "") end)
must_fail("no message", function() T.refused({ how = "exit", code = 1, err = "" }, "bad thing") end)
must_fail("a sanitizer report", function()
  T.refused({ how = "exit", code = 1, err = "refract: bad\n==1==ERROR: AddressSanitizer: SEGV" }, "bad")
end)

-- T.run and T.tmp on a real shell
local r = T.run("echo out; echo err >&2; exit 3")
T.eq({ ok = r.ok or false, how = r.how, code = r.code, out = r.out, err = r.err },
  { ok = false, how = "exit", code = 3, out = "out\n", err = "err\n" }, "T.run")
r = T.run("kill -SEGV $$")
T.ok(r.how == "signal" or r.code > 128, "a killed command shows its signal")
must_fail("a killed command", function() T.refused(r, "") end)
local path = T.tmp("x.txt")
local f = assert(io.open(path, "w"))
f:write("bytes")
f:close()
T.eq(T.read_file(path), "bytes")
T.eq(T.read_file(T.tmp("missing")), nil)
T.eq(T.count({ 1, 2, a = 3 }), 3)

T.done()
