-- refract.progress: a one-line progress report (done/total, images/s, ETA) on a terminal.
-- Off the terminal it prints nothing until `finish`, so logs stay clean; nor does it with
-- REFRACT_PROGRESS=0 (the workers of `decompose --devices`, whose parent shows progress).
local refract = require("refract")

local M = {}
M.__index = M

function M.new(total, what)
  return setmetatable({ total = total, what = what or "images", start = refract.clock(),
                        done = 0, tty = refract.isatty(2) and os.getenv("REFRACT_PROGRESS") ~= "0",
                        last = 0 }, M)
end

local function duration(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, s % 3600 // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end

-- Adds n finished items; redraws at most ten times a second.
function M:add(n)
  self.done = self.done + n
  local now = refract.clock()
  if not self.tty or (now - self.last < 0.1 and self.done < self.total) then return end
  self.last = now
  local rate = self.done / math.max(now - self.start, 1e-9)
  io.stderr:write(string.format("\r%d/%d %s  %.2f %s/s  ETA %s   ", self.done, self.total,
    self.what, rate, self.what, duration((self.total - self.done) / rate)))
  io.stderr:flush()
end

-- Ends the line; returns the elapsed seconds and the rate.
function M:finish()
  local elapsed = refract.clock() - self.start
  if self.tty then io.stderr:write("\n") end
  return elapsed, self.done / math.max(elapsed, 1e-9)
end

return M
