-- refract check: run a small end-to-end computation on the device and verify it
local refract = require("refract")

local d = refract.device()
print(string.format("device: %s (%s)", d.name, d.type))

-- (a + b) * c with broadcasting, checked against the same arithmetic in Lua.
local a = refract.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
local b = refract.tensor({ 10, 20, 30 })
local c = refract.tensor({ { 2 }, { -1 } })
local got = ((a + b) * c):totable()
local want = { { 22, 44, 66 }, { -14, -25, -36 } }
for i = 1, 2 do
  for j = 1, 3 do
    if got[i][j] ~= want[i][j] then
      error(string.format("check failed at [%d][%d]: got %g, want %g", i, j, got[i][j], want[i][j]))
    end
  end
end
print("compute check passed: broadcast add and multiply agree with the host")
