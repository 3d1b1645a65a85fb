-- refract.util: small helpers shared by the bundled scripts (argument parsing, output).
local M = {}

-- Parses `--name value`, `--flag` and positional arguments against a spec:
-- spec = { name = { arg = true|false, many = true|false, help = "..." }, ... }.
-- Returns options (a table) or raises an error naming the bad argument.
function M.parse_args(args, spec, usage)
  local opts, positional = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w%-_]+)$")
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif name then
      local key = name:gsub("%-", "_")
      local s = spec[key]
      if not s then error(string.format("unknown option --%s\n%s", name, usage or ""), 0) end
      if s.arg then
        if s.many then
          local list = opts[key] or {}
          i = i + 1
          if i > #args or args[i]:match("^%-%-") then
            error(string.format("--%s needs a value", name), 0)
          end
          while i <= #args and not args[i]:match("^%-%-") do
            list[#list + 1] = args[i]
            i = i + 1
          end
          opts[key] = list
          i = i - 1
        else
          i = i + 1
          if i > #args then error(string.format("--%s needs a value", name), 0) end
          opts[key] = args[i]
        end
      else
        opts[key] = true
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

-- The strings of a JSON list file, or of a text file (one string per line).
function M.read_texts(path)
  local refract = require("refract")
  if path:match("%.json$") then
    local list = refract.json_read(path)
    if type(list) ~= "table" then error(path .. ": expected a JSON list of strings", 0) end
    for i, s in ipairs(list) do
      if type(s) ~= "string" then error(string.format("%s: entry %d is not a string", path, i), 0) end
    end
    return list
  end
  local f, err = io.open(path, "rb")
  if not f then error(err, 0) end
  local list = {}
  for line in f:lines() do list[#list + 1] = line:gsub("\r$", "") end
  f:close()
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

-- "[8, 3, 224, 224]" for a tensor.
function M.shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

return M
