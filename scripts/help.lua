-- refract help: list the bundled commands with one line each
--
-- Every command is a Lua script in this folder: `refract NAME ARGS...` runs NAME.lua with
-- the refract module loaded. Copy one to start your own analysis.
local refract = require("refract")

local dir = refract.home() .. "/scripts"
local commands = {}
-- Listed and read without a shell or io.open: a home named with "$(...)" ran that
-- command, and a FIFO among the scripts made help wait forever.
for _, file in ipairs(refract.listdir(dir)) do
  local name = file:match("^([%w_%-]+)%.lua$")
  local path = dir .. "/" .. file
  if name and refract.file_type(path) == "file" then
    local read, text = pcall(refract.read_file, path)
    local summary = read and text:match("^%-%- refract [%w_%-]+: ([^\n]*)")
    if summary then commands[#commands + 1] = { name = name, summary = summary } end
  end
end
table.sort(commands, function(a, b) return a.name < b.name end)

print("usage: refract COMMAND [ARGS...] | refract SCRIPT.lua [ARGS...] | refract -e CODE | refract")
print("")
print("commands (each is a readable Lua script in " .. dir .. "):")
for _, c in ipairs(commands) do
  print(string.format("  %-12s %s", c.name, c.summary))
end
print("")
print("`refract COMMAND --help` describes a command's options.")
