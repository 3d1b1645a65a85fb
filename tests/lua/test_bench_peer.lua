-- `refract bench vit --peer torch` as a function, not a timing: on the tiny architecture
-- it runs both sides on the same weights and pixels, agrees with the PyTorch peer on
-- every method (both compute the golden's definitions), and writes a JSON file with the
-- fields the README's performance table is made from. Skipped (77) without PyTorch: the
-- peer is a developer tool (scripts/dev/torch_vit_peer.py), never needed by the product.
local refract = require("refract")
local T = require("testlib")

if not os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") then
  print("skipped: /usr/bin/python3 cannot import torch")
  os.exit(77)
end

local bench = require("refract.bench_vit")
local json_path = T.tmp("bench.json")
bench.run({ "--arch", "tiny", "--batch", "1,3", "--dtype", "f32", "--seconds", "0.01", "--peer", "torch",
  "--json", json_path })
local r = refract.json_read(json_path)

T.ok(type(r.device.name) == "string" and r.device.name ~= "", "device named")
T.eq(#r.load_average.start, 3, "load average at the start")
T.eq(#r.load_average.finish, 3, "load average at the end")
T.ok(r.peer and r.peer.torch and #r.peer.blas > 0, "the peer's torch version and BLAS libraries")
T.eq(r.peer.torch_threads, 1, "one torch thread by default")
T.ok(type(r.peer.blas_core) == "string" and r.peer.blas_core ~= "", "the peer's OpenBLAS kernels are named")
T.ok(type(r.gemm.family) == "string" and type(r.gemm.blas_core) == "string", "our GEMM family is named")
T.eq(#r.runs, 6, "two batches x three methods")
local peer_of = { encode = "encode", heads = "head_no_spatial", spatial = "head" }
for _, row in ipairs(r.runs) do
  local what = string.format("%s batch %d", row.method, row.batch)
  T.ok(row.arch == "tiny" and row.dtype == "f32" and (row.batch == 1 or row.batch == 3), what .. ": row keys")
  T.eq(row.peer_method, peer_of[row.method], what .. ": the paper's method it is compared with")
  T.ok(row.ours.images_per_s > 0 and row.peer.images_per_s > 0, what .. ": both rates")
  T.near(row.speed_ratio, row.ours.images_per_s / row.peer.images_per_s, 1e-9 * row.speed_ratio,
    what .. ": speed ratio = ours / peer")
  T.ok(row.ours.device_peak > 0, what .. ": our device peak")
  T.ok(row.peer.peak_above_weights >= 0 and row.memory_ratio >= 0, what .. ": peer memory and ratio")
  T.ok(row.weight_bytes > 0, what .. ": weight bytes")
  -- The golden's tolerances for embeddings and decompositions (2e-5 and below).
  T.ok(row.max_abs_diff and row.max_abs_diff < 2e-5, what .. ": agrees with the peer: "
    .. tostring(row.max_abs_diff))
end

-- --peer-method leaves the others to us alone.
local only = bench.run({ "--arch", "tiny", "--batch", "1", "--dtype", "f32", "--seconds", "0.01", "--peer",
  "torch", "--peer-method", "encode" })
T.ok(only.runs[1].peer.images_per_s > 0, "--peer-method encode: the peer encodes")
T.matches(only.runs[2].peer.skipped, "not asked", "--peer-method encode: heads are ours alone")
T.ok(only.runs[3].ours.images_per_s > 0 and not only.runs[3].speed_ratio, "and so is spatial")

T.fails(function() bench.run({ "--arch", "tiny", "--peer", "jax" }) end, "only 'torch' is known")
T.fails(function() bench.run({ "--arch", "tiny", "--method", "spatial,bogus" }) end,
  "--method: unknown 'bogus' (expected encode, heads, spatial)")
T.fails(function() bench.run({ "--arch", "tiny", "--batch", "0" }) end, "--batch needs positive integers")
T.fails(function() bench.run({ "--arch", "ViT-Z" }) end, "--arch: unknown 'ViT-Z'")
T.done()
