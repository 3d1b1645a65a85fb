-- refract.bench_gemm as a function (not a timing): it runs both sides, agrees with
-- OpenBLAS, reports the kernel family, and rejects bad arguments with clear messages.
-- Its rates are checked against the test's own clock: each rate, turned back into the
-- seconds it implies (2*m*n*k flops per product times the runs, over the rate), must be
-- at least the seconds asked for, and both together at most the call's wall time, so a
-- wrong flop count or a wrong time on either side fails (a ratio of two wrong rates
-- checked against itself did not).
local refract = require("refract")
local T = require("testlib")

local m, n, k, seconds = 13, 37, 20, 0.1
local flops = 2 * m * n * k
for _, dtype in ipairs({ "f32", "f16" }) do
  local args = { m = m, n = n, k = k, dtype = dtype, seconds = 0.01, threads = 1 }
  refract.bench_gemm(args)                       -- warm-up: pipelines built and compiled
  args.seconds = seconds
  local t0 = refract.clock()
  local r = refract.bench_gemm(args)
  local wall = refract.clock() - t0
  T.ok(r.runs >= 1 and r.blas_runs >= 1, dtype .. " runs")
  T.ok(r.ours > 0 and r.openblas > 0, dtype .. " rates")
  local ours_s = flops * r.runs / (r.ours * 1e9)
  local blas_s = flops * r.blas_runs / (r.openblas * 1e9)
  print(string.format("%s: ours %.3f s, OpenBLAS %.3f s implied by the rates; the call took %.3f s",
    dtype, ours_s, blas_s, wall))
  T.ok(ours_s >= seconds * (1 - 1e-9), dtype .. ": our rate implies at least the seconds asked")
  T.ok(blas_s >= seconds * (1 - 1e-9), dtype .. ": OpenBLAS's rate implies at least the seconds asked")
  T.ok(ours_s + blas_s <= wall, dtype .. ": both rates together imply no more than the call took")
  -- The fastest submit's rate is at least the average rate (a ratio of sums never
  -- exceeds the largest ratio).
  T.ok(r.ours_best >= r.ours * (1 - 1e-12), dtype .. ": best >= average")
  T.near(r.ratio, r.ours / r.openblas, 1e-9 * r.ratio, dtype .. " ratio = ours / OpenBLAS")
  T.ok(r.max_rel_diff < 1e-5, dtype .. " agrees with OpenBLAS: " .. r.max_rel_diff)
  T.ok(r.kernel == "host" or r.kernel == "lanes" or r.kernel == "tiled" or r.kernel == "generic", r.kernel)
end

T.fails(function() return refract.bench_gemm { m = 1, n = 2 } end, "'k' is required")
T.fails(function() return refract.bench_gemm { m = 1, n = 2, k = 0 } end, "'k' = 0 is out of range")
T.fails(function() return refract.bench_gemm { m = 1, n = 2, k = 3, dtype = "bf16" } end,
  "dtype 'bf16' is not")
T.fails(function() return refract.bench_gemm { m = 1.5, n = 2, k = 3 } end, "'m' must be an integer")
T.fails(function() return refract.bench_gemm { m = 1, n = 2, k = 3, seconds = -1 } end, "seconds must be")
T.fails(function() return refract.bench_gemm(5) end, "table expected")

-- The command: options without a sub-command printed the usage and exited 0.
local exe = refract.executable()
T.refused(T.run(string.format("'%s' bench --seconds -1", exe)), "usage: refract bench", "bench without a sub-command")
T.eq(T.run(string.format("'%s' bench --help", exe)).code, 0, "bench --help")

T.done()
