-- refract decompose: direct contributions of every head, token and MLP to the image embedding
local refract = require("refract")
local util = require("refract.util")
local Progress = require("refract.progress")
local chunks = require("refract.chunks")
local merge = require("refract.merge")
local workers = require("refract.workers")
local batches_of = require("refract.batches").batches
local kept_paths = require("refract.batches").kept_paths
local output = require("refract.output")

local usage = [==[
usage: refract decompose --model DIR (--images FILE... | --dir DIR [--pattern GLOB]
                         [--exclude GLOB] | --list FILE | --pixels FILE[:TENSOR])
                         [--spatial] [--centering reference|exact]
                         [--reduce AXES] [--project FILE[:TENSOR]] [--mean-only]
                         [--chunks DIR [--chunk-size N] [--shard K/N | --devices LIST]]
                         [--on-error abort|skip] [--batch N] [--dtype f32|f16]
                         --out OUT.safetensors|OUT.npz

Splits each image's normalised embedding e/||e|| into the direct contributions of the
vision tower's components (Gandelsman et al., ICLR 2024; definitions in the README):
  attn_heads   [B, L, H, D]     each layer's heads (source tokens summed)
  attn_spatial [B, L, N, H, D]  each head reading each source token (with --spatial)
  mlps         [B, L+1, D]      the embedding term, then each layer's MLP
  cls_attn     [B, L, D]        each layer's CLS-to-CLS term, summed over heads
  ln_post_mean, ln_post_std [B, 1], image_embeds [B, D]
All of them sum to e/||e||. Only what is asked for is computed: nothing of size
N x N x heads x width is ever formed.

  --model DIR          a CLIP checkpoint directory (open_clip or Hugging Face layout)
  --images FILE...     images to decompose
  --dir DIR            every .png/.jpg/.jpeg under DIR (recursively, sorted by path)
  --pattern GLOB       with --dir: only the images matching GLOB (a file name glob such
                       as '*.png', or with a '/' a glob of the path below DIR)
  --exclude GLOB       with --dir: leave out the images matching GLOB
  --list FILE          one image path per line (relative to the list's folder)
  --pixels FILE[:NAME] preprocessed pixels [B, 3, S, S] (.npy, or a tensor of a
                       .safetensors file, default name: pixels)
  --spatial            also write attn_spatial (per source token)
  --centering MODE     reference (default): ln_post's mean split as the paper's code does;
                       exact: each summand centred over its own features
  --reduce AXES        comma-separated axes of the attention terms to sum away:
                       layers, tokens, heads (e.g. --reduce layers,heads)
  --project FILE[:T]   project every contribution onto directions [D, C] (e.g. text
                       embeddings or a classifier): D becomes C in the outputs
  --mean-only          write only the means over all images (mean_attn_heads, mean_mlps,
                       mean_cls_attn, mean_attn_spatial with --spatial) and the count
  --chunks DIR         write per-image results to DIR/part-NNNNNN.safetensors as they are
                       made; a run that was interrupted continues where it stopped, and
                       runs with --shard share the folder (refract merge joins them)
  --chunk-size N       images per chunk file (default 256; a multiple of --batch)
  --shard K/N          do only chunks K, K+N, K+2N, ... (chunk k belongs to shard
                       ((k-1) mod N) + 1; chunks and shards count from 1), so N runs on
                       any machines sharing DIR make exactly the chunks of one run;
                       no --out (refract merge --chunks DIR --out FILE writes it)
  --devices LIST       all, or Vulkan device indices such as 0,2: one worker process per
                       device (REFRACT_DEVICE), all taking chunks from the same queue
  --on-error MODE      abort (default): an image that cannot be read stops the run, named;
                       skip: it is left out and listed in the output's `skipped` metadata
  --batch N            images per device batch (default: as many as fit, at most 32)
  --dtype f32|f16      weights on the device (default f32)
  --out FILE           the output .safetensors file, or .npz for NumPy (per-image results
                       and the means, or with --chunks/--mean-only the means)
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, images = { arg = true, many = true }, dir = { arg = true },
  list = { arg = true }, pixels = { arg = true }, spatial = {}, centering = { arg = true },
  reduce = { arg = true }, project = { arg = true }, mean_only = {}, chunks = { arg = true },
  chunk_size = { arg = true }, batch = { arg = true }, dtype = { arg = true }, out = { arg = true },
  shard = { arg = true }, devices = { arg = true }, on_error = { arg = true },
  pattern = { arg = true }, exclude = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
if not opts.model then usage_error("--model DIR is required") end
local shard, shards
if opts.shard then
  if not opts.chunks then usage_error("--shard needs --chunks DIR") end
  if opts.devices then usage_error("give --shard or --devices, not both") end
  if opts.out then
    usage_error("a shard writes no --out: once all shards are done, refract merge --chunks DIR --out FILE")
  end
  shard, shards = chunks.parse_shard(opts.shard)
elseif not opts.out then
  usage_error("--out FILE is required")
else
  output.check_tensors(opts.out)
end
if opts.devices and not opts.chunks then usage_error("--devices needs --chunks DIR") end
if opts.chunks and opts.out then merge.check_out(opts.chunks, opts.out) end   -- before the run, not after
local on_error = opts.on_error or "abort"
if on_error ~= "abort" and on_error ~= "skip" then usage_error("--on-error must be abort or skip, not " .. on_error) end
local sources = (opts.images and 1 or 0) + (opts.dir and 1 or 0) + (opts.list and 1 or 0) + (opts.pixels and 1 or 0)
if sources ~= 1 then usage_error("give exactly one of --images, --dir, --list or --pixels") end
if (opts.pattern or opts.exclude) and not opts.dir then usage_error("--pattern and --exclude go with --dir") end
local centering = opts.centering or "reference"
if centering ~= "reference" and centering ~= "exact" then
  usage_error("--centering must be reference or exact, not " .. centering)
end
local reduce = {}
for axis in (opts.reduce or ""):gmatch("[^,]+") do reduce[#reduce + 1] = axis end
if opts.chunks and opts.pixels then usage_error("--chunks needs --images, --dir or --list") end

local fingerprint = opts.chunks and chunks.fingerprint(opts.model, opts.project)
local model = refract.load(opts.model, { dtype = opts.dtype or "f32" })
local project = opts.project and util.read_tensor(opts.project, "tensor") or nil
-- One decomposer for the whole run: the fold of the model, the projection and the
-- centring is built once, and the scratch is reused from batch to batch.
local made, decomposer = pcall(model.decomposer, model, { spatial = opts.spatial or false, reduce = reduce,
                                                          project = project, centering = centering })
if not made then
  -- The projection's problems (shape, NaN) are named by the file they came from.
  error((project and ("--project " .. opts.project .. ": ") or "") .. tostring(decomposer), 0)
end
local batch = util.positive_option(opts, "batch", decomposer:max_batch(), usage_error)
local names = { "attn_heads", "mlps", "cls_attn", "ln_post_mean", "ln_post_std", "image_embeds" }
if opts.spatial then table.insert(names, 1, "attn_spatial") end
local summed = { attn_spatial = true, attn_heads = true, mlps = true, cls_attn = true }

-- The batches of pixels to decompose, and how many images in all.
local function batches()
  if opts.pixels then
    local pixels = util.read_tensor(opts.pixels, "pixels")
    local n = pixels:ndim() > 0 and pixels:shape(1) or 0
    -- An empty batch wrote a file holding only count = 0 and said it had decomposed it.
    if n == 0 then error("--pixels " .. opts.pixels .. ": no images (the batch is empty)", 0) end
    local first = 1
    return n, nil, function()
      if first > n then return nil end
      local count = math.min(batch, n - first + 1)
      local part = pixels:narrow(1, first, count)
      first = first + count
      return part, first - count, count
    end
  end
  local ds = refract.dataset({ dir = opts.dir, list = opts.list, files = opts.images, pattern = opts.pattern,
                               exclude = opts.exclude })
  return #ds, ds, nil
end

local total, dataset, pixel_batches = batches()
local metadata = {
  model = opts.model, centering = centering, reduce = table.concat(reduce, ","),
  spatial = tostring(opts.spatial or false), images = tostring(total),
  producer = "refract " .. refract.version,
}

-- Running sums of the summed components (device), for the means.
local sums = {}
local function add_totals(totals)
  for name, s in pairs(totals) do
    if sums[name] then
      local new = sums[name] + s
      sums[name]:free()
      sums[name] = new
    else
      sums[name] = s:clone()
    end
  end
end

-- Adds a batch's components, summed over its images.
local function add_batch(parts)
  local totals = {}
  for name in pairs(summed) do
    if parts[name] then totals[name] = parts[name]:sum(1) end
  end
  add_totals(totals)
  for _, t in pairs(totals) do t:free() end
end

local function write_means(out_path, count, extra)
  local out = extra or {}
  for name, s in pairs(sums) do out["mean_" .. name] = s / count end
  out.count = refract.tensor({ count }, "i64")
  output.write_tensors(out_path, out, metadata)
end

local progress = Progress.new(total)

if opts.chunks then
  local chunk_size = util.positive_option(opts, "chunk_size", 256, usage_error)
  if chunk_size < batch or chunk_size % batch ~= 0 then
    usage_error("--chunk-size must be a positive multiple of --batch (" .. batch .. ")")
  end
  local record = chunks.record(metadata, {
    chunk_size = tostring(chunk_size), batch = tostring(batch), dtype = opts.dtype or "f32",
    mean_only = tostring(opts.mean_only or false), on_error = on_error, project = opts.project,
  }, opts.model, opts.project, fingerprint)
  local store = chunks.open(opts.chunks, dataset, record, { plain = not shard })
  local on_done = function(n) progress:add(n) end
  if opts.devices then
    -- One worker per device on the same chunk queue; this process waits, then checks.
    decomposer:free()
    model:free()
    local shown = 0
    workers.run("decompose", workers.arguments(arg, { devices = true, out = true, batch = true },
      { "--shard", "1/1", "--batch", tostring(batch) }), workers.parse(opts.devices), function()
        store:renew()
        local finished = store:finished()
        progress:add(math.min(finished * chunk_size, total) - shown)
        shown = math.min(finished * chunk_size, total)
      end)
    on_done = function() end
  end
  -- Chunk k is made by whichever process claims it first; the others wait for it.
  for k, lock in store:claims(shard or 1, shards or 1, on_done) do
    local collected, skipped = {}, {}
    for pixels, _, count in batches_of(dataset, { batch = batch, model = model, start = store:first(k),
                                                  stop = store:last(k) }, on_error, skipped) do
      local d = decomposer:run(pixels)
      pixels:free()
      for _, name in ipairs(names) do
        collected[name] = collected[name] or {}
        table.insert(collected[name], d[name]:host())
      end
      for _, t in pairs(d) do t:free() end
      store:renew(lock)  -- other hosts take over locks that are not renewed
      progress:add(count)
    end
    store:write(k, lock, collected, opts.mean_only and {} or names, skipped)
  end
  local elapsed, rate = progress:finish()
  if shard then
    print(string.format("shard %d/%d: its %d of the %d chunks are finished in %s (%.1f s, %.2f images/s)",
      shard, shards, (store.count - shard) // shards + 1, store.count, opts.chunks, elapsed, rate))
    return
  end
  -- The means come from each chunk's stored sums, in chunk order, whoever made the chunk
  -- and whenever: an interrupted or shared run ends with the same bytes.
  local images = merge.write(opts.chunks, opts.out, true)
  store:close()
  print(string.format("decomposed %d images in %.1f s (%.2f images/s); %d chunk files in %s; means in %s",
    images, elapsed, rate, store.count, opts.chunks, opts.out))
  return
end

local collected, skipped = {}, {}
local next_batch = pixel_batches or batches_of(dataset, { batch = batch, model = model }, on_error, skipped)
for pixels, _, count in next_batch do
  local d = decomposer:run(pixels)
  pixels:free()
  add_batch(d)
  if not opts.mean_only then
    for _, name in ipairs(names) do
      collected[name] = collected[name] or {}
      table.insert(collected[name], d[name]:host())
    end
  end
  for _, t in pairs(d) do t:free() end
  progress:add(count)
end
local elapsed, rate = progress:finish()
local out = {}
for name, list in pairs(collected) do out[name] = refract.cat(list, 1) end
local count = total - #skipped
if count == 0 then
  -- Every image skipped: the file held only count = 0 while this said "decomposed N images"
  -- (merge refuses such a folder the same way).
  error(string.format("every one of the %d images was skipped (--on-error skip): nothing to write to %s",
    total, opts.out), 0)
end
if dataset then
  metadata.paths = refract.json_encode(kept_paths(dataset, skipped, 1, total))
  if #skipped > 0 then metadata.skipped = refract.json_encode(skipped) end
end
write_means(opts.out, count, out)
print(string.format("decomposed %d images in %.1f s (%.2f images/s) into %s%s", count, elapsed, rate, opts.out,
  #skipped > 0 and string.format(" (%d skipped)", #skipped) or ""))
