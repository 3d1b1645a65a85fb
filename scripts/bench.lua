-- refract bench: benchmarks against peers in the same run: `refract bench gemm`, `refract bench vit`
--
-- `refract bench vit` (lua/lib/refract/bench_vit.lua) times a full-size ViT encoding and
-- decomposing, with their peak memory, and with --peer torch a PyTorch implementation of
-- the same tower (plain, and the paper's per-head methods) on the same weights and pixels.
--
-- `refract bench gemm` times rf_op_gemm (the Linear layer) against OpenBLAS's sgemm on
-- the same data in the same run, for ViT-B/16's four Linear shapes at one image
-- (M = 197 tokens) and a batch of eight (M = 1576), f32 weights, then f16 weights.
local refract = require("refract")
local util = require("refract.util")

local usage = [[
usage: refract bench vit [--help]  (a full-size ViT: encode and decomposition rates and
                                    memory, against PyTorch with --peer torch)
       refract bench gemm [--seconds S] [--threads N] [--shape MxKxN ...] [--no-f16]

Times C[M,N] = A[M,K] . W[N,K]^T with rf_op_gemm and with OpenBLAS cblas_sgemm on the
same data in the same run and prints GFLOP/s (2*M*N*K flops per product) for both:
  ours      whole submits of many products, recording and waiting included
  best      the fastest single submit
  OpenBLAS  cblas_sgemm with N threads (default 2)
  ratio     ours / OpenBLAS
  */cpu     the same per second of the process's CPU time (steadier on a shared machine)
Default shapes: M in {197, 1576} x (K, N) in {768x2304, 768x768, 768x3072, 3072x768},
f32 weights, then the same with f16 weights.

options:
  --seconds S     time per side and shape, after warm-up (default 1)
  --threads N     OpenBLAS threads (default 2)
  --shape MxKxN   time this shape instead (repeatable)
  --no-f16        skip the f16-weight rows

The machine may be shared: compare numbers from one run only, and pin lavapipe's
threads, e.g. LP_NUM_THREADS=2 refract bench gemm.
REFRACT_GEMM=host|lanes|tiled|generic forces a kernel family (see compute/ops/gemm.h); on
a CPU device `host` is OpenBLAS itself, so `REFRACT_GEMM=lanes refract bench gemm` times
the device kernel.]]

if arg[1] == "vit" then
  require("refract.bench_vit").run({ table.unpack(arg, 2) })
  return
end

local opts = util.parse_args(arg, {
  seconds = { arg = true }, threads = { arg = true }, shape = { arg = true, many = true },
  no_f16 = {},
}, usage)
if opts.help or opts._[1] ~= "gemm" then
  -- Options without a sub-command (`bench --seconds 1`) are a mistake too, not a request
  -- for help: the usage goes to stderr with exit status 1.
  if opts.help or #arg == 0 then print(usage) return end
  io.stderr:write(usage, "\n")
  os.exit(1)
end

local seconds = tonumber(opts.seconds or "1") or error("--seconds needs a number", 0)
local threads = math.tointeger(tonumber(opts.threads or "2")) or error("--threads needs an integer", 0)
local shapes = {}
if opts.shape then
  for _, s in ipairs(opts.shape) do
    local m, k, n = s:match("^(%d+)x(%d+)x(%d+)$")
    if not m then error("--shape " .. s .. ": expected MxKxN, e.g. 197x768x2304", 0) end
    shapes[#shapes + 1] = { m = tonumber(m), k = tonumber(k), n = tonumber(n) }
  end
else
  for _, m in ipairs({ 197, 1576 }) do
    for _, kn in ipairs({ { 768, 2304 }, { 768, 768 }, { 768, 3072 }, { 3072, 768 } }) do
      shapes[#shapes + 1] = { m = m, k = kn[1], n = kn[2] }
    end
  end
end

local d = refract.device()
local info = refract.gemm_info()
print(string.format("device: %s (%s), LP_NUM_THREADS=%s, OpenBLAS threads %d (%s kernels), %g s per side",
  d.name, d.type, os.getenv("LP_NUM_THREADS") or "unset", threads, info.blas_core, seconds))
print(string.format("%-6s %-5s %-5s %-5s %-7s %8s %8s %9s %7s %8s %9s %7s  %s", "dtype", "M", "K", "N", "kernel",
  "ours", "best", "OpenBLAS", "ratio", "ours/cpu", "BLAS/cpu", "ratio", "max rel diff"))
local dtypes = opts.no_f16 and { "f32" } or { "f32", "f16" }
for _, dtype in ipairs(dtypes) do
  for _, s in ipairs(shapes) do
    local r = refract.bench_gemm { m = s.m, n = s.n, k = s.k, dtype = dtype, seconds = seconds,
      threads = threads }
    print(string.format("%-6s %-5d %-5d %-5d %-7s %8.1f %8.1f %9.1f %6.1f%% %8.1f %9.1f %6.1f%%  %.1e", dtype,
      s.m, s.k, s.n, r.kernel, r.ours, r.ours_best, r.openblas, 100 * r.ratio, r.ours_cpu, r.openblas_cpu,
      100 * r.ours_cpu / r.openblas_cpu, r.max_rel_diff))
  end
end
print("GFLOP/s; ratio = ours / OpenBLAS in this run; */cpu: GFLOP per second of the process's CPU time,")
print("which a shared machine disturbs far less (with one thread each: --threads 1, LP_NUM_THREADS=1).")
