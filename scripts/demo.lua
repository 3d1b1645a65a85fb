-- refract demo: the main job: the paper's analyses told on the bundled model and its world
local refract = require("refract")
local util = require("refract.util")
local report = require("refract.report")

local home = refract.home()
local usage = [==[
usage: refract demo [--report DIR] [--model DIR [--classes FILE] [--templates FILE]]
                    [--dtype f32|f16]

Without --model: the paper's story on the bundled tinyclip-shapes model (a small CLIP
trained on a world of coloured shapes) and 300 labelled images of its world with their
masks (scripts/data/datasets/shapes-world): zero-shot accuracy per attribute, the
mean-ablation study (which layers carry the direct effect), TextSpan roles of the last
layers' heads, zero-shot segmentation against the masks, and retrieval by one head.
All of it from one decomposition of the images.

With --model DIR (a CLIP checkpoint directory): zero-shot classification of the bundled
photos (scripts/data/images) with ImageNet's classes and the bundled templates, each
photo's segmentation map for its top class and what each head of the last layer adds to
that class, patch by patch.

Prints a short summary and writes a report folder: report.md (Markdown, the pictures
linked), the pictures (PNG, SVG) and results.json (every number, with the provenance).

  --report DIR       the report folder (default ./refract-demo-report; made if missing)
  --model DIR        a CLIP checkpoint (open_clip or Hugging Face layout)
  --classes FILE     with --model: class names (default: ImageNet's 1000)
  --templates FILE   with --model: prompt templates (default: the bundled 40; on a CPU
                     device a ViT-B's text tower takes minutes for 40 x 1000 prompts:
                     fewer templates make it faster)
  --dtype f32|f16    weights on the device (default f32)
]==]

local opts = util.parse_args(arg, {
  model = { arg = true }, dtype = { arg = true }, report = { arg = true }, classes = { arg = true },
  templates = { arg = true },
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
if (opts.classes or opts.templates) and not opts.model then
  usage_error("--classes and --templates go with --model")
end
if opts.dtype and opts.dtype ~= "f32" and opts.dtype ~= "f16" then usage_error("--dtype must be f32 or f16") end
local report_dir = (opts.report or "refract-demo-report"):gsub("/+$", "")
report.check_dir(report_dir)

local d = refract.device()
print(string.format("refract %s on %s (%s)", refract.version, d.name, d.type))

if opts.model then
  require("refract.demo_photos").run({ report = report_dir, model = opts.model, dtype = opts.dtype,
                                       classes = opts.classes, templates = opts.templates, home = home })
else
  require("refract.demo_shapes").run({ report = report_dir, dtype = opts.dtype, home = home })
end

if not opts.model then
  print("")
  print("Real checkpoints load as published, no conversion: e.g. open_clip's")
  print("  https://huggingface.co/timm/vit_base_patch16_clip_224.openai  (ViT-B/16, OpenAI)")
  print("  https://huggingface.co/laion/CLIP-ViT-L-14-laion2B-s32B-b82K  (ViT-L/14, LAION)")
  print("(open_clip_config.json + open_clip_model.safetensors), or Hugging Face's")
  print("  https://huggingface.co/openai/clip-vit-base-patch16  (config.json, model.safetensors,")
  print("  vocab.json, merges.txt); then: refract demo --model DIR")
end
