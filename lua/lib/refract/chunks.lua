-- refract.chunks: per-image results of a dataset run in numbered chunk files that make the
-- run resumable. Chunk k holds images [(k-1)*size + 1, k*size] of the dataset (1-based),
-- so its content never depends on where an earlier run stopped; each file is written to
-- a temporary name and renamed (refract.write does both), so a file that exists is whole.
-- A chunk also stores the sums over its images of the summed components, from which the
-- means over the dataset are rebuilt on resume.
local refract = require("refract")

local M = {}
M.__index = M

-- The dataset's paths [first, last] (1-based) as a list.
function M.paths(dataset, first, last)
  local list = {}
  for i = first, last do list[#list + 1] = dataset:path(i) end
  return list
end

local function file_of(self, k)
  return string.format("%s/part-%06d.safetensors", self.dir, k)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Opens (creating) the chunk folder for a run with these options; refuses a folder
-- written by a run with other options or another dataset.
function M.open(dir, dataset, size, metadata)
  os.execute(string.format("mkdir -p '%s'", dir:gsub("'", "'\\''")))
  local self = setmetatable({ dir = dir, dataset = dataset, size = size, metadata = {} }, M)
  for k, v in pairs(metadata) do self.metadata[k] = v end
  self.metadata.chunk_size = tostring(size)
  self.count = (#dataset + size - 1) // size
  for k = 1, self.count do
    local path = file_of(self, k)
    if exists(path) then self:check(k, path) end
  end
  return self
end

function M:first(k) return (k - 1) * self.size + 1 end
function M:last(k) return math.min(k * self.size, #self.dataset) end
function M:images_in(k) return self:last(k) - self:first(k) + 1 end

-- A chunk written earlier must come from the same options and the same images.
function M:check(k, path)
  local md = refract.metadata(path)
  for key, want in pairs(self.metadata) do
    if md[key] ~= want then
      error(string.format("%s was written by a run with %s = %s, not %s: use another --chunks "
        .. "folder or remove it", path, key, tostring(md[key]), tostring(want)), 0)
    end
  end
  local paths = refract.json_encode(M.paths(self.dataset, self:first(k), self:last(k)))
  if md.paths ~= paths then
    error(path .. " holds other images than the dataset has at these positions now: use "
      .. "another --chunks folder or remove it", 0)
  end
end

-- Whether chunk k has been written (by this run or an earlier one).
function M:done(k)
  return exists(file_of(self, k))
end

-- The sums stored in chunk k: component name -> tensor summed over the chunk's images.
function M:read_sums(k)
  local all = refract.read(file_of(self, k))
  local parts = {}
  for name, t in pairs(all) do
    local component = name:match("^sum_(.*)$")
    if component then parts[component] = t else t:free() end
  end
  return parts
end

-- Writes chunk k: per-image tensors of `names` (lists of per-batch host tensors
-- concatenated) and the sums of the summed components.
function M:write(k, collected, names)
  local out = {}
  for _, name in ipairs(names) do
    if collected[name] then out[name] = refract.cat(collected[name], 1) end
  end
  for _, name in ipairs({ "attn_spatial", "attn_heads", "mlps", "cls_attn" }) do
    if collected[name] then
      local all = out[name] or refract.cat(collected[name], 1)
      out["sum_" .. name] = all:sum(1)
      if not out[name] then all:free() end
    end
  end
  local md = {}
  for key, v in pairs(self.metadata) do md[key] = v end
  md.first = tostring(self:first(k))
  md.paths = refract.json_encode(M.paths(self.dataset, self:first(k), self:last(k)))
  refract.write(file_of(self, k), out, md)
  for _, t in pairs(out) do t:free() end
end

return M
