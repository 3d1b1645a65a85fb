-- refract.chunks: per-image results of a dataset run in numbered chunk files. They make
-- a run resumable, let processes on one machine or many (GPUs, cluster nodes) share the
-- work, and merge into one file byte for byte as one uninterrupted run writes it.
--
-- A --chunks folder DIR holds
--   run.json                 the run's record: every option that changes a chunk's bytes
--                            (written by the first process; later ones must match it)
--   run.lock                 held by a plain run (no --shard) as long as it runs
--   part-NNNNNN.safetensors  chunk k: images (k-1)*size+1 .. min(k*size, n) (1-based)
--   part-NNNNNN.sha256       the chunk's SHA-256 (`sha256sum -c` reads it in DIR), written
--                            after the chunk: a chunk counts as finished once it is there
--   part-NNNNNN.lock         held by the process computing chunk k (refract.lock)
-- Chunk k's content never depends on which process made it or where an earlier run
-- stopped. Every file is written to a new temporary file and renamed (refract.write), so
-- a file that exists is whole; a checksum that does not match names the chunk, which a
-- later run computes again and `refract merge` refuses.
local refract = require("refract")
local provenance = require("refract.provenance")
local data = require("refract.data")
local kept_paths = require("refract.batches").kept_paths

local M = {}
M.__index = M

-- The components whose sums over a chunk's images are stored (sum_NAME), for the means.
M.summed = { "attn_spatial", "attn_heads", "mlps", "cls_attn" }
-- Seconds between looks at chunks that other processes are computing.
M.poll = 0.5

-- Keys of the record that describe rather than identify (a model or projection file may
-- sit at other paths on other machines; its checksum is what must agree).
local descriptive = { model = true, project = true }

-- Whether anything is at `path`, without opening it: io.open waits forever on a FIFO, and
-- says "missing" of a file it may not read (which then read as an unfinished chunk and
-- was written over). What is there is read through refract's readers, whose errors name
-- the path and the problem.
function M.exists(path)
  return refract.file_type(path) ~= nil
end
local exists = M.exists

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- JSON of a string -> string table with sorted keys, as a list of pairs: json_encode
-- writes an object's keys in table order, which changes from run to run.
local function sorted_pairs_json(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  local list = {}
  for i, k in ipairs(keys) do list[i] = { k, map[k] } end
  return refract.json_encode(list)
end

-- A string -> string table as a JSON object with sorted keys, one per line (the same
-- bytes for the same record).
local function record_json(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = {}
  for i, k in ipairs(keys) do
    lines[i] = "  " .. refract.json_encode(k) .. ": " .. refract.json_encode(map[k])
  end
  return "{\n" .. table.concat(lines, ",\n") .. "\n}\n"
end

function M.file_of(dir, k) return string.format("%s/part-%06d.safetensors", dir, k) end
local function sum_of(dir, k) return string.format("%s/part-%06d.sha256", dir, k) end
local function lock_of(dir, k) return string.format("%s/part-%06d.lock", dir, k) end

-- The per-image tensors a run with this record writes (none with --mean-only).
function M.per_image_names(record)
  if record.mean_only == "true" then return {} end
  local names = { "attn_heads", "mlps", "cls_attn", "ln_post_mean", "ln_post_std", "image_embeds" }
  if record.spatial == "true" then table.insert(names, 1, "attn_spatial") end
  return names
end

-- The components summed in every chunk of a run with this record.
function M.summed_names(record)
  local names = {}
  for _, name in ipairs(M.summed) do
    if name ~= "attn_spatial" or record.spatial == "true" then names[#names + 1] = name end
  end
  return names
end

-- "K/N" -> K, N (1 <= K <= N), or an error. Shard K of N does the chunks k with
-- k ≡ K (mod N), i.e. k = K, K + N, K + 2N, ... (chunks and shards counted from 1).
function M.parse_shard(spec)
  local k, n = tostring(spec):match("^(%d+)/(%d+)$")
  k, n = tonumber(k), tonumber(n)
  if not k or k < 1 or n < k then
    error("--shard must be K/N with 1 <= K <= N (shard K does chunks K, K+N, K+2N, ...), not "
      .. tostring(spec), 0)
  end
  return k, n
end

-- The SHA-256 of the model's files and of a projection file (nil: none), as run.json
-- records them. Taken before they are loaded and again in M.record, so that files
-- replaced while loading cannot go into run.json as what the chunks were made with.
function M.fingerprint(model_dir, project_file)
  return {
    model_sha256 = sorted_pairs_json(provenance.model(model_dir).files),
    project_sha256 = project_file and refract.sha256(provenance.file_of(project_file)) or nil,
  }
end

-- What a run's chunks are made with: decompose's metadata `base` plus the rest of what
-- changes their bytes (`extra`: chunk_size, batch, dtype, ... as strings) and the
-- fingerprint of the model's files and of a projection file, which must still be
-- `before` (M.fingerprint taken before they were loaded).
function M.record(base, extra, model_dir, project_file, before)
  local rec = copy(base)
  for k, v in pairs(extra) do rec[k] = v end
  rec.format = "refract-chunks-1"
  local now = M.fingerprint(model_dir, project_file)
  for _, key in ipairs({ "model_sha256", "project_sha256" }) do
    if before[key] ~= now[key] then
      error(string.format("%s changed while it was being loaded: the chunks could not say which "
        .. "version they were made with; run again", key == "model_sha256" and "the model in " .. model_dir
        or project_file), 0)
    end
  end
  rec.model_sha256, rec.project_sha256 = now.model_sha256, now.project_sha256
  return rec
end

-- Takes `path`'s lock, waiting while another process holds it (for locks held a moment).
local function lock_briefly(path)
  for _ = 1, 2400 do
    local lock = refract.lock(path)
    if lock then return lock end
    refract.sleep(0.05)
  end
  error(path .. ": held for over two minutes by another process", 0)
end

-- The record in DIR/run.json, or nil and why not.
function M.read_record(dir)
  local path = dir .. "/run.json"
  if not exists(path) then
    return nil, path .. " is missing: " .. dir .. " is not a chunk folder of refract decompose "
      .. "--chunks (or was made by an older refract)"
  end
  local ok, rec = pcall(refract.json_read, path)
  if not ok or type(rec) ~= "table" then return nil, path .. ": not a run record: " .. tostring(rec) end
  for k, v in pairs(rec) do
    if type(v) ~= "string" then return nil, path .. ": entry " .. tostring(k) .. " is not a string" end
  end
  return rec
end

-- Keys of a chunk's metadata that are its own, not the run's.
M.chunk_keys = { first = true, paths = true, skipped = true }

-- The first key on which two records differ (descriptive keys and those in `ignore`
-- aside), with both values.
function M.record_difference(a, b, ignore)
  local keys = {}
  for k in pairs(a) do keys[#keys + 1] = k end
  for k in pairs(b) do if a[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not descriptive[k] and not (ignore and ignore[k]) and a[k] ~= b[k] then return k, a[k], b[k] end
  end
end

-- Opens (creating) the chunk folder for a run with this record over `dataset`. A plain
-- run (opts.plain) holds DIR/run.lock until it ends, so a second plain run on the same
-- folder fails at once; shards (--shard) share the folder, chunk by chunk.
function M.open(dir, dataset, record, opts)
  data.make_dir(dir, "--chunks")
  local self = setmetatable({ dir = dir, dataset = dataset, verified = {}, warned = {} }, M)
  if opts.plain then
    local lock, holder = refract.lock(dir .. "/run.lock")
    if not lock then
      error(string.format("%s is in use by another run (its run.lock is %s): wait for it to finish, "
        .. "or share the work between runs with --shard K/N", dir, holder), 0)
    end
    self.run_lock = lock
  end
  local path = dir .. "/run.json"
  do
    -- Taken even when run.json exists: that also clears what a killed run left.
    local lock <close> = lock_briefly(dir .. "/run.json.lock")
    if not exists(path) then
      -- Whoever holds the lock is run.json's only writer: temporary files of a writer
      -- that was killed can go.
      for _, name in ipairs(refract.listdir(dir)) do
        if name:match("^run%.json%..*tmp$") then os.remove(dir .. "/" .. name) end
      end
      refract.write_text(path, record_json(record))
    end
  end
  local stored, why = M.read_record(dir)
  if not stored then error(why, 0) end
  local key, was, now = M.record_difference(stored, record)
  if key then
    local hint = key == "batch" and " (pass --batch " .. tostring(was) .. ")" or ""
    error(string.format("%s was made by a run with %s = %s, not %s: give the same options%s, "
      .. "or use another --chunks folder", path, key, tostring(was), tostring(now), hint), 0)
  end
  -- Chunks carry the stored record, whoever makes them, so they are the same bytes.
  self.record = stored
  self.size = tonumber(stored.chunk_size)
  self.count = (#dataset + self.size - 1) // self.size
  return self
end

-- Renews this process's locks: a chunk's (if given) and the folder's run lock. Other
-- hosts count locks not renewed within REFRACT_LOCK_TIMEOUT as abandoned.
function M:renew(lock)
  if lock then lock:refresh() end
  if self.run_lock then self.run_lock:refresh() end
end

-- Releases the folder's run lock (also at exit).
function M:close()
  if self.run_lock then self.run_lock:release() end
  self.run_lock = nil
end

function M:first(k) return (k - 1) * self.size + 1 end
function M:last(k) return math.min(k * self.size, #self.dataset) end
function M:images_in(k) return self:last(k) - self:first(k) + 1 end

-- Checks chunk k's file against the record and the dataset: it must hold the images the
-- dataset has at its positions now, made with the same options.
function M:check(k)
  local path = M.file_of(self.dir, k)
  local md = refract.metadata(path)
  local key, was, now = M.record_difference(md, self.record, M.chunk_keys)
  if key then
    error(string.format("%s was written by a run with %s = %s, not %s: use another --chunks "
      .. "folder or remove it", path, key, tostring(was), tostring(now)), 0)
  end
  local skipped = md.skipped and refract.json_decode(md.skipped) or {}
  local rows = refract.json_encode(kept_paths(self.dataset, skipped, self:first(k), self:last(k)))
  if md.first ~= tostring(self:first(k)) or md.paths ~= rows then
    error(path .. " holds other images than the dataset has at these positions now: use "
      .. "another --chunks folder or remove it", 0)
  end
end

-- Whether chunk k is finished and its SHA-256 matches (nil, problem when it does not).
function M.verify(dir, k)
  local file, side = M.file_of(dir, k), sum_of(dir, k)
  if not exists(file) or not exists(side) then return false end
  local ok, text = pcall(refract.read_file, side, 4096)
  if not ok then error((tostring(text):gsub("^read_file: ", "")), 0) end
  local want = text:match("^(%x+)")
  local got = refract.sha256(file)
  if got ~= want then
    return nil, string.format("%s fails its checksum: its SHA-256 is %s, %s records %s", file, got,
      side, tostring(want))
  end
  return true
end

-- Whether chunk k is finished (checked once per process). A chunk whose checksum fails
-- is reported and counts as not finished, so it is computed again.
function M:done(k)
  if self.verified[k] then return true end
  local ok, problem = M.verify(self.dir, k)
  if ok then
    self:check(k)
    self.verified[k] = true
    return true
  end
  if problem and not self.warned[k] then
    self.warned[k] = true
    io.stderr:write("refract: ", problem, ": it will be computed again\n")
  end
  return false
end

-- How many chunks have their checksum file (finished, as far as a listing tells).
function M:finished()
  local n = 0
  for _, name in ipairs(refract.listdir(self.dir)) do
    if name:match("^part%-%d+%.sha256$") then n = n + 1 end
  end
  return n
end

-- The chunks with a lock file or a locker's private file next to it ("part-NNNNNN.lock*").
local function chunks_with_locks(dir)
  local set = {}
  for _, name in ipairs(refract.listdir(dir)) do
    local k = name:match("^part%-(%d+)%.lock")
    if k then set[tonumber(k)] = true end
  end
  return set
end

-- Clears what processes killed around finished chunk k left: its lock, taken after the
-- checksum file was written, or lockers' private files (taking the lock sweeps them; a
-- live holder's lock stays: it is about to release it).
local function tidy(self, k)
  local ok, lock = pcall(refract.lock, lock_of(self.dir, k))
  if ok and lock then lock:release() end
end

-- Chunk k's lock when this process may compute it; nil when it is finished or another
-- live process holds it. Clears what an earlier attempt may have left.
function M:claim(k)
  local lock = refract.lock(lock_of(self.dir, k))
  if not lock then return nil end
  if self:done(k) then
    lock:release()
    return nil
  end
  local prefix = string.format("part-%06d.", k)
  for _, name in ipairs(refract.listdir(self.dir)) do
    if name:sub(1, #prefix) == prefix and name:match("%.tmp$") then os.remove(self.dir .. "/" .. name) end
  end
  os.remove(sum_of(self.dir, k))
  return lock
end

-- Iterates over the chunks of shard `shard` of `shards` (1/1: all) that this process
-- computes: k, lock. Finished chunks are passed to on_done(images); chunks that other
-- live processes hold are waited for, and taken over if their holder dies. Ends when
-- every chunk of the shard is finished.
function M:claims(shard, shards, on_done)
  return coroutine.wrap(function()
    local pending = {}
    for k = shard, self.count, shards do pending[#pending + 1] = k end
    local first_pass = true
    while #pending > 0 do
      if not first_pass then
        refract.sleep(M.poll)
        self:renew()
      end
      first_pass = false
      local still, locked = {}, chunks_with_locks(self.dir)
      for _, k in ipairs(pending) do
        if self:done(k) then
          if locked[k] then tidy(self, k) end
          on_done(self:images_in(k))
        else
          local lock = self:claim(k)
          if lock then
            coroutine.yield(k, lock)
          elseif self:done(k) then
            on_done(self:images_in(k))
          else
            still[#still + 1] = k
          end
        end
      end
      pending = still
    end
  end)
end

-- Writes chunk k: the per-image tensors of `names` (lists of per-batch host tensors
-- concatenated), the sums of the summed components, the images' paths and those skipped
-- ({ path, message } in order); then its checksum, then releases its lock. Writes
-- nothing when the lock was lost meanwhile (a host cut off past the lock timeout).
function M:write(k, lock, collected, names, skipped)
  self:renew()
  if not lock:refresh() then
    io.stderr:write(string.format("refract: lost the lock of %s to another process; leaving the "
      .. "chunk to it\n", M.file_of(self.dir, k)))
    return false
  end
  local out = {}
  for _, name in ipairs(names) do
    if collected[name] then out[name] = refract.cat(collected[name], 1) end
  end
  for _, name in ipairs(M.summed) do
    if collected[name] then
      local all = out[name] or refract.cat(collected[name], 1)
      out["sum_" .. name] = all:sum(1)
      if not out[name] then all:free() end
    end
  end
  local md = copy(self.record)
  md.first = tostring(self:first(k))
  md.paths = refract.json_encode(kept_paths(self.dataset, skipped, self:first(k), self:last(k)))
  if #skipped > 0 then md.skipped = refract.json_encode(skipped) end
  local file = M.file_of(self.dir, k)
  refract.write(file, out, md)
  for _, t in pairs(out) do t:free() end
  refract.write_text(sum_of(self.dir, k), refract.sha256(file) .. string.format("  part-%06d.safetensors\n", k))
  self.verified[k] = true
  lock:release()
  return true
end

return M
