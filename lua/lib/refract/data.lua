-- refract.data: datasets' own files for the analyses: text lists (class names, templates,
-- description pools), CSV tables, labels and groups in the formats datasets publish them,
-- decompositions written by `refract decompose`, and the output checks every command makes
-- before it starts working.
--
--   local data = require("refract.data")
--   local classes = data.read_list("classes.txt", "class names")
--   local dec = data.read_decomposition("dec.safetensors")
--   local labels = data.read_labels("metadata.csv:y", { count = dec.count, paths = dec.paths })
--
-- Labels and other indices in files count from 0, as the datasets' own files do.
local refract = require("refract")
local util = require("refract.util")
local provenance = require("refract.provenance")

local M = {}

local function is_dir(path)
  return refract.file_type(path) == "directory"
end
M.is_dir = is_dir

-- Through refract.read_file: a FIFO or a device is refused (io.open would wait on a FIFO
-- forever, and /dev/zero never ends), and the file's size is limited.
local function read_all(path, what)
  if is_dir(path) then error(string.format("%s: is a folder, not a file of %s", path, what), 0) end
  local ok, text = pcall(refract.read_file, path)
  if not ok then
    error(string.format("%s: cannot read %s: %s", path, what, tostring(text):gsub("^read_file: ", "")), 0)
  end
  return (text:gsub("^\239\187\191", ""))  -- a UTF-8 byte order mark is not content
end

-- {===== lists

-- The entries of a JSON list of strings, or of a text file with one entry per line (blank
-- lines skipped, a trailing \r dropped). Returns the entries and, for each, its line
-- number in the file (its position for JSON), so results can point back into the file.
function M.read_list(path, what)
  what = what or "entries"
  if path:match("%.json$") then
    local ok, list = pcall(refract.json_read, path)
    if not ok then error(string.format("%s: cannot read %s: %s", path, what, tostring(list)), 0) end
    if type(list) ~= "table" or (next(list) ~= nil and #list == 0) then
      error(string.format("%s: expected a JSON list of %s (strings)", path, what), 0)
    end
    local lines = {}
    for i, s in ipairs(list) do
      if type(s) ~= "string" then error(string.format("%s: entry %d is not a string", path, i), 0) end
      if s:match("^%s*$") then error(string.format("%s: entry %d is empty", path, i), 0) end
      lines[i] = i
    end
    if #list == 0 then error(string.format("%s: no %s", path, what), 0) end
    return list, lines
  end
  local text = read_all(path, what)
  local list, lines, n = {}, {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if not line:match("^%s*$") then
      list[#list + 1] = line
      lines[#lines + 1] = n
    end
  end
  if #list == 0 then error(string.format("%s: no %s (one per line, or a JSON list)", path, what), 0) end
  return list, lines
end

-- }=====

-- {===== CSV (RFC 4180: a header row, fields separated by commas, quoted fields may hold
-- commas, doubled quotes and line breaks; \r\n or \n line ends)

-- Parses CSV text into { header = {names}, rows = {{fields}}, lines = {line of each row},
-- file = path }. Errors name the file and the line.
function M.parse_csv(text, path)
  text = text:gsub("^\239\187\191", "")
  local records, starts = {}, {}
  local pos, line, len = 1, 1, #text
  local function fail(at_line, msg) error(string.format("%s:%d: %s", path, at_line, msg), 0) end
  while pos <= len do
    local fields, start_line = {}, line
    while true do
      local c = text:sub(pos, pos)
      local field
      if c == '"' then
        local parts = {}
        local p = pos + 1
        while true do
          local q = text:find('"', p, true)
          if not q then fail(start_line, "a quoted field is never closed") end
          local chunk = text:sub(p, q - 1)
          local _, breaks = chunk:gsub("\n", "")
          line = line + breaks
          parts[#parts + 1] = chunk
          if text:sub(q + 1, q + 1) == '"' then
            parts[#parts + 1] = '"'
            p = q + 2
          else
            pos = q + 1
            break
          end
        end
        field = table.concat(parts)
        local after = text:sub(pos, pos)
        if after ~= "," and after ~= "\n" and after ~= "\r" and after ~= "" then
          fail(line, "unexpected text after a quoted field (a quote inside a field must be doubled)")
        end
      else
        local stop = text:find("[,\r\n]", pos) or len + 1
        field = text:sub(pos, stop - 1)
        if field:find('"', 1, true) then
          fail(line, "a quote inside an unquoted field (quote the whole field and double the quote)")
        end
        pos = stop
      end
      fields[#fields + 1] = field
      local sep = text:sub(pos, pos)
      if sep == "," then
        pos = pos + 1
      else
        if sep == "\r" then pos = pos + 1 end
        if text:sub(pos, pos) == "\n" then pos = pos + 1 end
        line = line + 1
        break
      end
    end
    -- A line with nothing on it (a trailing newline, a blank line) is not a record.
    if not (#fields == 1 and fields[1] == "") then
      records[#records + 1] = fields
      starts[#starts + 1] = start_line
    end
  end
  if #records == 0 then error(path .. ": empty CSV file (a header row is required)", 0) end
  local header = records[1]
  local seen = {}
  for i, name in ipairs(header) do
    header[i] = name:match("^%s*(.-)%s*$")
    if header[i] == "" then fail(starts[1], string.format("header column %d has no name", i)) end
    if seen[header[i]] then fail(starts[1], string.format("header names column %q twice", header[i])) end
    seen[header[i]] = true
  end
  local rows, lines = {}, {}
  for r = 2, #records do
    if #records[r] ~= #header then
      fail(starts[r], string.format("%d fields, but the header has %d", #records[r], #header))
    end
    rows[#rows + 1] = records[r]
    lines[#lines + 1] = starts[r]
  end
  return { header = header, rows = rows, lines = lines, file = path }
end

function M.read_csv(path)
  return M.parse_csv(read_all(path, "a CSV table"), path)
end

-- The index of column `name` in a parsed table, or an error listing the columns.
function M.csv_column(csv, name)
  for i, h in ipairs(csv.header) do
    if h == name then return i end
  end
  error(string.format("%s: no column %q (columns: %s)", csv.file, name, table.concat(csv.header, ", ")), 0)
end

-- Columns that name an image file, in the order they are looked for.
M.file_columns = { "img_filename", "filename", "file", "image", "img", "path", "image_path" }

-- }=====

-- {===== values per image (labels, groups) from FILE[:NAME]

local function split_spec(spec)
  -- FILE.csv:COL, FILE.safetensors:NAME; a plain FILE otherwise (a ':' may be in a path).
  local file, name = spec:match("^(.*%.[cC][sS][vV]):(.+)$")
  if not file then file, name = spec:match("^(.*%.safetensors):([^/]+)$") end
  if file then return file, name end
  return spec, nil
end

local function normalise_path(p)
  p = p:gsub("\\", "/"):gsub("/+", "/"):gsub("^%./", ""):gsub("/%./", "/")
  return p
end

-- Matches each image path to a row of the CSV by its file column: a row matches an image
-- whose path equals the value or ends with "/" .. value. Returns the row index per image.
local function rows_by_path(csv, col, paths, spec)
  local by_value = {}
  for r, row in ipairs(csv.rows) do
    local v = normalise_path(row[col])
    if by_value[v] then
      error(string.format("%s:%d: file %q is also on line %d", csv.file, csv.lines[r], row[col],
        csv.lines[by_value[v]]), 0)
    end
    by_value[v] = r
  end
  local rows = {}
  for i, p in ipairs(paths) do
    p = normalise_path(p)
    local r = by_value[p]
    local rest = p
    while not r do
      local cut = rest:find("/", 1, true)
      if not cut then break end
      rest = rest:sub(cut + 1)
      r = by_value[rest]
    end
    if not r then
      error(string.format("%s: no row for image %d, %s (images are matched to rows by column %q)",
        spec, i, paths[i], csv.header[col]), 0)
    end
    rows[i] = r
  end
  return rows
end

-- The values (strings) of one column per image, and where each came from ("FILE:LINE").
local function csv_values(file, column, opts, spec)
  local csv = M.read_csv(file)
  if not column then
    error(string.format("%s: name the column: %s:COLUMN (columns: %s)", spec, file,
      table.concat(csv.header, ", ")), 0)
  end
  local col = M.csv_column(csv, column)
  local rows
  if opts.paths then
    for _, name in ipairs(M.file_columns) do
      local ok, fc = pcall(M.csv_column, csv, name)
      if ok then
        rows = rows_by_path(csv, fc, opts.paths, spec)
        break
      end
    end
  end
  if not rows then
    rows = {}
    for r = 1, #csv.rows do rows[r] = r end
  end
  local values, where = {}, {}
  for i, r in ipairs(rows) do
    values[i] = csv.rows[r][col]:match("^%s*(.-)%s*$")
    where[i] = string.format("%s:%d", file, csv.lines[r])
  end
  return values, where
end

-- ImageFolder (torchvision's layout): the class of an image is the folder directly under
-- `dir` that holds it; classes are the sorted names of dir's subfolders, 0..C-1.
local function folder_values(dir, opts, spec)
  if not opts.paths then
    error(spec .. ": labels from class folders need a decomposition that records its image "
      .. "paths (made by `refract decompose --dir`)", 0)
  end
  -- Listed without a shell: `ls` took a folder named -R for options and split a name
  -- holding a newline in two, dropping that class and shifting every later class's index.
  local names = {}
  for _, name in ipairs(refract.listdir(dir)) do
    if is_dir(dir .. "/" .. name) then names[#names + 1] = name end
  end
  local index = {}
  for i, n in ipairs(names) do index[n] = i - 1 end
  local root = normalise_path(dir):gsub("/$", "")
  local values, where = {}, {}
  for i, p in ipairs(opts.paths) do
    p = normalise_path(p)
    local class = p:sub(1, #root + 1) == root .. "/" and p:sub(#root + 2):match("^([^/]+)/")
                  or p:match("([^/]+)/[^/]+$")
    if not class or not index[class] then
      error(string.format("%s: image %d, %s, is not in a class folder of %s", spec, i, opts.paths[i], dir), 0)
    end
    values[i] = tostring(index[class])
    where[i] = p
  end
  return values, where, names
end

local function tensor_values(file, name, spec)
  local t
  if file:match("%.npy$") then t = refract.read(file)
  else t = refract.read(file, name) end
  local shape = t:shape()
  if #shape == 2 and shape[2] == 1 then t = t:reshape(shape[1]) end
  if t:ndim() ~= 1 then
    error(string.format("%s: expected one value per image, a tensor [N], not [%s]", spec,
      table.concat(shape, ", ")), 0)
  end
  local list = t:totable()
  local values, where = {}, {}
  for i, v in ipairs(list) do
    -- Integral but past the integers (1e30, infinity) failed in string.format with a
    -- message naming neither the file nor the entry.
    if not math.tointeger(v) then
      error(string.format("%s: entry %d is %s, not an integer", spec, i - 1, tostring(v)), 0)
    end
    values[i] = string.format("%d", math.tointeger(v))
    where[i] = string.format("%s[%d]", spec, i - 1)
  end
  return values, where
end

-- The raw values (strings) of FILE[:NAME] per image, with their places, before they are
-- read as labels or groups. opts.paths: the images' paths (to match CSV rows by file).
function M.read_values(spec, opts)
  util.check_options(opts, "data.read_values", { "paths", "default_name" })
  opts = opts or {}
  local file, name = split_spec(spec)
  if is_dir(file) then return folder_values(file, opts, spec) end
  if file:match("%.[cC][sS][vV]$") then return csv_values(file, name, opts, spec) end
  if file:match("%.npy$") or file:match("%.safetensors$") then
    return tensor_values(file, name or opts.default_name or "labels", spec)
  end
  local list, lines = M.read_list(file, "values")
  local values, where = {}, {}
  for i, v in ipairs(list) do
    values[i] = v:match("^%s*(.-)%s*$")
    where[i] = string.format("%s:%d", file, lines[i])
  end
  return values, where
end

local function check_count(values, opts, spec, what)
  if opts.count and #values ~= opts.count then
    error(string.format("%s: %d %s for %d images (one per image, in the decomposition's order)",
      spec, #values, what, opts.count), 0)
  end
end

-- Labels: integer class indices from 0, one per image, as a Lua list of integers.
-- spec: FILE.npy, FILE.safetensors[:NAME] (default `labels`), FILE.csv:COLUMN, a text file
-- (one per line), a JSON list, or a folder of class folders (ImageFolder).
-- opts.count: the number of images (checked); opts.classes: the number of classes (range
-- checked) or the list of class names (names in the file are then mapped to indices);
-- opts.paths: image paths, to match CSV rows by their file column.
function M.read_labels(spec, opts)
  util.check_options(opts, "data.read_labels", { "count", "classes", "paths" })
  opts = opts or {}
  local values, where = M.read_values(spec, { paths = opts.paths, default_name = "labels" })
  check_count(values, opts, spec, "labels")
  local names = type(opts.classes) == "table" and opts.classes or nil
  local count = names and #names or opts.classes
  local by_name = {}
  for i, n in ipairs(names or {}) do
    if by_name[n] == nil then by_name[n] = i - 1 end
  end
  local labels = {}
  for i, v in ipairs(values) do
    local k = v:match("^[+-]?%d+$") and math.tointeger(tonumber(v))
    if not k then
      k = by_name[v]
      if k == nil then
        if names then
          error(string.format("%s: label %q is neither a class index (from 0) nor one of the %d class names",
            where[i], v, #names), 0)
        end
        error(string.format("%s: label %q is not a class index (an integer from 0)", where[i], v), 0)
      end
    end
    if k < 0 or (count and k >= count) then
      error(string.format("%s: label %d is out of range for %d classes (0..%d)", where[i], k,
        count or 0, (count or 1) - 1), 0)
    end
    labels[i] = k
  end
  return labels
end

-- Groups: any value per image (a string), e.g. Waterbirds' `place`.
function M.read_groups(spec, opts)
  util.check_options(opts, "data.read_groups", { "count", "paths" })
  opts = opts or {}
  local values = M.read_values(spec, { paths = opts.paths, default_name = "groups" })
  check_count(values, opts, spec, "groups")
  return values
end

-- }=====

-- {===== decompositions

local function chunk_files(dir)
  -- Listed without a shell: `ls` took a folder named -c... for options and found no chunks.
  local files = {}
  for _, name in ipairs(refract.listdir(dir)) do
    if name:match("^part%-%d+%.safetensors$") then files[#files + 1] = dir .. "/" .. name end
  end
  return files
end

local function read_named(path, names, optional)
  local md = refract.metadata(path)
  local out = {}
  for _, name in ipairs(names) do
    local ok, t = pcall(refract.read, path, name)
    if ok then out[name] = t
    elseif not optional[name] then
      error(string.format("%s: no tensor %s (write it with `refract decompose` without --reduce, "
        .. "--project or --mean-only)", path, name), 0)
    end
  end
  return out, md
end

-- A decomposition: { attn_heads [B, L, H, D], mlps [B, L+1, D], cls_attn [B, L, D] (nil if
-- absent), count = B, layers, heads, dim, paths (nil unless recorded), metadata }.
-- `path` is a .safetensors file or a --chunks folder (its part files in order).
function M.read_decomposition(path, names)
  names = names or { "attn_heads", "mlps", "cls_attn" }
  local optional = { cls_attn = true }
  local parts, paths, metadata = {}, {}, nil
  local files = { path }
  if is_dir(path) then
    -- A --chunks folder is read as merge reads it: every chunk once, whole (its SHA-256)
    -- and of one run. A flipped byte, a missing shard's chunks or a stray copy were read
    -- without a word.
    if #chunk_files(path) == 0 then error(path .. ": no part-NNNNNN.safetensors files in this folder", 0) end
    local ok, count = pcall(function() return select(2, require("refract.merge").check(path)) end)
    if not ok then
      error((tostring(count):gsub("^merge: cannot merge ", "cannot read "):gsub("^merge: ", "")), 0)
    end
    files = {}
    for k = 1, count do files[k] = require("refract.chunks").file_of(path, k) end
  end
  for _, file in ipairs(files) do
    if not refract.file_type(file) then error(file .. ": no such decomposition file", 0) end
    local tensors, md = read_named(file, names, optional)
    metadata = metadata or md
    parts[#parts + 1] = tensors
    if md.paths and paths then
      local ok, list = pcall(refract.json_decode, md.paths)
      if ok and type(list) == "table" then
        for _, p in ipairs(list) do paths[#paths + 1] = p end
      else
        paths = nil
      end
    else
      paths = nil
    end
  end
  local tensors = {}
  for _, name in ipairs(names) do
    if parts[1][name] then
      if #parts == 1 then tensors[name] = parts[1][name]
      else
        local list = {}
        for i, p in ipairs(parts) do list[i] = p[name] end
        tensors[name] = refract.cat(list, 1)
      end
    end
  end
  return M.decomposition(tensors, { source = path, metadata = metadata, paths = paths })
end

-- A decomposition as read_decomposition returns it, from tensors made in this run
-- (attn_heads [B, L, H, D], mlps [B, L+1, D], cls_attn [B, L, D], as model:decompose
-- returns them, batches concatenated). opts.paths: the images' paths (kept when there is
-- one per image); opts.source names the tensors in errors; opts.metadata is kept.
function M.decomposition(tensors, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "paths" and key ~= "source" and key ~= "metadata" then
      error("data.decomposition: unknown option " .. tostring(key), 2)
    end
  end
  local source = opts.source or "the decomposition"
  local dec = { metadata = opts.metadata, source = source }
  for name, t in pairs(tensors) do dec[name] = t end
  local a = dec.attn_heads
  if a then
    if a:ndim() ~= 4 then
      error(string.format("%s: attn_heads is [%s], expected [images, layers, heads, dim]", source,
        table.concat(a:shape(), ", ")), 0)
    end
    dec.count, dec.layers, dec.heads, dec.dim = a:shape(1), a:shape(2), a:shape(3), a:shape(4)
    local m = dec.mlps
    if m and (m:ndim() ~= 3 or m:shape(1) ~= dec.count or m:shape(2) ~= dec.layers + 1 or m:shape(3) ~= dec.dim) then
      error(string.format("%s: mlps is [%s], expected [%d, %d, %d]", source, table.concat(m:shape(), ", "),
        dec.count, dec.layers + 1, dec.dim), 0)
    end
  end
  -- A NaN or an infinity (a damaged or hostile file) went into every accuracy, span and
  -- neighbour without a word. One sum per tensor finds it (a sum of finite terms could
  -- overflow, so the element is then looked for, and named).
  for _, name in ipairs({ "attn_heads", "mlps", "cls_attn" }) do
    local t = dec[name]
    local s = t and t:numel() > 0 and t:sum():item()
    if s and (s ~= s or s == math.huge or s == -math.huge) then
      local bad = (t * 0):ne(0)
      if bad:any() then
        local at = bad:flatten():argmax():item()
        local v = t:flatten()[at]:item()
        error(string.format("%s: %s holds %s at element %d (counting from 1, row-major): a "
          .. "decomposition must be finite", source, name, v ~= v and "NaN" or "infinity", at), 0)
      end
      bad:free()
    end
  end
  if opts.paths and #opts.paths == dec.count then dec.paths = opts.paths end
  return dec
end

-- }=====

-- {===== outputs

-- Checks before any work that `path` can be written: its extension is one of `exts`
-- (a list such as {"json"}), its folder exists and is writable.
-- The files of a model folder that a load reads, as provenance records them.
local function is_model_file(name)
  for _, file in ipairs(provenance.model_files) do
    if file == name then return true end
  end
  return false
end

-- Raises if the output `path` (the value of `option`) is one of the command's inputs on
-- the command line `args`: a FILE or FILE:TENSOR argument naming the same file, or a file
-- a model folder argument loads. The write would replace the input once the run is done
-- (decompose --pixels e.safetensors --out e.safetensors lost its pixels without a word).
local function check_not_input(path, option, args)
  if not args or refract.file_type(path) ~= "file" then return end
  local folder, name = path:match("^(.*)/([^/]*)$")
  folder, name = folder or ".", name or path
  for i, a in ipairs(args) do
    local is_output = (a == path and args[i - 1] == option) or a == option .. "=" .. path
    local value = a:match("^%-%-[%w%-_]+=(.*)$") or a
    if not is_output then
      for _, candidate in ipairs({ value, value:match("^(.*):[^/:]*$") }) do
        if refract.same_file(candidate, path) or (is_model_file(name)
            and refract.file_type(candidate) == "directory" and refract.same_file(candidate, folder)) then
          error(string.format("%s %s: is one of this command's inputs (%s); writing there would replace "
            .. "it: give another path", option, path, a), 0)
        end
      end
    end
  end
end

function M.check_out(path, exts, option)
  option = option or "--out"
  check_not_input(path, option, rawget(_G, "arg"))
  local ext = path:match("%.([%w]+)$")
  local ok_ext = false
  for _, e in ipairs(exts) do if ext and ext:lower() == e then ok_ext = true end end
  if not ok_ext then
    error(string.format("%s %s: expected a .%s file", option, path, table.concat(exts, " or .")), 0)
  end
  if is_dir(path) then error(string.format("%s %s: is a folder", option, path), 0) end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  if not is_dir(dir) then error(string.format("%s %s: folder %s does not exist", option, path, dir), 0) end
  -- Written as outputs are (a new file, O_EXCL|O_NOFOLLOW, renamed): io.open followed a
  -- link planted at the probe's name and emptied the file it pointed to.
  local probe = string.format("%s/.refract-write-test-%d", dir, math.random(1 << 30))
  local ok, why = pcall(refract.write_text, probe, "")
  os.remove(probe)
  if not ok then
    error(string.format("%s %s: folder %s is not writable (%s)", option, path, dir,
      tostring(why):gsub("^write_text: ", "")), 0)
  end
end

-- Makes the folder `dir` and its parents (refract.mkdir: no shell, so a name starting
-- with '-' is a name), or raises "OPTION DIR: PARENT is not a folder" (or why it could not).
function M.make_dir(dir, option)
  local ok, err = pcall(refract.mkdir, dir)
  if not ok then
    error(option .. (dir == "" and ": " or " ") .. tostring(err):gsub("^mkdir: ", ""), 0)
  end
end

-- Writes a text file whole, as every output is (refract.write_text: a new temporary file
-- created with O_EXCL|O_NOFOLLOW, checked writes, fsync, rename). io.open here followed a
-- link planted at PATH.tmp and lost a full disk's error, leaving an empty file reported
-- as written.
function M.write_text(path, text)
  local ok, err = pcall(refract.write_text, path, text)
  if not ok then error((tostring(err):gsub("^write_text: ", "")), 0) end
end

-- }=====

return M
