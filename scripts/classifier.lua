-- refract classifier: a zero-shot classifier [D, C] from class names and prompt templates
local refract = require("refract")
local util = require("refract.util")
local data = require("refract.data")
local classifier = require("refract.classifier")
local provenance = require("refract.provenance")
local Progress = require("refract.progress")

local home = refract.home()
local usage = [==[
usage: refract classifier --model DIR --classes FILE --templates FILE --out K.safetensors
                          [--batch N] [--dtype f32|f16]

The zero-shot classifier of CLIP: for each class, every template with the class name
filled in is embedded, each embedding divided by its norm, the embeddings averaged and
divided by the norm again. Writes the tensor `classifier` [D, C] (column c = class c,
counted from 0 as in the classes file), with the class names, the templates and the
provenance (model files' SHA-256, arguments) in its metadata.

  --model DIR        a CLIP checkpoint directory (its text tower is used)
  --classes FILE     class names, one per line (blank lines skipped) or a JSON list
  --templates FILE   prompt templates in the same form; `{}` (or `{c}`) marks where the
                     class name goes, e.g. "a photo of a {}."
  --batch N          texts per encoding batch (default 256)
  --dtype f32|f16    weights on the device (default f32)
  --out FILE         the .safetensors file to write

Bundled texts (scripts/data/text/): imagenet_classes.txt (ImageNet's 1000 classes in
index order) and templates.txt (40 templates written for this project), e.g.
  refract classifier --model DIR --classes ]==] .. home .. [==[/scripts/data/text/imagenet_classes.txt \
    --templates ]==] .. home .. [==[/scripts/data/text/templates.txt --out imagenet.safetensors
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, classes = { arg = true }, templates = { arg = true }, out = { arg = true },
  batch = { arg = true }, dtype = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
for _, name in ipairs({ "model", "classes", "templates", "out" }) do
  if not opts[name] then usage_error("--" .. name .. " is required") end
end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
local batch = util.positive_option(opts, "batch", 256, usage_error)
data.check_out(opts.out, { "safetensors" })

local names = data.read_list(opts.classes, "class names")
local templates, template_lines = data.read_list(opts.templates, "templates")
local where = {}
for i, l in ipairs(template_lines) do where[i] = opts.templates .. ":" .. l end
classifier.check_templates(templates, where)
for _, d in ipairs(classifier.duplicates(names)) do
  io.stderr:write(string.format("warning: class name %q is at indices %s: their columns are identical\n",
    d.name, table.concat(d.indices, ", ")))
end

local model = refract.load(opts.model, { dtype = opts.dtype or "f32" })
if not model:config().has_text then error(opts.model .. ": the model has no text tower", 0) end
local record = provenance.new({ model = opts.model, inputs = { opts.classes, opts.templates } })

local progress = Progress.new(#names, "classes")
local k = classifier.build(model, names, templates, { batch = batch, progress = function(n) progress:add(n) end })
local elapsed = progress:finish()
refract.write(opts.out, { classifier = k }, provenance.metadata(record, {
  classes = refract.json_encode(names), templates = refract.json_encode(templates),
}))
print(string.format("classifier [%d, %d] from %d classes x %d templates in %.1f s into %s",
  k:shape(1), k:shape(2), #names, #templates, elapsed, opts.out))
