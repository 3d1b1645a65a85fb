-- refract.merge: one output file from a --chunks folder (refract merge, and the means a
-- chunked `refract decompose` writes). The means are rebuilt from the chunks' stored sums
-- in chunk order, and the per-image tensors concatenated in chunk order, so the file does
-- not depend on which processes, GPUs or machines made the chunks, nor in what order.
-- Nothing is merged unless every chunk is there once, whole (its SHA-256 matches) and
-- made by the same run (its metadata carries the folder's run record).
local refract = require("refract")
local chunks = require("refract.chunks")
local output = require("refract.output")

local M = {}

local exists = chunks.exists

-- "3, 7, 12" for a list of chunk numbers (at most `max` of them, then "and N more").
local function numbers(list, max)
  max = max or 20
  local shown = {}
  for i = 1, math.min(#list, max) do shown[i] = tostring(list[i]) end
  local s = table.concat(shown, ", ")
  if #list > max then s = s .. string.format(" and %d more", #list - max) end
  return s
end

-- Checks the folder; returns the record, the chunk count and each chunk's metadata, or
-- raises one error that names every problem found.
function M.check(dir)
  local record, why = chunks.read_record(dir)
  if not record then error("merge: " .. why, 0) end
  local size, images = tonumber(record.chunk_size), tonumber(record.images)
  if not size or size < 1 or not images or images < 1 then
    error("merge: " .. dir .. "/run.json: bad chunk_size or images", 0)
  end
  local count = (images + size - 1) // size
  local missing, unfinished, corrupt, foreign, misplaced = {}, {}, {}, {}, {}
  local metadata = {}
  for k = 1, count do
    local file = chunks.file_of(dir, k)
    if not exists(file) then
      missing[#missing + 1] = k
    else
      local ok, problem = chunks.verify(dir, k)
      if problem then
        corrupt[#corrupt + 1] = problem
      elseif not ok then
        unfinished[#unfinished + 1] = k
      else
        local md = refract.metadata(file)
        local key, was, want = chunks.record_difference(md, record, chunks.chunk_keys)
        if key then
          foreign[#foreign + 1] = string.format("%s (%s = %s, the run's is %s)", file, key,
            tostring(was), tostring(want))
        elseif md.first ~= tostring((k - 1) * size + 1) then
          misplaced[#misplaced + 1] = string.format("%s (it holds the chunk from image %s)", file,
            tostring(md.first))
        end
        metadata[k] = md
      end
    end
  end
  -- Chunk files under other names (copies, numbers past the end): duplicates or strays.
  local extra = {}
  for _, name in ipairs(refract.listdir(dir)) do
    local n = name:match("^part%-(%d+).*%.safetensors$")
    if n and name ~= string.format("part-%06d.safetensors", tonumber(n)) or
       (n and tonumber(n) > count) then
      extra[#extra + 1] = dir .. "/" .. name
    end
  end
  local problems = {}
  if #missing > 0 then
    problems[#problems + 1] = string.format("missing chunks (of %d): %s; run the shards that make "
      .. "them (chunk k belongs to shard ((k-1) mod N) + 1 of N), or a run without --shard", count,
      numbers(missing))
  end
  if #unfinished > 0 then
    problems[#problems + 1] = "chunks without their checksum file (being written, or their run "
      .. "was killed): " .. numbers(unfinished)
  end
  for _, p in ipairs(corrupt) do problems[#problems + 1] = p end
  for _, p in ipairs(foreign) do problems[#problems + 1] = "from another run: " .. p end
  for _, p in ipairs(misplaced) do problems[#problems + 1] = "in the wrong place: " .. p end
  for _, p in ipairs(extra) do
    problems[#problems + 1] = "duplicated or stray chunk file: " .. p .. " (only part-NNNNNN.safetensors "
      .. "for chunks 1.." .. count .. " belong here)"
  end
  if #problems > 0 then
    error("merge: cannot merge " .. dir .. ":\n  " .. table.concat(problems, "\n  "), 0)
  end
  return record, count, metadata
end

-- Refuses an output that would replace a file of the --chunks folder `dir` (a chunk, its
-- checksum or the run record): `merge --out DIR/part-000001.safetensors` overwrote a
-- finished chunk, and the folder then read as other numbers. The folder is recognised by
-- its run.json, however the path to it is spelt.
function M.check_out(dir, out)
  local folder, name = out:match("^(.*)/([^/]*)$")
  folder, name = folder or ".", name or out
  if folder == "" then folder = "/" end
  local ours = name:match("^part%-%d+") or name == "run.json" or name:match("%.lock$")
  if not ours then return end
  local same = folder:gsub("/+$", "") == dir:gsub("/+$", "")   -- before the folder has a record
  if not same and refract.file_type(folder .. "/run.json") == "file" and
     refract.file_type(dir .. "/run.json") == "file" then
    same = refract.sha256(folder .. "/run.json") == refract.sha256(dir .. "/run.json")
  end
  if same then
    error(string.format("--out %s would replace a file of the chunks folder %s: write it elsewhere",
      out, dir), 0)
  end
end

-- Writes `out` (.safetensors or .npz): the means over every image (from the chunks' sums, in chunk order) and
-- `count`, and unless mean_only the per-image tensors of every chunk concatenated, with
-- the run's record as metadata (plus `paths` of the rows and `skipped`, when any).
-- Returns the number of images and of chunks.
function M.write(dir, out, mean_only)
  M.check_out(dir, out)
  local record, count, metadata = M.check(dir)
  local names = mean_only and {} or chunks.per_image_names(record)
  if not mean_only and #names == 0 then
    error("merge: " .. dir .. " holds only sums (it was made with --mean-only): use --mean-only", 0)
  end
  local sums, parts, rows, skipped = {}, {}, {}, {}
  for _, name in ipairs(names) do parts[name] = {} end
  for k = 1, count do
    local file, md = chunks.file_of(dir, k), metadata[k]
    local chunk_rows = refract.json_decode(md.paths)
    for _, p in ipairs(chunk_rows) do rows[#rows + 1] = p end
    for _, s in ipairs(md.skipped and refract.json_decode(md.skipped) or {}) do skipped[#skipped + 1] = s end
    if #chunk_rows > 0 then
      for _, name in ipairs(chunks.summed_names(record)) do
        local s = refract.read(file, "sum_" .. name)
        if sums[name] then
          local new = sums[name] + s
          sums[name]:free()
          s:free()
          sums[name] = new
        else
          sums[name] = s
        end
      end
      for _, name in ipairs(names) do
        local t = refract.read(file, name)
        table.insert(parts[name], t:host())
        t:free()
      end
    end
  end
  if #rows == 0 then error("merge: " .. dir .. ": every image was skipped; nothing to merge", 0) end
  local result = {}
  for name, s in pairs(sums) do
    result["mean_" .. name] = s / #rows
    s:free()
  end
  result.count = refract.tensor({ #rows }, "i64")
  for _, name in ipairs(names) do
    result[name] = refract.cat(parts[name], 1)
    for _, t in ipairs(parts[name]) do t:free() end
  end
  local md = {}
  for key, v in pairs(record) do md[key] = v end
  if not mean_only then md.paths = refract.json_encode(rows) end
  if #skipped > 0 then md.skipped = refract.json_encode(skipped) end
  output.write_tensors(out, result, md)
  for _, t in pairs(result) do t:free() end
  return #rows, count
end

return M
