-- testlib: assertions for Lua tests run by `refract` under ctest (exit 1 on failure).
local M = { failures = 0, checks = 0 }

local function show(v)
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for i, x in ipairs(v) do parts[i] = show(x) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function deep_eq(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do if not deep_eq(a[i], b[i]) then return false end end
  for k, v in pairs(a) do if type(k) ~= "number" and not deep_eq(v, b[k]) then return false end end
  return true
end

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

function M.near(got, want, tol, what)
  M.checks = M.checks + 1
  if type(got) == "table" then
    for i = 1, math.max(#got, #want) do
      if type(got[i]) == "table" then M.near(got[i], want[i], tol, what)
      elseif got[i] == nil or want[i] == nil or math.abs(got[i] - want[i]) > tol then
        fail(string.format("%s[%d]: got %s, want %s (tol %g)", what or "", i, tostring(got[i]),
          tostring(want[i]), tol))
        return
      end
    end
  elseif math.abs(got - want) > tol then
    fail(string.format("%sgot %.9g, want %.9g (tol %g)", what and (what .. ": ") or "", got, want, tol))
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

function M.done()
  collectgarbage()
  print(string.format("%d checks, %d failed", M.checks, M.failures))
  if M.failures > 0 then os.exit(1) end
end

return M
