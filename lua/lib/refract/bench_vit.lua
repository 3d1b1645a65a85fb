-- refract.bench_vit: `refract bench vit`: a full-size ViT (random weights unless --model)
-- encoding and decomposing on the device, optionally against a PyTorch implementation of
-- the same tower on the same weights and pixels in the same run (--peer torch, the
-- developer tool scripts/dev/torch_vit_peer.py): images/s, peak memory and their ratios.
local refract = require("refract")
local util = require("refract.util")
local random_clip = require("refract.random_clip")

local M = {}

M.usage = [==[
usage: refract bench vit [--arch ViT-B-16[,ViT-L-14,...]] [--model DIR] [--batch 8[,1,32]]
                         [--dtype f32,f16] [--method encode,heads,spatial] [--seconds S]
                         [--peer torch [--peer-threads T] [--blas-threads N]] [--json FILE]

Writes random weights of each ARCH (ViT-B-16, ViT-B-32, ViT-L-14, ViT-H-14, tiny; vision
tower only, f32) to a temporary folder unless --model names a checkpoint, and times on
random pixels, for each weight dtype and batch:
  encode    model:encode_images                       peer: plain encoding
  heads     a decomposer's run (attn_heads, mlps, ...) peer: the paper's head_no_spatial
  spatial   the same with spatial = true             peer: the paper's head (the
            (attn_spatial: every head x source token)       N x N x heads x width tensor)
A batch larger than the device holds at once runs as several calls of the largest batch
that fits (chosen from the device's memory budget; the table says how many per call).
Columns: images/s; peak memory above the weights: ours on the device (refract's
counters over the timed passes: what the computation holds), ours on the host (growth of
the process's peak resident set from before the warm-up pass: kernel compilation and, on
a CPU device, the first touch of device memory, so it overlaps the device column), the
peer's (its resident set's peak above its level with the weights loaded); ratios
ours/peer for speed and peer/ours-device for memory; the largest difference between the
two sides' results on image 1 (both compute the golden's definitions,
tests/data/tiny-gelu/README.md).

options:
  --arch A,B       architectures (default ViT-B-16)
  --model DIR      a checkpoint instead of random weights (one architecture)
  --batch N,M      images per batch (default 8)
  --dtype f32,f16  weight storage on the device (default f32,f16); the peer keeps f16
                   weights in float16 and widens each where it is used
  --method LIST    encode, heads, spatial (default all three)
  --seconds S      time per measurement after a warm-up batch (default 3); at least one
                   batch is timed
  --rounds R       measures ours then the peer R times in turn and keeps each side's best
                   rate per method (a shared machine's load comes and goes; default 1)
  --peer torch     run the PyTorch peer (Debian's python3-torch, OpenBLAS, see
                   ../shared/LAVAPIPE.md) after ours on each batch; its `head` method is
                   skipped where its tensors would not fit the host's available memory
  --peer-method L  the methods the peer runs (default: all of --method; its `head` takes
                   ~40 s per ViT-B/16 image and 1.4 GiB per image and layer)
  --peer-threads T PyTorch's threads (default 1);  --blas-threads N  OpenBLAS's (default
                   all CPUs)
  --json FILE      writes every result (and the device, load average, peer's BLAS)
Pin lavapipe's threads for stable numbers: LP_NUM_THREADS=2 refract bench vit.]==]

local PYTHON = os.getenv("REFRACT_PYTHON") or "/usr/bin/python3"

local function mib(b) return b / 2^20 end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function split_list(s, what, allowed)
  local list = {}
  for item in tostring(s):gmatch("[^,%s]+") do
    if allowed and not allowed[item] then
      local names = {}
      for k in pairs(allowed) do names[#names + 1] = k end
      table.sort(names)
      error(string.format("--%s: unknown '%s' (expected %s)", what, item, table.concat(names, ", ")), 0)
    end
    list[#list + 1] = item
  end
  if #list == 0 then error("--" .. what .. " needs a value", 0) end
  return list
end

-- {===== host memory (Linux /proc)

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function status_bytes(field)
  local s = read_file("/proc/self/status")
  local kib = s and s:match(field .. ":%s*(%d+)")
  return kib and tonumber(kib) * 1024 or 0
end

-- Sets the process's peak resident set to its current one; false where refused.
local function reset_host_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  f:close()
  return ok ~= nil
end

local function mem_available()
  local s = read_file("/proc/meminfo")
  local kib = s and s:match("MemAvailable:%s*(%d+)")
  return kib and tonumber(kib) * 1024 or math.huge
end

local function load_average()
  local s = read_file("/proc/loadavg")
  if not s then return nil end
  local a, b, c = s:match("^(%S+)%s+(%S+)%s+(%S+)")
  return { tonumber(a), tonumber(b), tonumber(c) }
end

-- }=====

-- {===== our side

-- Image 1 of a batch's output: the tensor itself when it holds only that image (a device
-- copy beside a 289 MiB ViT-L/14 attn_spatial does not fit lavapipe's heap), else a slice
-- the caller frees.
local function first_image(t)
  return t:shape(1) == 1 and t or t:slice(1, 1, 1)
end

local function free_all(out)
  if type(out) == "table" then
    for _, t in pairs(out) do t:free() end
  else
    out:free()
  end
end

-- Our methods: f(pixels) -> outputs of the whole batch's first call, run in calls of at
-- most `per_call` images (the largest batch that fits the device). The decompositions run
-- as a dataset loop does: one decomposer per method (its fold built once), a run per
-- call; free() releases them.
local function our_methods(model)
  local decs = {}
  local function dec(spatial)
    decs[spatial] = decs[spatial] or model:decomposer({ spatial = spatial })
    return decs[spatial]
  end
  return {
    encode = { per_call = function(b) return b end,   -- encode_images splits by itself
               run = function(x) return model:encode_images(x) end },
    heads = { per_call = function(b) return math.min(b, dec(false):max_batch()) end,
              run = function(x) return dec(false):run(x) end },
    spatial = { per_call = function(b) return math.min(b, dec(true):max_batch()) end,
                run = function(x) return dec(true):run(x) end },
    free = function() for _, d in pairs(decs) do d:free() end end,
  }
end

-- One pass over the batch in calls of `per_call` images; returns image 1's outputs
-- (copied to the host) when `keep` is set.
local function pass(method, pixels, per_call, keep)
  local b, first_out = pixels:shape(1), nil
  for first = 1, b, per_call do
    local count = math.min(per_call, b - first + 1)
    local x = count == b and pixels or pixels:slice(1, first, first + count - 1)
    local out = method.run(x)
    if keep and first == 1 then
      first_out = {}
      for name, t in pairs(type(out) == "table" and out or { image_embeds = out }) do
        local row = first_image(t)
        first_out[name] = row:host()
        if row ~= t then row:free() end
      end
    end
    free_all(out)
    if x ~= pixels then x:free() end
  end
  refract.finish()
  return first_out
end

-- images/s over whole batches for at least `seconds` after a warm-up pass; the peak
-- device memory of the timed passes above what was held before them (refract's
-- counters: exact), and the growth of the process's peak resident set from before the
-- warm-up (so it includes compiling the kernels and, on a CPU device, touching device
-- memory for the first time). With `keep`, one more pass then keeps image 1's outputs
-- for the comparison with the peer.
local function measure_ours(method, pixels, per_call, seconds, keep)
  refract.finish()
  collectgarbage()
  local rss0 = status_bytes("VmRSS")
  local host_exact = reset_host_peak()
  pass(method, pixels, per_call, false)
  collectgarbage()
  local held = refract.memory().in_use
  refract.reset_peak_memory()
  local n, start = 0, refract.clock()
  repeat
    pass(method, pixels, per_call, false)
    n = n + pixels:shape(1)
  until refract.clock() - start >= seconds
  local elapsed = refract.clock() - start
  local result = { images_per_s = n / elapsed, seconds = elapsed, per_call = per_call,
                   device_peak = refract.memory().peak - held,
                   host_peak = host_exact and math.max(0, status_bytes("VmHWM") - rss0) or nil }
  return result, keep and pass(method, pixels, per_call, true) or nil
end

-- }=====

-- {===== the peer

local PEER_METHOD = { encode = "encode", heads = "head_no_spatial", spatial = "head" }

local function peer_script()
  return refract.home() .. "/scripts/dev/torch_vit_peer.py"
end

local function check_peer(kind)
  if kind ~= "torch" then error("--peer: only 'torch' is known, not '" .. tostring(kind) .. "'", 0) end
  local f = io.open(peer_script(), "r")
  if not f then error("--peer torch: " .. peer_script() .. " is missing", 0) end
  f:close()
  if not os.execute(PYTHON .. " -c 'import torch' >/dev/null 2>&1") then
    error("--peer torch: " .. PYTHON .. " cannot import torch (Debian: apt-get install python3-torch)", 0)
  end
end

-- Host bytes the paper's `head` method holds at its peak for a batch: the [B, N, N, H, dh]
-- and [B, N, N, H, W] tensors of one layer at once.
local function peer_head_bytes(c, batch)
  return batch * c.tokens * c.tokens * c.heads * (c.head_width + c.width) * 4
end

-- Runs the peer on the same weights and pixels; returns its result table (per method) and
-- image 1's outputs, or nil and why.
local function run_peer(opts, dir, dtype, pixels_path, methods, tmp)
  local json_path, out_path = tmp .. "/peer.json", tmp .. "/peer_outputs.safetensors"
  os.remove(json_path)
  local cmd = table.concat({ PYTHON, shell_quote(peer_script()), "--model", shell_quote(dir),
    "--pixels", shell_quote(pixels_path), "--methods", table.concat(methods, ","), "--dtype", dtype,
    "--seconds", tostring(opts.seconds), "--json", shell_quote(json_path), "--outputs", shell_quote(out_path),
    "--torch-threads", tostring(opts.peer_threads), "--blas-threads", tostring(opts.blas_threads) }, " ")
  io.stdout:flush()
  local ok = os.execute(cmd)
  local f = io.open(json_path, "r")
  if not ok or not f then
    if f then f:close() end
    return nil, "the peer failed (" .. cmd .. ")"
  end
  f:close()
  return refract.json_read(json_path), out_path
end

-- Largest |ours - peer| over the tensors both have for image 1.
local function max_diff(ours, peer_path, peer_method)
  if not ours or not peer_path then return nil end
  local worst
  for name, t in pairs(ours) do
    local ok, p = pcall(refract.read, peer_path, peer_method .. "." .. name)
    if ok and p then
      -- A comparison that fails still leaves the measured rates to report.
      local row = first_image(p)
      local dok, d = pcall(function() return (t - row):abs():max():item() end)
      if dok then worst = math.max(worst or 0, d) end
      if row ~= p then row:free() end
      p:free()
    end
  end
  return worst
end

-- }=====

local function parse(args)
  local opts = util.parse_args(args, { arch = { arg = true }, model = { arg = true },
    batch = { arg = true }, seconds = { arg = true }, dtype = { arg = true }, method = { arg = true },
    peer = { arg = true }, peer_method = { arg = true }, peer_threads = { arg = true }, rounds = { arg = true },
    blas_threads = { arg = true },
    json = { arg = true } }, M.usage)
  if opts.help then return opts end
  opts.archs = split_list(opts.arch or "ViT-B-16", "arch")
  for _, a in ipairs(opts.archs) do
    if not opts.model and not random_clip.archs[a] then
      error(string.format("--arch: unknown '%s' (%s)", a, random_clip.arch_names()), 0)
    end
  end
  if opts.model and #opts.archs > 1 then error("--model takes one architecture", 0) end
  opts.batches = {}
  for _, b in ipairs(split_list(opts.batch or "8", "batch")) do
    local n = math.tointeger(tonumber(b))
    if not n or n < 1 then error("--batch needs positive integers, not '" .. b .. "'", 0) end
    opts.batches[#opts.batches + 1] = n
  end
  opts.dtypes = split_list(opts.dtype or "f32,f16", "dtype", { f32 = true, f16 = true })
  opts.methods = split_list(opts.method or "encode,heads,spatial", "method",
    { encode = true, heads = true, spatial = true })
  opts.peer_methods = {}
  for _, m in ipairs(split_list(opts.peer_method or table.concat(opts.methods, ","), "peer-method",
    { encode = true, heads = true, spatial = true })) do opts.peer_methods[m] = true end
  opts.seconds = tonumber(opts.seconds or "3") or error("--seconds needs a number", 0)
  opts.rounds = math.tointeger(tonumber(opts.rounds or "1"))
  if not opts.rounds or opts.rounds < 1 then error("--rounds needs a positive integer", 0) end
  opts.peer_threads = math.tointeger(tonumber(opts.peer_threads or "1")) or error("--peer-threads needs an integer", 0)
  local cpus = tonumber((io.popen("nproc 2>/dev/null"):read("l"))) or 2
  opts.blas_threads = math.tointeger(tonumber(opts.blas_threads or cpus)) or error("--blas-threads needs an integer", 0)
  if opts.peer then check_peer(opts.peer) end
  return opts
end

local function fmt(x, f)
  return x and string.format(f, x) or "-"
end

local function print_header(peer)
  if peer then
    print(string.format("  %-9s %5s %9s %9s %7s %9s %9s %9s %7s %9s", "method", "call", "ours/s", "torch/s",
      "speed", "ours dev", "ours host", "torch", "memory", "max|diff|"))
  else
    print(string.format("  %-9s %5s %9s %9s %9s %9s", "method", "call", "ours/s", "x encode", "ours dev", "ours host"))
  end
end

-- One round: ours on every method, then the peer on the same pixels. Returns our
-- results, image 1's outputs (when `keep`), the peer's results, its outputs file and its
-- report.
local function measure_round(opts, model, c, dir, dtype, tmp, batch, pixels, keep)
  local ours, first = {}, {}
  local methods = our_methods(model)
  for _, name in ipairs(opts.methods) do
    local method = methods[name]
    local mok, r, out = pcall(measure_ours, method, pixels, method.per_call(batch), opts.seconds,
      keep and opts.peer ~= nil)
    if mok then
      ours[name], first[name] = r, out
    else
      ours[name] = { error = tostring(r) }
      print(string.format("  %-9s ours failed: %s", name, tostring(r)))
    end
  end
  methods.free()
  if not opts.peer then return ours, first end
  local pixels_path = tmp .. "/pixels.safetensors"
  refract.write(pixels_path, { pixels = pixels })
  local run, skipped = {}, {}
  for _, name in ipairs(opts.methods) do
    local need = name == "spatial" and peer_head_bytes(c, batch) or 0
    if not opts.peer_methods[name] then
      skipped[name] = "not asked (--peer-method)"
    elseif need > 0.8 * mem_available() then
      skipped[name] = string.format("head needs ~%.1f GiB, %.1f GiB available", need / 2^30, mem_available() / 2^30)
    else
      run[#run + 1] = PEER_METHOD[name]
    end
  end
  local peer_info, peer_out
  if #run > 0 then
    peer_info, peer_out = run_peer(opts, dir, dtype, pixels_path, run, tmp)
    if not peer_info then
      print("  " .. peer_out)
      peer_out = nil
    end
  end
  local peer = {}
  for _, name in ipairs(opts.methods) do
    local r = peer_info and peer_info.methods[PEER_METHOD[name]]
    peer[name] = r or { skipped = skipped[name] or "the peer failed" }
  end
  return ours, first, peer, peer_out, peer_info
end

-- Per method, the round with the higher rate (the one the machine's other load disturbed
-- least); the rates of every round are kept in `rounds`.
local function keep_best(best, new)
  if not best then
    for _, r in pairs(new) do r.rounds = { r.images_per_s } end
    return new
  end
  for name, r in pairs(new) do
    local b = best[name]
    local rounds = b.rounds or {}
    rounds[#rounds + 1] = r.images_per_s
    if r.images_per_s and (not b.images_per_s or r.images_per_s > b.images_per_s) then
      best[name] = r
      b = r
    end
    b.rounds = rounds
  end
  return best
end

-- Benchmarks one model folder in one dtype on every batch; appends rows to `rows`.
local function bench_model(opts, arch, dir, dtype, tmp, rows)
  local ok, model = pcall(refract.load, dir, { vision_only = true, dtype = dtype })
  if not ok then
    print(string.format("%s %s: does not load: %s", arch, dtype, tostring(model)))
    rows[#rows + 1] = { arch = arch, dtype = dtype, error = tostring(model) }
    return
  end
  local c = model:config()
  collectgarbage()
  local weights = refract.memory().in_use
  for _, batch in ipairs(opts.batches) do
    print(string.format("%s, %s weights (%.0f MiB on the device), batch %d: %s", arch, dtype, mib(weights), batch,
      c.description))
    print_header(opts.peer)
    local pixels = refract.randn({ batch, 3, c.image_size, c.image_size }, 1)
    local ours, first, peer, peer_out, peer_info
    for round = 1, opts.rounds do
      local o, f, p, po, pi = measure_round(opts, model, c, dir, dtype, tmp, batch, pixels, round == 1)
      ours, peer = keep_best(ours, o), p and keep_best(peer, p) or peer
      if round == 1 then first, peer_out = f, po end
      peer_info = peer_info or pi
    end
    local encode_rate = ours.encode and ours.encode.images_per_s
    for _, name in ipairs(opts.methods) do
      local o, p = ours[name], peer and peer[name]
      local row = { arch = arch, dtype = dtype, batch = batch, method = name, weight_bytes = weights,
                    ours = o, peer = p, peer_method = p and PEER_METHOD[name] or nil }
      if o.images_per_s and encode_rate then row.x_encode = o.images_per_s / encode_rate end
      local ours_mem = o.device_peak
      if p and p.images_per_s and o.images_per_s then
        row.speed_ratio = o.images_per_s / p.images_per_s
        row.memory_ratio = ours_mem and ours_mem > 0 and p.peak_above_weights / ours_mem or nil
        row.max_abs_diff = max_diff(first[name], peer_out, PEER_METHOD[name])
      end
      rows[#rows + 1] = row
      if opts.peer then
        print(string.format("  %-9s %5s %9s %9s %7s %9s %9s %9s %7s %9s%s", name, fmt(o.per_call, "%d"),
          fmt(o.images_per_s, "%.3f"), fmt(p.images_per_s, "%.4f"), fmt(row.speed_ratio, "%.2fx"),
          fmt(o.device_peak and mib(o.device_peak), "%.1f"), fmt(o.host_peak and mib(o.host_peak), "%.1f"),
          fmt(p.peak_above_weights and mib(p.peak_above_weights), "%.1f"), fmt(row.memory_ratio, "%.1fx"),
          fmt(row.max_abs_diff, "%.1e"), p.skipped and ("   torch skipped: " .. p.skipped) or ""))
      else
        print(string.format("  %-9s %5s %9s %9s %9s %9s", name, fmt(o.per_call, "%d"), fmt(o.images_per_s, "%.3f"),
          fmt(row.x_encode, "%.2fx"), fmt(o.device_peak and mib(o.device_peak), "%.1f"),
          fmt(o.host_peak and mib(o.host_peak), "%.1f")))
      end
    end
    if peer_info then
      rows.peer_info = { torch = peer_info.torch, blas = peer_info.blas, blas_core = peer_info.blas_core,
                         torch_threads = peer_info.torch_threads, blas_threads = peer_info.blas_threads }
    end
    for _, out in pairs(first) do free_all(out) end
    pixels:free()
  end
  model:free()
end

function M.run(args)
  local opts = parse(args)
  if opts.help then print(M.usage) return end
  local d = refract.device()
  local load0 = load_average()
  local gemm = refract.gemm_info()
  print(string.format("device: %s (%s), LP_NUM_THREADS=%s, load average %s", d.name, d.type,
    os.getenv("LP_NUM_THREADS") or "unset", load0 and table.concat(load0, " ") or "?"))
  print(string.format("ours: Linear layers by the %s kernel family%s", gemm.family,
    gemm.family == "host" and string.format(" (OpenBLAS, %s kernels)", gemm.blas_core) or ""))
  print("memory in MiB above the weights; call = images per call that fit the device")
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -p " .. shell_quote(tmp)))
  local rows = {}
  local ok, err = pcall(function()
    for _, arch in ipairs(opts.archs) do
      local dir = opts.model
      if not dir then
        dir = tmp .. "/" .. arch
        random_clip.write(dir, arch, { vision_only = true })
      end
      for _, dtype in ipairs(opts.dtypes) do bench_model(opts, arch, dir, dtype, tmp, rows) end
      if not opts.model then os.execute("rm -rf " .. shell_quote(dir)) end
    end
  end)
  os.execute("rm -rf " .. shell_quote(tmp))
  if not ok then error(err, 0) end
  local load1 = load_average()
  print(string.format("load average at the end: %s", load1 and table.concat(load1, " ") or "?"))
  if rows.peer_info then
    print(string.format("peer: torch %s, %d torch thread(s), %d BLAS thread(s), OpenBLAS core %s, %s",
      rows.peer_info.torch, rows.peer_info.torch_threads, rows.peer_info.blas_threads,
      tostring(rows.peer_info.blas_core), table.concat(rows.peer_info.blas, " ")))
  end
  local result = { device = { name = d.name, type = d.type }, lp_num_threads = os.getenv("LP_NUM_THREADS"),
                   gemm = gemm,
                   load_average = { start = load0, finish = load1 }, seconds = opts.seconds,
                   peer = rows.peer_info, runs = {} }
  for i, r in ipairs(rows) do result.runs[i] = r end
  if opts.json then
    -- Written as every output is: a full disk or a planted link is an error, not a cut file.
    refract.write_text(opts.json, refract.json_encode(result, 1) .. "\n")
  end
  return result
end

return M
