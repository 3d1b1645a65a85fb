-- refract help: list the bundled commands with one line each
--
-- Every command is a Lua script in this folder: `refract NAME ARGS...` runs NAME.lua with
-- the refract module loaded. Copy one to start your own analysis.
local refract = require("refract")

local dir = refract.home() .. "/scripts"
local commands = {}
local listing = io.popen('ls "' .. dir .. '"')
for file in listing:lines() do
  local name = file:match("^([%w_%-]+)%.lua$")
  if name then
    local f = io.open(dir .. "/" .. file)
    local first = f and f:read("l") or ""
    if f then f:close() end
    local summary = first:match("^%-%- refract [%w_%-]+: (.*)$")
    if summary then commands[#commands + 1] = { name = name, summary = summary } end
  end
end
listing:close()
table.sort(commands, function(a, b) return a.name < b.name end)

print("usage: refract COMMAND [ARGS...] | refract SCRIPT.lua [ARGS...] | refract -e CODE | refract")
print("")
print("commands (each is a readable Lua script in " .. dir .. "):")
for _, c in ipairs(commands) do
  print(string.format("  %-12s %s", c.name, c.summary))
end
print("")
print("`refract COMMAND --help` describes a command's options.")
