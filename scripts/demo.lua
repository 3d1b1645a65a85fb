-- refract demo: the main job: zero-shot shape, colour and position of example images with the bundled model
local refract = require("refract")
local util = require("refract.util")

local usage = [==[
usage: refract demo [--model DIR] [--dtype f32|f16]

Without --model: loads the bundled tinyclip-shapes model (a small CLIP trained on a
world of coloured shapes), encodes its example images and prints its zero-shot answers
for shape, colour and position next to each image's caption.
With --model DIR (a CLIP checkpoint directory): encodes the bundled public-domain photos
and prints zero-shot answers over a few descriptions.
]==]

local opts = util.parse_args(arg, { model = { arg = true }, dtype = { arg = true } }, usage)
if opts.help then io.write(usage) return end

local home = refract.home()
local d = refract.device()
print(string.format("refract %s on %s (%s)", refract.version, d.name, d.type))

-- Cosine similarities of every row of a with every row of b, as Lua tables.
local function cosine_table(a, b)
  local function unit_rows(t)
    local rows = t:totable()
    for _, r in ipairs(rows) do
      local n = 0
      for _, v in ipairs(r) do n = n + v * v end
      n = math.sqrt(n)
      for j = 1, #r do r[j] = r[j] / n end
    end
    return rows
  end
  local x, y = unit_rows(a), unit_rows(b)
  local sims = {}
  for i, r in ipairs(x) do
    sims[i] = {}
    for j, s in ipairs(y) do
      local dot = 0
      for k = 1, #r do dot = dot + r[k] * s[k] end
      sims[i][j] = dot
    end
  end
  return sims
end

local function argmax(row)
  local best = 1
  for j = 2, #row do if row[j] > row[best] then best = j end end
  return best
end

local function zero_shot(model, image_embeds, labels, template)
  local prompts = {}
  for i, l in ipairs(labels) do prompts[i] = template:gsub("{}", l) end
  local sims = cosine_table(image_embeds, model:encode_texts(prompts))
  local answers = {}
  for i, row in ipairs(sims) do answers[i] = labels[argmax(row)] end
  return answers
end

local function bundled_demo()
  local dir = home .. "/scripts/data/models/tinyclip-shapes"
  local model = refract.load(dir, { dtype = opts.dtype })
  print("model: tinyclip-shapes (" .. model:config().description .. ")")
  local examples = refract.json_read(dir .. "/examples/captions.json")
  local paths = {}
  for i, e in ipairs(examples) do paths[i] = dir .. "/examples/" .. e.image end
  local embeds = model:encode_images(refract.preprocess(paths, model))
  local families = {
    { "shape", { "circle", "square", "triangle", "star", "cross", "diamond", "heart", "ring" }, "a photo of a {}." },
    { "colour", { "red", "green", "blue", "yellow", "purple", "orange", "white", "black" }, "a photo of a {} object." },
    { "position", { "top left", "top right", "bottom left", "bottom right", "center" }, "an object at the {}." },
  }
  local answers, right, total = {}, {}, 0
  for f, fam in ipairs(families) do
    answers[f] = zero_shot(model, embeds, fam[2], fam[3])
    right[f] = 0
  end
  print("")
  print(string.format("%-7s %-10s %-9s %-13s %s", "image", "shape", "colour", "position", "caption"))
  for i, e in ipairs(examples) do
    local cells = {}
    for f, fam in ipairs(families) do
      local truth = e.attributes[fam[1]]
      local ok = answers[f][i] == truth
      if ok then right[f] = right[f] + 1 end
      cells[f] = answers[f][i] .. (ok and "" or "*")
    end
    total = total + 1
    print(string.format("%-7s %-10s %-9s %-13s %s", e.image, cells[1], cells[2], cells[3], e.caption))
  end
  print("")
  for f, fam in ipairs(families) do
    print(string.format("%-8s %d/%d agree with the image's attributes", fam[1], right[f], total))
  end
  print("(* marks an answer that differs from the attributes)")
end

local function photos_demo()
  local model = refract.load(opts.model, { dtype = opts.dtype })
  print("model: " .. opts.model .. " (" .. model:config().description .. ")")
  local names = { "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg" }
  local paths = {}
  for i, n in ipairs(names) do paths[i] = home .. "/scripts/data/images/" .. n end
  local embeds = model:encode_images(refract.preprocess(paths, model))
  local labels = { "an astronaut", "a cat", "a cup of coffee", "a rocket launch", "galaxies in deep space" }
  local answers = zero_shot(model, embeds, labels, "a photo of {}.")
  for i, n in ipairs(names) do print(string.format("%-24s %s", n, answers[i])) end
end

if opts.model then photos_demo() else bundled_demo() end
print("")
print("Real checkpoints load as published, no conversion: e.g. open_clip's")
print("  https://huggingface.co/timm/vit_base_patch16_clip_224.openai  (ViT-B/16, OpenAI)")
print("  https://huggingface.co/laion/CLIP-ViT-L-14-laion2B-s32B-b82K  (ViT-L/14, LAION)")
print("  https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K  (ViT-H/14, LAION)")
print("(open_clip_config.json + open_clip_model.safetensors), or Hugging Face's")
print("  https://huggingface.co/openai/clip-vit-base-patch16  (config.json, model.safetensors,")
print("  vocab.json, merges.txt); then: refract demo --model DIR")
