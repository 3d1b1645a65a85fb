-- refract.util: small helpers shared by the bundled scripts (argument parsing, output).
local M = {}

-- Parses `--name value`, `--name=value`, `--flag` and positional arguments against a spec:
-- spec = { name = { arg = true|false, many = true|false, help = "..." }, ... }.
-- A `many` option takes the arguments up to the next option (`--name=value`: that one).
-- A value that looks like an option (`--chunks --out x`) is refused rather than taken:
-- `--name=--value` passes such a value on purpose.
-- Returns options (a table) or raises an error naming the bad argument.
function M.parse_args(args, spec, usage)
  local opts, positional = {}, {}
  local function is_option(a) return a:match("^%-%-") ~= nil end
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, glued = a:match("^%-%-([%w%-_]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-_]+)$")
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif name then
      local key = name:gsub("%-", "_")
      local s = spec[key]
      if not s then error(string.format("unknown option --%s\n%s", name, usage or ""), 0) end
      if not s.arg then
        if glued then error(string.format("--%s takes no value (%s)", name, a), 0) end
        opts[key] = true
      elseif glued then
        if s.many then
          local list = opts[key] or {}
          list[#list + 1] = glued
          opts[key] = list
        else
          opts[key] = glued
        end
      else
        i = i + 1
        if i > #args then error(string.format("--%s needs a value", name), 0) end
        if is_option(args[i]) then
          error(string.format("--%s needs a value, not the option %s (--%s=%s passes a value "
            .. "that starts with --)", name, args[i], name, args[i]), 0)
        end
        if s.many then
          local list = opts[key] or {}
          while i <= #args and not is_option(args[i]) do
            list[#list + 1] = args[i]
            i = i + 1
          end
          opts[key] = list
          i = i - 1
        else
          opts[key] = args[i]
        end
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  opts._ = positional
  return opts
end

-- Raises "<fn>: unknown option 'key' (a, b, c)" for a key of the options table `opts`
-- that is not in the list `allowed`, as the C functions do: a misspelt option is never
-- silently ignored. `level` is error()'s (default 3: the caller of the function that
-- checks its options).
function M.check_options(opts, fn, allowed, level)
  if opts == nil then return end
  if type(opts) ~= "table" then
    error(string.format("%s: options must be a table, not %s", fn, type(opts)), level or 3)
  end
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for key in pairs(opts) do
    if not ok[key] then
      error(string.format("%s: unknown option '%s' (%s)", fn, tostring(key), table.concat(allowed, ", ")), level or 3)
    end
  end
end

-- The strings of a JSON list file, or of a text file (one string per line). Anything
-- else in the JSON (an object, a number in the list) is an error, and so is a NUL byte in
-- a string (C would see the text cut short there). Files are read with refract.read_file:
-- a regular file of at most 256 MiB.
function M.read_texts(path)
  local refract = require("refract")
  local list
  if path:match("%.json$") then
    list = refract.json_read(path)
    local count = 0
    if type(list) == "table" then
      for _ in pairs(list) do count = count + 1 end
    end
    -- An object decodes to a table too: only keys 1..n make a list.
    if type(list) ~= "table" or count ~= #list or (count == 0 and refract.read_file(path):match("^%s*{")) then
      error(path .. ": expected a JSON list of strings", 0)
    end
    for i, s in ipairs(list) do
      if type(s) ~= "string" then error(string.format("%s: entry %d is not a string", path, i), 0) end
    end
  else
    list = {}
    local text = refract.read_file(path)
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do list[#list + 1] = line:gsub("\r$", "") end
    if text == "" or text:sub(-1) == "\n" then list[#list] = nil end
  end
  for i, s in ipairs(list) do
    local at = s:find("\0", 1, true)
    if at then error(string.format("%s: text %d holds a NUL byte (at byte %d)", path, i, at), 0) end
  end
  return list
end

-- A tensor named on the command line: FILE.npy, FILE.safetensors (tensor `default`) or
-- FILE.safetensors:NAME.
function M.read_tensor(spec, default)
  local refract = require("refract")
  local file, name = spec:match("^(.*%.safetensors):([^/]+)$")
  if file then return refract.read(file, name) end
  if spec:match("%.safetensors$") then return refract.read(spec, default) end
  return refract.read(spec)
end

-- The command-line option opts[name] as a positive integer, `default` when it is absent;
-- anything else (0, -1, 2.5, "abc", 1e99 past the integers) calls fail("--NAME must be a
-- positive integer"). tonumber alone let 1e99 through, and math.tointeger of it is nil,
-- which read as "absent": the default was used without a word.
function M.positive_option(opts, name, default, fail)
  local text = opts[name]
  if text == nil then return default end
  local v = math.tointeger(tonumber(text))
  if not v or v < 1 then
    (fail or function(msg) error(msg, 0) end)("--" .. name:gsub("_", "-") .. " must be a positive integer")
  end
  return v
end

-- "[8, 3, 224, 224]" for a tensor.
function M.shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

return M
