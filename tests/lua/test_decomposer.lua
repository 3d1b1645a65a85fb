-- refract.Decomposer on the tiny-gelu model: a decomposer's runs over batches give the
-- golden and the same bytes as one-shot model:decompose calls; a projection is taken at
-- creation (the caller may free it); unknown options are errors; a freed decomposer, or
-- one whose model was freed, raises a clear error; <close> and the collector free it.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local dir = data .. "/tiny-gelu/model"
local ref = data .. "/tiny-gelu/reference.safetensors"
local m = refract.load(dir, { vision_only = true })
local px = refract.read(ref, "pixels")

local function maxdiff(a, b) return (a - b):abs():max():item() end

-- Two batches through one decomposer equal the golden, and equal one-shot calls bit for bit.
local dec = m:decomposer({ spatial = true })
T.matches(tostring(dec), "^refract%.Decomposer$")
local mb = dec:max_batch()
T.ok(math.type(mb) == "integer" and mb >= 1 and mb <= 32, "max_batch " .. tostring(mb))
local d1 = dec:run(px:narrow(1, 1, 4))
local d2 = dec:run(px:narrow(1, 5, 4))
for _, name in ipairs({ "attn_spatial", "attn_heads", "mlps" }) do
  local got = refract.cat({ d1[name], d2[name] }, 1)
  T.ok(maxdiff(got, refract.read(ref, name)) <= 5e-6, name .. " over two batches matches the golden")
end
local once = m:decompose(px:narrow(1, 5, 4), { spatial = true })
local names = {}
for name, t in pairs(once) do
  names[#names + 1] = name
  T.eq(d2[name]:shape(), t:shape(), name .. " shape")
  T.ok(maxdiff(d2[name], t) == 0, name .. ": batch 2 of a decomposer = a one-shot decomposition")
end
table.sort(names)
T.eq(names, { "attn_heads", "attn_spatial", "cls_attn", "image_embeds", "ln_post_mean", "ln_post_std", "mlps" },
  "the outputs")

-- A projection is consumed at creation: freeing it afterwards changes nothing.
local classes = refract.read(data .. "/tiny-gelu/textspan.safetensors", "classifier")
local opts = { spatial = true, reduce = { "layers", "heads" }, project = classes:to_device() }
local pdec = m:decomposer(opts)
opts.project:free()
local p = pdec:run(px)
T.eq(p.attn_spatial:shape(), { 8, 17, 6 }, "projected, layers and heads summed")
local want = m:decompose(px, { spatial = true, reduce = { "layers", "heads" }, project = classes })
T.ok(maxdiff(p.attn_spatial, want.attn_spatial) == 0, "projected decomposer = one-shot")
pdec:free()

-- Misuse.
T.fails(function() m:decomposer({ spatail = true }) end,
  "decomposer: unknown option 'spatail' (spatial, reduce, project, centering)")
T.fails(function() m:decompose(px, { spatial = true, batch = 4 }) end, "decompose: unknown option 'batch'")
T.fails(function() m:decomposer({ true }) end, "decomposer: options are named (spatial, reduce, project, centering), not a number key")
T.fails(function() m:decomposer({ centering = "odd" }) end, "centering must be \"reference\" or \"exact\"")
T.fails(function() m:decomposer({ reduce = { "rows" } }) end, "unknown reduce axis 'rows'")
T.fails(function() m:decomposer({ project = refract.zeros({ 31, 6 }) }) end,
  "decomposer: the projection must be f32 [32, C]")
T.fails(function() dec:run(refract.zeros({ 2, 3, 16, 16 })) end, "pixels must be f32 [B, 3, 32, 32]")
T.fails(function() dec:run() end, "bad argument #1 to 'run'")
dec:free()
dec:free()   -- idempotent
T.fails(function() dec:run(px) end, "decomposer has been freed")
T.fails(function() dec:max_batch() end, "decomposer has been freed")
T.eq(tostring(dec), "refract.Decomposer(freed)")

-- <close> frees it at the end of the block.
local kept
do
  local d <close> = m:decomposer()
  kept = d
  T.eq(d:run(px).attn_heads:shape(), { 8, 3, 4, 32 }, "a closed-over decomposer runs")
end
T.fails(function() kept:run(px) end, "decomposer has been freed")

-- The decomposer keeps its model's handle alive; a model freed by hand is an error.
local orphan = refract.load(dir, { vision_only = true }):decomposer()
collectgarbage()
T.eq(orphan:run(px).mlps:shape(), { 8, 4, 32 }, "the model outlives the collection")
local m2 = refract.load(dir, { vision_only = true })
local dec2 = m2:decomposer()
m2:free()
T.fails(function() dec2:run(px) end, "run: the decomposer's model has been freed")
dec2 = nil
orphan = nil
collectgarbage()

T.done()
