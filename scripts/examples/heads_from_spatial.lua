-- Example: attn_heads is attn_spatial summed over source tokens. Recomputes the tiny-gelu
-- golden's attn_heads from the per-token decomposition and checks it against the golden.
--   refract scripts/examples/heads_from_spatial.lua
local refract = require("refract")

local data = refract.home() .. "/tests/data/tiny-gelu"
local model <close> = refract.load(data .. "/model")
local golden = refract.read(data .. "/reference.safetensors")

-- The decomposition of the golden's preprocessed images, one term per
-- (image, layer, source token, head): [B, L, N, H, D].
local d = model:decompose(golden.pixels, { spatial = true })
print("attn_spatial", table.concat(d.attn_spatial:shape(), " x "))

-- Summing over source tokens (dimension 3; Lua counts from 1) gives each head's term.
local heads = d.attn_spatial:sum(3)
local err = (heads - golden.attn_heads):abs():max():item()
print(string.format("max |sum over tokens - golden attn_heads| = %.2e", err))

-- Everything adds up to the normalised embedding e/||e||.
local e = d.image_embeds
local total = d.attn_spatial:sum({ 2, 3, 4 }) + d.mlps:sum(2)
local identity = (total - e / e:norm(2, true)):abs():max():item()
print(string.format("max |sum of all terms - e/||e||| = %.2e", identity))

-- Which head of the last layer moves each image the most (L2 norm of its term)?
local last = heads:select(2, heads:shape(2)):norm(3)      -- [B, H]
local _, top = last:topk(1, 2)
print("strongest last-layer head per image:", table.concat(top:reshape(-1):totable(), " "))

assert(err <= 1e-6 and identity <= 1e-5, "decomposition does not match the golden")
