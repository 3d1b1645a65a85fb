-- The refract host: script arguments as `lua` sets them, `require` of modules next to the
-- script and of the bundled library, -e, errors with a traceback and a non-zero exit, the
-- interactive prompt reading stdin, and dataset iteration with refract.images.
local refract = require("refract")
local T = require("testlib")

local exe = refract.executable()
local home = refract.home()
-- `cmd`'s success and its stdout and stderr together.
local function run(cmd)
  local r = T.run(cmd)
  return r.ok, r.out .. r.err
end

-- arg and require
local script = home .. "/tests/lua/host/uses_helper.lua"
local f = assert(io.open(script, "w"))
f:write('local h = require("helper_module")\n',
        'local util = require("refract.util")\n',
        'print(arg[0]:match("[^/]+$"), arg[1], arg[2], #arg, h.answer, type(util.parse_args))\n')
f:close()
local ok, out = run(string.format("'%s' '%s' one two", exe, script))
os.remove(script)
T.ok(ok, "a script runs: " .. out)
T.matches(out, "uses_helper.lua\tone\ttwo\t2\t42\tfunction")

-- -e
ok, out = run(string.format("'%s' -e 'print(refract.version, 6 * 7)'", exe))
T.ok(ok, "-e runs")
T.matches(out, "^" .. refract.version:gsub("%.", "%%.") .. "\t42")

-- errors: a message with a traceback on stderr, exit status 1 (not a crash)
local r = T.run(string.format("'%s' -e 'local function f() error(\"boom\") end f()'", exe))
T.refused(r, "boom", "an error")
T.matches(r.err, "stack traceback")
T.refused(T.run(string.format("'%s' /nonexistent/script.lua", exe)), "cannot open /nonexistent/script.lua",
  "a missing script")
T.refused(T.run(string.format("'%s' nosuchcommand", exe)), "unknown command 'nosuchcommand'", "an unknown command")
-- A bundled command's errors are the message alone, also those the C API raises with the
-- command's position (a bad image); REFRACT_TRACEBACK=1 adds the traceback.
r = T.run(string.format("'%s' decompose --bogus", exe))
T.refused(r, "refract: unknown option --bogus", "a command's usage error")
T.eq(r.err:find("stack traceback", 1, true), nil, "a command's usage error has no traceback")
local bad = T.tmp() .. "/bad.png"
local f = assert(io.open(bad, "wb"))
f:write("xx")
f:close()
local model = assert(os.getenv("RF_TEST_DATA")) .. "/tiny-gelu/model"
r = T.run(string.format("'%s' encode --model '%s' --images '%s' --out '%s.safetensors'", exe, model, bad, bad))
T.refused(r, bad .. ": not an image file", "a command's error about an image")
T.eq(r.err:find("stack traceback", 1, true), nil, "a command's error about an image has no traceback")
r = T.run(string.format("REFRACT_TRACEBACK=1 '%s' decompose --bogus", exe))
T.matches(r.err, "stack traceback", "REFRACT_TRACEBACK=1")

-- refract help lists the commands of REFRACT_HOME/scripts without a shell and without
-- opening what is not a file: a home whose name holds "$(...)" ran that command, and a
-- FIFO named *.lua among the scripts made help wait forever (`timeout` ends such a hang)
local odd_home = T.tmp('home "$(touch pwned)"')
os.execute(string.format("mkdir -p '%s/scripts' && cp '%s/scripts/help.lua' '%s/scripts/decompose.lua' '%s/scripts/' "
  .. "&& ln -s '%s/lua' '%s/lua' && mkfifo '%s/scripts/zz.lua'", odd_home, home, home, odd_home, home, odd_home,
  odd_home))
r = T.run(string.format("cd '%s' && REFRACT_HOME='%s' timeout 60 '%s' help", T.tmp(), odd_home, exe))
T.ok(r.ok, "help runs: " .. r.out .. r.err)
T.matches(r.out, "decompose +direct contributions", "help lists the commands")
T.eq(refract.file_type(T.tmp("pwned")), nil, "nothing in the home's name is run")

-- the prompt: expressions print, statements run, errors do not end it
ok, out = run(string.format("printf 'x = 20\\nx + 22\\nerror(\"oops\")\\nprint(\"after\")\\n' | '%s'", exe))
T.ok(ok, "the prompt ends cleanly at end of input")
T.matches(out, "42")
T.matches(out, "oops")
T.matches(out, "after")

-- refract.images: batches of a folder, in path order, with the 1-based index of each
local dir = home .. "/scripts/data/models/tinyclip-shapes/examples"
local seen, batches = 0, 0
for pixels, first, count in refract.images({ dir = dir, batch = 5, size = 64 }) do
  T.eq(first, seen + 1, "batches follow each other")
  T.eq(pixels:shape(), { count, 3, 64, 64 })
  seen, batches = seen + count, batches + 1
  pixels:free()
end
T.eq(seen, 24, "every image of the folder (12 pictures and 12 masks)")
T.eq(batches, 5)
T.fails(function() return refract.images({ dir = "/nonexistent" }) end, "/nonexistent")

T.done()
