-- refract.bench_gemm as a function (not a timing): it runs both sides, agrees with
-- OpenBLAS, reports the kernel family, and rejects bad arguments with clear messages.
local refract = require("refract")
local T = require("testlib")

for _, dtype in ipairs({ "f32", "f16" }) do
  local r = refract.bench_gemm { m = 13, n = 37, k = 20, dtype = dtype, seconds = 0.01, threads = 1 }
  T.ok(r.ours > 0 and r.openblas > 0 and r.ours_best >= r.ours * 0.5, dtype .. " rates")
  T.ok(r.runs >= 1 and r.blas_runs >= 1, dtype .. " runs")
  T.ok(r.max_rel_diff < 1e-5, dtype .. " agrees with OpenBLAS: " .. r.max_rel_diff)
  T.ok(r.kernel == "lanes" or r.kernel == "tiled" or r.kernel == "generic", r.kernel)
  T.near(r.ratio, r.ours / r.openblas, 1e-9)
end

T.fails(function() return refract.bench_gemm { m = 1, n = 2 } end, "'k' is required")
T.fails(function() return refract.bench_gemm { m = 1, n = 2, k = 0 } end, "'k' = 0 is out of range")
T.fails(function() return refract.bench_gemm { m = 1, n = 2, k = 3, dtype = "bf16" } end,
  "dtype 'bf16' is not")
T.fails(function() return refract.bench_gemm { m = 1.5, n = 2, k = 3 } end, "'m' must be an integer")
T.fails(function() return refract.bench_gemm { m = 1, n = 2, k = 3, seconds = -1 } end, "seconds must be")
T.fails(function() return refract.bench_gemm(5) end, "table expected")

T.done()
