-- refract encode: encode images and texts with a CLIP model into a safetensors file
local refract = require("refract")
local util = require("refract.util")
local output = require("refract.output")

local usage = [==[
usage: refract encode --model DIR [--images FILE...] [--pixels FILE[:TENSOR]]
                      [--texts FILE] [--dtype f32|f16] --out OUT.safetensors|OUT.npz

Encodes images and/or texts with the CLIP model in DIR (open_clip layout:
open_clip_config.json + open_clip_model.safetensors; or Hugging Face layout:
config.json + model.safetensors + vocab.json + merges.txt) and writes:
  pixels        [B, 3, S, S]  the preprocessed images (f32)
  image_embeds  [B, D]        image embeddings, not normalised
  text_tokens   [T, 77]       token ids (i64)
  text_embeds   [T, D]        text embeddings, not normalised

  --model DIR          the model directory
  --images FILE...     PNG or JPEG files, preprocessed as the model's config says
  --pixels FILE[:NAME] already preprocessed pixels [B, 3, S, S] from a .npy file or a
                       tensor of a .safetensors file (default name: pixels)
  --texts FILE         a JSON list of strings, or a .txt file with one string per line
  --dtype f32|f16      weights on the device (default f32; f16 halves their memory)
  --batch N            images per device batch (default: as many as fit)
  --out FILE           the output .safetensors file, or .npz for NumPy
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, images = { arg = true, many = true }, pixels = { arg = true },
  texts = { arg = true }, dtype = { arg = true }, out = { arg = true }, batch = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
if not opts.model then error("--model DIR is required\n" .. usage, 0) end
if not opts.out then error("--out FILE is required\n" .. usage, 0) end
output.check_tensors(opts.out)
if not (opts.images or opts.pixels or opts.texts) then
  error("nothing to encode: give --images, --pixels and/or --texts\n" .. usage, 0)
end
if opts.images and opts.pixels then error("give either --images or --pixels, not both", 0) end

local model = refract.load(opts.model, { dtype = opts.dtype or "f32" })
local out = {}

local pixels
if opts.images then
  pixels = refract.preprocess(opts.images, model)
elseif opts.pixels then
  pixels = util.read_tensor(opts.pixels, "pixels")
end
if pixels then
  out.pixels = pixels
  out.image_embeds = model:encode_images(pixels)
end

if opts.texts then
  local texts = util.read_texts(opts.texts)
  out.text_tokens = model:tokenize(texts)
  out.text_embeds = model:encode_texts(out.text_tokens)
end

output.write_tensors(opts.out, out, { model = opts.model, producer = "refract " .. refract.version })
local parts = {}
for _, k in ipairs({ "pixels", "image_embeds", "text_tokens", "text_embeds" }) do
  if out[k] then parts[#parts + 1] = k .. " " .. util.shape_str(out[k]) end
end
print("wrote " .. opts.out .. ": " .. table.concat(parts, ", "))
