-- Developer tool (the refract side of scripts/dev/arch_sweep.py): runs one model on the
-- sweep's inputs and writes every output the sweep compares with its float64 reference.
--
--   refract scripts/dev/arch_sweep_run.lua MODEL_DIR INPUTS.safetensors OUT.safetensors [f32|f16]
--
-- INPUTS holds `pixels` [B, 3, S, S] and, for a model with a text tower, `text_tokens`.
local refract = require("refract")

local model_dir, inputs, out, dtype = arg[1], arg[2], arg[3], arg[4] or "f32"
local m = refract.load(model_dir, { dtype = dtype })
local c = m:config()
local pixels = refract.read(inputs, "pixels")
local r = {}
r.image_embeds = m:encode_images(pixels)
if c.has_text then r.text_embeds = m:encode_texts(refract.read(inputs, "text_tokens")) end

local d = m:decompose(pixels, { spatial = true })
for k, v in pairs(d) do r["spatial." .. k] = v end
d = m:decompose(pixels)
for k, v in pairs(d) do r["heads." .. k] = v end
d = m:decompose(pixels, { spatial = true, centering = "exact" })
r["exact.attn_spatial"], r["exact.mlps"] = d.attn_spatial, d.mlps

-- Every reduction, and a projection onto C = 3 random directions.
local project = refract.randn({ c.embed_dim, 3 }, 5)
r.project = project
local reductions = { { "layers" }, { "tokens" }, { "heads" }, { "layers", "heads" }, { "layers", "tokens" },
  { "tokens", "heads" }, { "layers", "tokens", "heads" } }
for _, red in ipairs(reductions) do
  local key = table.concat(red, "+")
  d = m:decompose(pixels, { spatial = true, reduce = red })
  r["reduce." .. key .. ".attn_spatial"], r["reduce." .. key .. ".mlps"] = d.attn_spatial, d.mlps
  d = m:decompose(pixels, { spatial = true, reduce = red, project = project })
  r["project." .. key .. ".attn_spatial"], r["project." .. key .. ".mlps"] = d.attn_spatial, d.mlps
end

-- A decomposer run twice (its scratch reused) gives what decompose gives.
local dec <close> = m:decomposer({ spatial = true })
dec:run(pixels)
r["decomposer.attn_spatial"] = dec:run(pixels).attn_spatial

-- The taps of the last layer (numbered from 1) and a head edit of head H, layer L.
local last = c.layers
local f = m:forward(pixels, { taps = { "probs." .. last, "heads." .. last, "mlp_out." .. last } })
r["tap.probs"], r["tap.heads"], r["tap.mlp_out"] = f.taps["probs." .. last], f.taps["heads." .. last],
  f.taps["mlp_out." .. last]
r["edit.zero_last_head"] = m:forward(pixels, { edits = {
  { site = "head", layer = last, head = c.heads, kind = "zero" } } }).image_embeds

local host = {}
for k, v in pairs(r) do host[k] = v:to("f32"):host() end
refract.write(out, host)
print(string.format("%s: %s", model_dir, c.description))
