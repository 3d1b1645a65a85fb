-- refract.bench_vit: `refract bench vit`: a full-size ViT (random weights unless --model)
-- encoding and decomposing on the device in one run: images/s of plain encoding with f32
-- and f16 weights, of the decomposition (heads; spatial) and their ratios to encoding,
-- and the peak device memory of a spatial decomposition next to what the reference
-- implementation materialises.
local refract = require("refract")
local util = require("refract.util")
local random_clip = require("refract.random_clip")

local M = {}

M.usage = [==[
usage: refract bench vit [--arch ViT-B-16] [--model DIR] [--batch N] [--seconds S] [--no-f16]

Writes random weights of ARCH (ViT-B-16, ViT-B-32, ViT-L-14, ViT-H-14, tiny; vision tower only)
to a temporary folder unless --model names a checkpoint, then times on random pixels:
  encode f32 / f16     model:encode_images, images/s
  decompose heads      a decomposer's run (attn_heads, mlps, cls_attn), images/s and
                       ratio to encode f32
  decompose spatial    the same with attn_spatial (every head x source token), ratio
and prints the peak device memory of one spatial decomposition of a batch next to the
N x N x heads x width floats per image and layer that the reference code materialises.
  --batch N      images per batch (default 8)
  --seconds S    time per measurement after a warm-up batch (default 3)
Pin lavapipe's threads for stable numbers: LP_NUM_THREADS=2 refract bench vit.]==]

local function mib(b) return b / 2^20 end

-- Images/s of f(pixels) over at least `seconds` (whole batches, device finished).
local function rate(f, pixels, seconds)
  local out = f(pixels)
  for _, t in pairs(type(out) == "table" and out or { out }) do t:free() end
  refract.finish()
  local n, start = 0, refract.clock()
  repeat
    out = f(pixels)
    refract.finish()
    for _, t in pairs(type(out) == "table" and out or { out }) do t:free() end
    n = n + pixels:shape(1)
  until refract.clock() - start >= seconds
  return n / (refract.clock() - start)
end

function M.run(args)
  local opts = util.parse_args(args, { arch = { arg = true }, model = { arg = true },
    batch = { arg = true }, seconds = { arg = true }, no_f16 = {} }, M.usage)
  if opts.help then print(M.usage) return end
  local arch = opts.arch or "ViT-B-16"
  local batch = math.tointeger(tonumber(opts.batch or "8")) or error("--batch needs an integer", 0)
  local seconds = tonumber(opts.seconds or "3") or error("--seconds needs a number", 0)
  local dir, tmp = opts.model, nil
  if not dir then
    tmp = os.tmpname()
    os.remove(tmp)
    dir = tmp
    random_clip.write(dir, arch, { vision_only = true })
  end
  local d = refract.device()
  print(string.format("device: %s (%s), LP_NUM_THREADS=%s", d.name, d.type, os.getenv("LP_NUM_THREADS") or "unset"))

  local model = refract.load(dir, { vision_only = true })
  local c = model:config()
  print(string.format("model: %s (%s), batch %d, %g s per measurement", opts.model or ("random " .. arch),
    c.description, batch, seconds))
  local pixels = refract.randn({ batch, 3, c.image_size, c.image_size }, 1)
  local results = {}
  local function row(name, value, ratio)
    results[name] = value
    print(string.format("  %-22s %8.2f images/s%s", name, value,
      ratio and string.format("   %.2f x encode", ratio) or ""))
  end
  local encode = rate(function(x) return model:encode_images(x) end, pixels, seconds)
  row("encode f32", encode)
  -- As a dataset loop runs: one decomposer, its fold built once, a run per batch.
  local dec = model:decomposer()
  local heads = rate(function(x) return dec:run(x) end, pixels, seconds)
  row("decompose heads", heads, heads / encode)
  dec:free()
  dec = model:decomposer({ spatial = true })
  local spatial = rate(function(x) return dec:run(x) end, pixels, seconds)
  row("decompose spatial", spatial, spatial / encode)
  dec:free()

  -- Peak memory of one spatial decomposition, beyond what the model and the
  -- decomposer's fold hold.
  dec = model:decomposer({ spatial = true })
  refract.finish()
  local held = refract.memory().in_use
  refract.reset_peak_memory()
  local out = dec:run(pixels)
  refract.finish()
  local peak = refract.memory().peak - held
  for _, t in pairs(out) do t:free() end
  dec:free()
  local n, h, w, l = c.tokens, c.heads, c.width, c.layers
  local reference = n * n * h * w * 4
  print(string.format("  peak device memory, spatial decomposition of %d images: %.1f MiB beyond the "
    .. "%.1f MiB of weights and fold", batch, mib(peak), mib(held)))
  print(string.format("  (attn_spatial itself: %.1f MiB; the reference materialises N*N*H*width floats = "
    .. "%.0f MiB per image and layer, %.1f GiB for this batch's %d layers)", mib(batch * l * n * h * c.embed_dim * 4),
    mib(reference), reference * batch * l / 2^30, l))
  model:free()

  if not opts.no_f16 then
    local half = refract.load(dir, { dtype = "f16", vision_only = true })
    row("encode f16", rate(function(x) return half:encode_images(x) end, pixels, seconds))
    half:free()
  end
  if tmp then os.execute(string.format("rm -rf '%s'", tmp)) end
  return results
end

return M
