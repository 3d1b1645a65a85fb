-- refract.provenance: what made a result. Every output of the bundled analyses records
-- the refract version, the command and its arguments, the model directory with the
-- SHA-256 of each of its files that a load reads, and the checksums of the input files,
-- so a number in a report can be traced to exactly the bytes that produced it.
--
--   local provenance = require("refract.provenance")
--   local record = provenance.new({ model = dir, inputs = { "dec.safetensors" } })
--   json.provenance = record                                   -- in a JSON result
--   refract.write(path, tensors, provenance.metadata(record))   -- in safetensors metadata
--
-- Nothing here holds the time of day: a rerun with the same inputs writes the same bytes.
local refract = require("refract")

local M = {}

-- The files of a model directory that refract.load reads (open_clip or Hugging Face
-- layout); those present are checksummed.
M.model_files = {
  "open_clip_config.json", "open_clip_model.safetensors",
  "config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt",
}

-- Without opening it: io.open would wait forever on a FIFO.
local function exists(path)
  return refract.file_type(path) ~= nil
end

-- A command-line file argument may carry a `:NAME` (a tensor, a CSV column): the file
-- is what comes before it when the whole string is not itself a file.
function M.file_of(spec)
  if exists(spec) then return spec end
  local file = spec:match("^(.*):[^/:]+$")
  if file and exists(file) then return file end
  return spec
end

-- { dir =, files = { name = sha256 } } for a model directory. Errors if it holds none
-- of the files a load reads.
function M.model(dir)
  local files, count = {}, 0
  for _, name in ipairs(M.model_files) do
    local path = dir .. "/" .. name
    if exists(path) then
      files[name] = refract.sha256(path)
      count = count + 1
    end
  end
  if count == 0 then
    error(dir .. ": no model files (open_clip_config.json or config.json and their weights)", 0)
  end
  return { dir = dir, files = files }
end

local function is_dir(path)
  return refract.file_type(path) == "directory"
end

-- The regular files directly in a folder (a --chunks folder), name -> SHA-256; folders
-- inside (an image folder's classes) are not descended into.
local function folder_files(dir)
  -- Listed without a shell: `ls` took a folder named -l... for options, and split a name
  -- holding a newline in two.
  local files = {}
  for _, name in ipairs(refract.listdir(dir)) do
    local path = dir .. "/" .. name
    if not is_dir(path) then files[name] = refract.sha256(path) end
  end
  return files
end

-- { path =, sha256 = } for an input file, plus the provenance recorded inside it when
-- it is a .safetensors file made by refract (so a chain of commands stays traceable);
-- { path =, files = {name = sha256} } for a folder.
function M.input(spec)
  local path = M.file_of(spec)
  if is_dir(path) then return { path = spec, files = folder_files(path) } end
  local entry = { path = spec, sha256 = refract.sha256(path) }
  if path:match("%.safetensors$") then
    local ok, md = pcall(refract.metadata, path)
    if ok and md then
      if md.provenance then
        local decoded_ok, decoded = pcall(refract.json_decode, md.provenance)
        entry.provenance = decoded_ok and decoded or md.provenance
      elseif md.model then
        entry.model = md.model
      end
    end
  end
  return entry
end

-- The command that is running: the script's name without folder and extension.
local function command_name()
  local script = arg and arg[0] or "?"
  return (script:match("([^/]+)%.lua$") or script)
end

-- A provenance record: { producer, command, arguments, model?, inputs? }.
-- opts.model: a model directory (checksummed); opts.inputs: a list of file arguments
-- (checksummed; duplicates once); opts.arguments: defaults to the script's `arg`.
function M.new(opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "model" and key ~= "inputs" and key ~= "arguments" and key ~= "command" then
      error("provenance.new: unknown option " .. tostring(key), 2)
    end
  end
  local arguments = {}
  for i, a in ipairs(opts.arguments or arg or {}) do arguments[i] = a end
  local record = {
    producer = "refract " .. refract.version,
    command = opts.command or command_name(),
    arguments = arguments,
  }
  if opts.model then record.model = M.model(opts.model) end
  if opts.inputs then
    local seen, inputs = {}, {}
    for _, spec in ipairs(opts.inputs) do
      local path = M.file_of(spec)
      if not seen[path] then
        seen[path] = true
        inputs[#inputs + 1] = M.input(spec)
      end
    end
    record.inputs = inputs
  end
  return record
end

-- Safetensors metadata (strings only): `provenance` holds the record as JSON, `model`
-- the model directory (as `refract decompose` writes it) and `producer` the version.
function M.metadata(record, extra)
  local md = {}
  for k, v in pairs(extra or {}) do md[k] = v end
  md.provenance = refract.json_encode(record)
  md.producer = record.producer
  if record.model then md.model = record.model.dir end
  return md
end

return M
