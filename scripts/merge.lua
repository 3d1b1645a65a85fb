-- refract merge: one file from the chunk folder of `decompose --chunks` (shards joined)
local util = require("refract.util")
local merge = require("refract.merge")
local output = require("refract.output")

local usage = [==[
usage: refract merge --chunks DIR --out OUT.safetensors|OUT.npz [--mean-only]

Joins the chunks that `refract decompose --chunks DIR` runs made (one run, or several
with --shard K/N on any machines, or --devices) into one file: the means over all
images (mean_attn_heads, ..., rebuilt from the chunks' stored sums in chunk order) and
`count`, and unless --mean-only every per-image tensor concatenated in chunk order, with
the run's record and the images' paths as metadata. The file is the same, byte for
byte, however the chunks were split; with --mean-only it is the file that a run without
--shard writes as its --out.

It refuses, naming them, chunks that are missing, present twice (a copy under another
name), unfinished (no checksum file), failing their SHA-256, or made by another run
(another model, options or dataset: each chunk carries the run's record, DIR/run.json).

  --chunks DIR   the folder given to decompose --chunks
  --out FILE     the output .safetensors file, or .npz for NumPy
  --mean-only    only the means and count
]==]

local opts = util.parse_args(arg, { chunks = { arg = true }, out = { arg = true }, mean_only = {} }, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
if not opts.chunks then usage_error("--chunks DIR is required") end
if not opts.out then usage_error("--out FILE is required") end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
output.check_tensors(opts.out)

local images, count = merge.write(opts.chunks, opts.out, opts.mean_only or false)
print(string.format("merged %d chunks (%d images) from %s into %s", count, images, opts.chunks, opts.out))
