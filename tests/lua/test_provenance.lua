-- refract.sha256 against the standard's test vectors and sha256sum's answer for a model
-- file, its errors, and the provenance records every analysis writes.
local refract = require("refract")
local T = require("testlib")
local provenance = require("refract.provenance")

local home = refract.home()
local g = home .. "/tests/data/tiny-gelu"
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- FIPS 180-2's vectors, and a file longer than the 64 KiB read block (one million 'a').
write(tmp .. "/empty", "")
write(tmp .. "/abc", "abc")
write(tmp .. "/two_blocks", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
write(tmp .. "/million", string.rep("a", 1000000))
T.eq(refract.sha256(tmp .. "/empty"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty")
T.eq(refract.sha256(tmp .. "/abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc")
T.eq(refract.sha256(tmp .. "/two_blocks"), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "448 bits")
T.eq(refract.sha256(tmp .. "/million"), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "a million a")
-- the golden model's weights, as sha256sum prints them
T.eq(refract.sha256(g .. "/model/open_clip_model.safetensors"),
  "3533f0f398a8375d86b89d16e30e2d4604038c1b06e3b61165e6eb8bf35ef9c1", "model weights")

T.fails(function() refract.sha256(tmp .. "/missing") end, "/missing: cannot open: No such file")
T.fails(function() refract.sha256(tmp) end, "not a regular file")
T.fails(function() refract.sha256() end, "bad argument #1 to 'sha256'")

-- A record: the model's files, the inputs (a `:NAME` suffix names the file before it),
-- the arguments; as JSON and as safetensors metadata.
local record = provenance.new({ model = g .. "/model", arguments = { "--x", "1" },
                                inputs = { g .. "/textspan.safetensors:labels", tmp .. "/abc",
                                           g .. "/textspan.safetensors" } })
T.eq(record.producer, "refract " .. refract.version, "producer")
T.eq(record.arguments, { "--x", "1" }, "arguments")
T.eq(record.model.dir, g .. "/model", "model dir")
T.eq(record.model.files["open_clip_model.safetensors"],
  "3533f0f398a8375d86b89d16e30e2d4604038c1b06e3b61165e6eb8bf35ef9c1", "model file checksum")
T.eq(record.model.files["open_clip_config.json"], refract.sha256(g .. "/model/open_clip_config.json"), "config")
T.eq(#record.inputs, 2, "one entry per input file")
T.eq(record.inputs[1].path, g .. "/textspan.safetensors:labels", "input as given")
T.eq(record.inputs[1].sha256, refract.sha256(g .. "/textspan.safetensors"), "input checksum")
T.eq(record.inputs[2].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "second input")

local md = provenance.metadata(record, { kind = "test" })
T.eq(md.kind, "test", "extra metadata kept")
T.eq(md.model, g .. "/model", "model in metadata")
local back = refract.json_decode(md.provenance)
T.eq(back.model.files["open_clip_model.safetensors"], record.model.files["open_clip_model.safetensors"], "round trip")
refract.write(tmp .. "/out.safetensors", { x = refract.zeros({ 2 }) }, md)
-- a later command that reads this file carries its record along
local chained = provenance.input(tmp .. "/out.safetensors")
T.eq(chained.provenance.model.dir, g .. "/model", "provenance of an input is kept")

-- a folder input: its files (not its subfolders), whatever their names; the folder's own
-- name may start with '-' (`ls` took -l... for options and listed the working folder)
local odd = string.format("-prov-%d", math.random(1 << 30))   -- relative: in the working folder
os.execute(string.format("mkdir -p './%s/sub' && printf abc > './%s/a\nb' && printf abc > './%s/-l'", odd, odd, odd))
local folder = provenance.input(odd)
T.eq(folder.files, { ["a\nb"] = refract.sha256(tmp .. "/abc"), ["-l"] = refract.sha256(tmp .. "/abc") },
  "a folder's files")
os.execute(string.format("rm -rf './%s'", odd))

T.fails(function() provenance.model(tmp) end, "no model files")
T.fails(function() provenance.new({ modle = g }) end, "unknown option modle")
T.fails(function() provenance.new({ inputs = { tmp .. "/nothing.csv:y" } }) end, "nothing.csv:y: cannot open")

os.execute("rm -rf '" .. tmp .. "'")
T.done()
