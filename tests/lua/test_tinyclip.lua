-- The bundled trained model: its pixels and tokens equal those made without refract (PIL
-- and numpy for open_clip's eval transform, the Python reference tokenizer:
-- inputs_reference.safetensors, scripts/dev/gen_tinyclip_inputs.py), its embeddings equal
-- an independent PyTorch run of the same weights on those inputs within 1e-4, and its
-- zero-shot answers on the examples agree with their captions' attributes.
local refract = require("refract")
local T = require("testlib")
local R = require("tref")

local home = refract.home()
local dir = home .. "/scripts/data/models/tinyclip-shapes"
local data = home .. "/tests/data/tinyclip"
local model = refract.load(dir)
local ref = refract.read(data .. "/torch_reference.safetensors")
local inputs = refract.read(data .. "/inputs_reference.safetensors")

local function max_abs_diff(a, b)
  local x, y, worst = a:totable(), b:totable(), 0
  for i = 1, #x do
    for j = 1, #x[i] do worst = math.max(worst, math.abs(x[i][j] - y[i][j])) end
  end
  return worst
end

-- How many elements of two tensors of one shape differ at all (bit for bit, NaN differs).
local function differing(a, b)
  T.eq(a:shape(), b:shape(), "shapes")
  local x, y = R.flat(a:totable()), R.flat(b:totable())
  local n = 0
  for i = 1, #x do if not (x[i] == y[i]) then n = n + 1 end end
  return n
end

-- inputs: our preprocessing and tokenizer give, bit for bit, what PIL + numpy and the
-- Python tokenizer give; the PyTorch run was given those same inputs
local examples = refract.json_read(dir .. "/examples/captions.json")
local paths = {}
for i, e in ipairs(examples) do paths[i] = dir .. "/examples/" .. e.image end
local pixels = refract.preprocess(paths, model)
T.eq(differing(pixels, inputs.pixels), 0, "pixels that differ from PIL and numpy's")
local prompts = refract.json_read(data .. "/prompts.json")
T.eq(differing(model:tokenize(prompts), inputs.text_tokens), 0, "tokens that differ from the Python tokenizer's")
T.eq(differing(ref.pixels, inputs.pixels), 0, "the PyTorch run's pixels that differ")
T.eq(differing(ref.text_tokens, inputs.text_tokens), 0, "the PyTorch run's tokens that differ")

-- embeddings
local img = model:encode_images(ref.pixels)
local txt = model:encode_texts(ref.text_tokens)
local di, dt = max_abs_diff(img, ref.image_embeds), max_abs_diff(txt, ref.text_embeds)
print(string.format("tinyclip vs PyTorch: image_embeds max |diff| %.3e, text_embeds %.3e", di, dt))
T.ok(di <= 1e-4, "image embeddings within 1e-4 of PyTorch")
T.ok(dt <= 1e-4, "text embeddings within 1e-4 of PyTorch")
local mine = model:encode_images(pixels)
T.ok(max_abs_diff(mine, ref.image_embeds) <= 1e-4, "embeddings of our own preprocessing")

-- zero-shot answers agree with the captions' attributes
local function unit(rows)
  for _, r in ipairs(rows) do
    local n = 0
    for _, v in ipairs(r) do n = n + v * v end
    for j = 1, #r do r[j] = r[j] / math.sqrt(n) end
  end
  return rows
end
local families = {
  { "shape", { "circle", "square", "triangle", "star", "cross", "diamond", "heart", "ring" }, "a photo of a %s." },
  { "colour", { "red", "green", "blue", "yellow", "purple", "orange", "white", "black" }, "a photo of a %s object." },
  { "position", { "top left", "top right", "bottom left", "bottom right", "center" }, "an object at the %s." },
}
local images = unit(mine:totable())
for _, fam in ipairs(families) do
  local texts = {}
  for i, l in ipairs(fam[2]) do texts[i] = string.format(fam[3], l) end
  local t = unit(model:encode_texts(texts):totable())
  local right = 0
  for i, e in ipairs(examples) do
    local best, score = nil, -math.huge
    for j, row in ipairs(t) do
      local s = 0
      for k = 1, #row do s = s + row[k] * images[i][k] end
      if s > score then best, score = fam[2][j], s end
    end
    if best == e.attributes[fam[1]] then right = right + 1 end
  end
  print(string.format("zero-shot %-8s %d/%d", fam[1], right, #examples))
  T.eq(right, #examples, fam[1] .. " answers")
end

T.done()
