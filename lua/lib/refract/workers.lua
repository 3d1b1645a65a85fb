-- refract.workers: `refract decompose --devices LIST` as one worker process per device,
-- all on the same chunk queue. Each worker is `refract decompose ... --shard 1/1` with
-- REFRACT_DEVICE set: it takes the next chunk that nobody holds (per-chunk lock files),
-- so a slow or failed device never holds up the others, and a worker that dies leaves
-- its chunk to be taken over. The parent holds the folder's run lock and waits.
local refract = require("refract")

local M = {}

-- "all" or "0,2,3" (Vulkan device indices as `refract devices` lists them; an index
-- given twice runs two workers on that device) -> list of indices.
function M.parse(spec)
  local count = #refract.devices()
  if spec == "all" then
    local list = {}
    for i = 0, count - 1 do list[#list + 1] = i end
    if #list == 0 then error("--devices all: no Vulkan device found", 0) end
    return list
  end
  local list = {}
  for item in tostring(spec):gmatch("[^,]+") do
    local i = tonumber(item)
    if not i or i ~= math.floor(i) or i < 0 or i >= count then
      error(string.format("--devices: '%s' is not a device index (0..%d; see refract devices)", item,
        count - 1), 0)
    end
    list[#list + 1] = math.tointeger(i)
  end
  if #list == 0 then error("--devices needs all or a list of indices such as 0,1", 0) end
  return list
end

-- The script's arguments without the options in `drop` (each with its value), then `add`.
function M.arguments(args, drop, add)
  local out, i = {}, 1
  while i <= #args do
    local name = args[i]:match("^%-%-([%w%-_]+)$")
    if name and drop[name] then
      i = i + 2
    else
      out[#out + 1] = args[i]
      i = i + 1
    end
  end
  for _, a in ipairs(add) do out[#out + 1] = a end
  return out
end

-- Runs `refract COMMAND args...` once per device in `devices` and waits for all of them;
-- every half second, tick() (for progress). Raises an error naming the workers that
-- failed.
function M.run(command, args, devices, tick)
  local exe = refract.executable()
  local pids = {}
  for i, device in ipairs(devices) do
    local argv = { exe, command }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    pids[i] = refract.spawn(argv, { REFRACT_DEVICE = tostring(device), REFRACT_PROGRESS = "0" })
  end
  local failed, running = {}, #pids
  local ended = {}
  while running > 0 do
    for i, pid in ipairs(pids) do
      if not ended[i] then
        local how, code = refract.wait(pid, 0.5 / #pids)
        if how then
          ended[i] = true
          running = running - 1
          if how ~= "exit" or code ~= 0 then
            failed[#failed + 1] = string.format("device %d (%s %d)", devices[i],
              how == "exit" and "exit code" or "signal", code)
          end
        end
      end
    end
    tick()
  end
  if #failed > 0 then
    error("the workers on " .. table.concat(failed, ", ") .. " failed (their messages are above); "
      .. "finished chunks are kept: run the same command again to finish", 0)
  end
end

return M
