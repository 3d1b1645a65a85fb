-- refract encode: encode images and texts with a CLIP model into a safetensors file
local refract = require("refract")
local util = require("refract.util")
local output = require("refract.output")
local Progress = require("refract.progress")
local batches = require("refract.batches")

local usage = [==[
usage: refract encode --model DIR [--images FILE... | --dir DIR [--pattern GLOB]
                      [--exclude GLOB] | --list FILE | --pixels FILE[:TENSOR]]
                      [--texts FILE] [--batch N] [--dtype f32|f16] [--on-error abort|skip]
                      --out OUT.safetensors|OUT.npz

Encodes images and/or texts with the CLIP model in DIR (open_clip layout:
open_clip_config.json + open_clip_model.safetensors; or Hugging Face layout:
config.json + model.safetensors + vocab.json + merges.txt) and writes:
  pixels        [B, 3, S, S]  the preprocessed images (f32)
  image_embeds  [B, D]        image embeddings, not normalised
  text_tokens   [T, 77]       token ids (i64)
  text_embeds   [T, D]        text embeddings, not normalised

  --model DIR          the model directory
  --images FILE...     PNG or JPEG files, preprocessed as the model's config says
  --dir DIR            every .png/.jpg/.jpeg under DIR (recursively, sorted by path)
  --pattern GLOB       with --dir: only the images matching GLOB (a file name glob such
                       as '*.png', or with a '/' a glob of the path below DIR)
  --exclude GLOB       with --dir: leave out the images matching GLOB
  --list FILE          one image path per line (relative to the list's folder)
  --pixels FILE[:NAME] already preprocessed pixels [B, 3, S, S] from a .npy file or a
                       tensor of a .safetensors file (default name: pixels)
  --texts FILE         a JSON list of strings, or a .txt file with one string per line
  --dtype f32|f16      weights on the device (default f32; f16 halves their memory)
  --batch N            images per device batch (default 32)
  --on-error MODE      abort (default): an image that cannot be read stops the run, named;
                       skip: it is left out (of pixels, image_embeds and paths) and listed
                       in the output's `skipped` metadata
  --out FILE           the output .safetensors file, or .npz for NumPy; images read from
                       files record their paths in the metadata (`paths`, a JSON list),
                       as `refract decompose` does
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, images = { arg = true, many = true }, pixels = { arg = true },
  texts = { arg = true }, dtype = { arg = true }, out = { arg = true }, batch = { arg = true },
  dir = { arg = true }, list = { arg = true }, pattern = { arg = true }, exclude = { arg = true },
  on_error = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
if #opts._ > 0 then error("unexpected argument " .. opts._[1] .. "\n" .. usage, 0) end
if not opts.model then error("--model DIR is required\n" .. usage, 0) end
if not opts.out then error("--out FILE is required\n" .. usage, 0) end
output.check_tensors(opts.out)
local sources = (opts.images and 1 or 0) + (opts.dir and 1 or 0) + (opts.list and 1 or 0) + (opts.pixels and 1 or 0)
if sources == 0 and not opts.texts then
  error("nothing to encode: give --images, --dir, --list, --pixels and/or --texts\n" .. usage, 0)
end
if sources > 1 then error("give one of --images, --dir, --list or --pixels, not several", 0) end
if (opts.pattern or opts.exclude) and not opts.dir then error("--pattern and --exclude go with --dir", 0) end
local batch = math.tointeger(tonumber(opts.batch or 32))
if not batch or batch < 1 then error("--batch must be a positive integer", 0) end
local on_error = opts.on_error or "abort"
if on_error ~= "abort" and on_error ~= "skip" then error("--on-error must be abort or skip, not " .. on_error, 0) end
if opts.on_error and not (opts.images or opts.dir or opts.list) then
  error("--on-error goes with --images, --dir or --list", 0)
end

-- The images are listed before the model is loaded, so a wrong path fails fast.
local dataset
if opts.images or opts.dir or opts.list then
  dataset = refract.dataset({ files = opts.images, dir = opts.dir, list = opts.list, pattern = opts.pattern,
                              exclude = opts.exclude })
end
local model = refract.load(opts.model, { dtype = opts.dtype or "f32" })
local out = {}
local metadata = { model = opts.model, producer = "refract " .. refract.version }

if dataset then
  local progress = Progress.new(#dataset)
  local pixels, embeds, skipped = {}, {}, {}
  for p, _, count in batches.batches(dataset, { batch = batch, model = model }, on_error, skipped) do
    embeds[#embeds + 1] = model:encode_images(p)
    pixels[#pixels + 1] = p
    progress:add(count)
  end
  progress:finish()
  if #skipped == #dataset then
    error(string.format("every one of the %d images was skipped (--on-error skip): nothing to write to %s",
      #dataset, opts.out), 0)
  end
  out.pixels = #pixels == 1 and pixels[1] or refract.cat(pixels, 1)
  out.image_embeds = #embeds == 1 and embeds[1] or refract.cat(embeds, 1)
  -- Row i of the outputs is paths[i]: the images skipped are in neither.
  metadata.paths = refract.json_encode(batches.kept_paths(dataset, skipped))
  if #skipped > 0 then metadata.skipped = refract.json_encode(skipped) end
elseif opts.pixels then
  out.pixels = util.read_tensor(opts.pixels, "pixels")
  out.image_embeds = model:encode_images(out.pixels)
end

if opts.texts then
  local texts = util.read_texts(opts.texts)
  out.text_tokens = model:tokenize(texts)
  out.text_embeds = model:encode_texts(out.text_tokens)
end

output.write_tensors(opts.out, out, metadata)
local parts = {}
for _, k in ipairs({ "pixels", "image_embeds", "text_tokens", "text_embeds" }) do
  if out[k] then parts[#parts + 1] = k .. " " .. util.shape_str(out[k]) end
end
local skipped = metadata.skipped and #refract.json_decode(metadata.skipped) or 0
print("wrote " .. opts.out .. ": " .. table.concat(parts, ", ") ..
  (skipped > 0 and string.format(" (%d image%s skipped)", skipped, skipped == 1 and "" or "s") or ""))
