-- bench_table.lua FILE.json...: the README's performance tables from `refract bench vit
-- --peer torch --json FILE` results, one table per architecture and weight dtype, rows by
-- batch and method, in the order the files and their runs come. Run with the refract host:
--   build/refract scripts/dev/bench_table.lua b16.json l14.json
-- A peer column left empty means the peer did not run that method at that batch (the
-- command's --peer-method, or its `head` tensors did not fit the host's memory). A later
-- file's row for the same batch and method replaces an earlier one; a row that failed
-- says why (refract's message, e.g. that one image does not fit the device).

local PEER_NAME = { encode = "encode", heads = "`head_no_spatial`", spatial = "`head`" }

local function mib(bytes)
  if not bytes then return "" end
  return string.format("%s MiB", tostring(math.floor(bytes / 1048576 + 0.5)):reverse()
    :gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function rate(x)
  if not x then return "" end
  if x >= 10 then return string.format("%.1f", x) end
  return string.format(x >= 0.1 and "%.2f" or "%.4f", x)
end

local function ratio(x)
  if not x then return "" end
  return string.format(x >= 10 and "%.0fx" or "%.2fx", x)
end

-- peer / ours peak memory as "N x less" (ours smaller) or "N x more".
local function memory_ratio(x)
  if not x then return "" end
  if x >= 1 then return ratio(x) .. " less" end
  return ratio(1 / x) .. " more"
end

-- Groups every run by "arch dtype", keeping the order in which they first appear.
local function group(files)
  local groups, order, headers = {}, {}, {}
  for _, path in ipairs(files) do
    local result = refract.json_read(path)
    headers[#headers + 1] = { path = path, result = result }
    for _, run in ipairs(result.runs) do
      local key = run.arch .. ", " .. run.dtype .. " weights"
      if not groups[key] then
        groups[key] = { weight_bytes = run.weight_bytes, index = {} }
        order[#order + 1] = key
      end
      local g, id = groups[key], run.batch .. " " .. tostring(run.method)
      if g.index[id] then
        g[g.index[id]] = run      -- a later run of the same row replaces it
      else
        g[#g + 1] = run
        g.index[id] = #g
      end
    end
  end
  return groups, order, headers
end

local function print_table(title, runs)
  print(string.format("%s (%s on the device)", title, mib(runs.weight_bytes)))
  print()
  print("| batch | method (peer's) | ours img/s | peer img/s | ours / peer | vs our encode | ours, peak above weights | peer's | memory |")
  print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  local f32 = runs[1].dtype == "f32"
  for _, r in ipairs(runs) do
    local peer = r.peer or {}
    if r.ours and r.ours.error then
      -- What refract said, without the Lua location and the advice; e.g. that one image
      -- does not fit.
      local why = r.ours.error:gsub("^.-:%d+: ", ""):gsub("^run: ", ""):gsub(": nothing fits.*$", "")
      print(string.format("| %d | %s | %s |  |  |  |  |  |  |", r.batch, r.method, why))
      goto continue
    end
    print(string.format("| %d | %s (%s) | %s | %s | %s | %s | %s | %s | %s |",
      r.batch, r.method, PEER_NAME[r.method] or r.method, rate(r.ours.images_per_s),
      rate(peer.images_per_s), ratio(r.speed_ratio), ratio(r.x_encode),
      mib(r.ours.device_peak), f32 and mib(peer.peak_above_weights) or "", f32 and memory_ratio(r.memory_ratio) or ""))
    ::continue::
  end
  if not f32 then
    print()
    print("The peer's memory is left out with f16 weights: its resident set already holds the "
      .. "float32 copies it widens them into, which its allocator reuses, so its growth above "
      .. "that level is not what it needs.")
  end
  print()
end

local files = { ... }
if #files == 0 then
  io.stderr:write("usage: refract scripts/dev/bench_table.lua FILE.json...\n")
  os.exit(2)
end
local groups, order, headers = group(files)
for _, h in ipairs(headers) do
  local r = h.result
  print(string.format("<!-- %s: %s, LP_NUM_THREADS=%s, load %s..%s -->", h.path, r.device.name,
    tostring(r.lp_num_threads), table.concat(r.load_average.start, " "),
    table.concat(r.load_average.finish, " ")))
end
print()
for _, key in ipairs(order) do print_table(key, groups[key]) end
