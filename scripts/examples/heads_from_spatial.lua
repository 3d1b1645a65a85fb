-- Example: attn_heads is attn_spatial summed over source tokens. Decomposes three of the
-- bundled tinyclip-shapes images both ways and checks that the per-token terms add up to
-- the per-head terms, and that all the terms add up to the normalised embedding.
--   refract scripts/examples/heads_from_spatial.lua [MODEL_DIR]
local refract = require("refract")

local dir = arg[1] or (refract.home() .. "/scripts/data/models/tinyclip-shapes")
local model <close> = refract.load(dir)
local files = { dir .. "/examples/01.png", dir .. "/examples/04.png", dir .. "/examples/11.png" }
local pixels = refract.preprocess(files, model)

-- The per-head decomposition, one term per (image, layer, head): [B, L, H, D], and the
-- per-token one, one term per (image, layer, source token, head): [B, L, N, H, D].
local d_heads = model:decompose(pixels)
local d = model:decompose(pixels, { spatial = true })
print("attn_spatial", table.concat(d.attn_spatial:shape(), " x "))

-- Summing over source tokens (dimension 3; Lua counts from 1) gives each head's term.
local heads = d.attn_spatial:sum(3)
local scale = d_heads.attn_heads:abs():max():item()
local err = (heads - d_heads.attn_heads):abs():max():item()
print(string.format("max |sum over tokens - attn_heads| = %.2e (terms up to %.2f)", err, scale))

-- Everything adds up to the normalised embedding e/||e||.
local e = d.image_embeds
local total = d.attn_spatial:sum({ 2, 3, 4 }) + d.mlps:sum(2)
local identity = (total - e / e:norm(2, true)):abs():max():item()
print(string.format("max |sum of all terms - e/||e||| = %.2e", identity))

-- Which head of the last layer moves each image the most (L2 norm of its term)?
local last = heads:select(2, heads:shape(2)):norm(3)      -- [B, H]
local _, top = last:topk(1, 2)
print("strongest last-layer head per image:", table.concat(top:reshape(-1):totable(), " "))

assert(err <= 1e-5 * scale and identity <= 1e-5, "the decompositions do not add up")
