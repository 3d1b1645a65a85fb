-- Segmentation scoring (refract.segment_relevance, refract.segment_score,
-- refract.mask_labels) against the tiny-gelu golden, item 5: relevance from the golden's
-- patch maps bit for bit, masks, correct/inter/union identical and AP within 1e-12 on
-- the stored relevance, ground-truth labels from the mask files; AP against a brute-force
-- reference with ties; constant and negative maps; 0/1 masks; misuse.
local refract = require("refract")
local T = require("testlib")

local data = assert(os.getenv("RF_TEST_DATA"), "RF_TEST_DATA is not set (run under ctest)")
local g = data .. "/tiny-gelu"
local seg = refract.read(g .. "/segmentation.safetensors")
local golden = refract.json_read(g .. "/segmentation.json")

local function same(a, b) return (a:float() - b:float()):abs():max():item() end

for b, want in ipairs(golden.per_image) do
  local size = seg.relevance:shape(2)
  local upsampled = refract.resize(seg.heatmap_patches[b], size, size)
  local relevance = refract.segment_relevance(upsampled)
  T.ok(same(relevance, seg.relevance[b]) <= 1e-6, want.file .. ": relevance")
  local score, mask = refract.segment_score(seg.relevance[b], seg.gt_labels[b])
  T.eq(same(mask, seg.mask[b]), 0, want.file .. ": mask")
  T.eq(mask:dtype(), "u8")
  T.eq({ score.correct, score.labeled }, { want.correct, want.labeled }, want.file .. ": correct, labeled")
  T.eq(score.inter, want.inter, want.file .. ": inter")
  T.eq(score.union, want.union, want.file .. ": union")
  T.near(score.ap, want.ap, 1e-12, want.file .. ": ap on the golden relevance")
  local mask_file = g .. "/images/masks/" .. want.file:gsub("%.%w+$", ".png")
  T.eq(same(refract.mask_labels(mask_file, size), seg.gt_labels[b]), 0, want.file .. ": labels")
end

-- AP by brute force on prepared (score, positive) samples: for each distinct score,
-- precision and recall over the samples at or above it, summed as scikit-learn's
-- average_precision_score does
local function brute_ap(samples, positives)
  local scores, seen = {}, {}
  for _, s in ipairs(samples) do
    if not seen[s[1]] then seen[s[1]] = true; scores[#scores + 1] = s[1] end
  end
  table.sort(scores, function(a, b) return a > b end)
  local ap, prev = 0, 0
  for _, t in ipairs(scores) do
    local tp, n = 0, 0
    for _, s in ipairs(samples) do
      if s[1] >= t then n = n + 1; if s[2] then tp = tp + 1 end end
    end
    ap = ap + (tp / positives - prev) * (tp / n)
    prev = tp / positives
  end
  return ap
end

-- values on a coarse grid so that many scores tie; the scorer sees them in float32 and
-- takes 1 - relevance in float32, so the brute force gets those same numbers
local rel_values, label_values = {}, {}
for i = 1, 60 do
  rel_values[i] = ((i * 37) % 11) / 10
  label_values[i] = (i * 13) % 7 < 3 and 1 or 0
end
local rel = refract.tensor(rel_values)
local labels = refract.tensor(label_values, "u8")
local score = refract.segment_score(rel, labels)
local rel32, inv32 = rel:totable(), (1 - rel):totable()
local samples = {}
for i = 1, #rel32 do
  samples[#samples + 1] = { inv32[i], label_values[i] == 0 }
  samples[#samples + 1] = { rel32[i], label_values[i] == 1 }
end
T.near(score.ap, brute_ap(samples, #rel32), 1e-12, "AP with ties against the brute force")
local mean = 0
for _, v in ipairs(rel32) do mean = mean + v end
mean = mean / #rel32
T.near(score.threshold, mean, 1e-12, "threshold is the mean")
local correct = 0
for i, v in ipairs(rel32) do
  if (v > mean and 1 or 0) == label_values[i] then correct = correct + 1 end
end
T.eq(score.correct, correct, "correct")

-- a constant map: relevance 0/0 = NaN, nothing found (the reference's nan_to_num)
local flat = refract.segment_relevance(refract.full({ 2, 3 }, 5))
T.ok(flat:totable()[1][1] ~= flat:totable()[1][1], "constant map gives NaN")
local s2, m2 = refract.segment_score(flat, refract.ones({ 2, 3 }, "u8"))
T.eq(m2:sum():item(), 0, "nothing found")
T.eq(s2.inter, { 0, 0 })
T.eq(s2.correct, 0)
T.near(s2.ap, 0.5, 1e-12, "all scores 0: AP is the share of positives")
-- a negative map: clamped to its max, so constant too
local neg = refract.segment_relevance(refract.tensor({ { -3, -1 } }))
T.ok(neg:totable()[1][1] ~= neg:totable()[1][1], "an all-negative map is constant after clamping")
-- clamping keeps the negative values' minimum at 0
T.eq(refract.segment_relevance(refract.tensor({ -4, 0, 2, 4 })):totable(), { 0, 0, 0.5, 1 })
-- without labels: threshold and mask only
local s3, m3 = refract.segment_score(refract.tensor({ 0, 0.2, 1 }))
T.eq(m3:totable(), { 0, 0, 1 })
T.eq(s3.ap, nil)

-- masks: 0/255 and 0/1 (the benchmark's), any channels, aspect not kept
T.eq(refract.mask_labels(refract.tensor({ { 0, 255 }, { 128, 127 } }, "u8"), 2):totable(), { { 0, 1 }, { 1, 0 } })
T.eq(refract.mask_labels(refract.tensor({ { 0, 1 }, { 1, 0 } }, "u8"), 2):totable(), { { 0, 1 }, { 1, 0 } })
T.eq(refract.mask_labels(refract.tensor({ { 0, 0, 1, 1 } }, "u8"), 2):totable(), { { 0, 1 }, { 0, 1 } })
T.eq(refract.mask_labels(refract.tensor({ { { 255, 0, 0 }, { 0, 255, 255 } } }, "u8"), 2):totable(),
  { { 1, 0 }, { 1, 0 } }, "the first channel")

-- misuse
T.fails(function() return refract.segment_score(rel, refract.ones({ 3 }, "u8")) end,
  "labels [3] must have the relevance's shape [60]")
T.fails(function() return refract.segment_relevance(refract.zeros({ 0 })) end, "at least one value")
T.fails(function() return refract.mask_labels(refract.zeros({ 2, 2 }), 4) end, "a u8 tensor [H, W]")
T.fails(function() return refract.mask_labels(g .. "/nope.png", 4) end, "nope.png")
T.fails(function() return refract.mask_labels(g .. "/images/masks/00_exact_disc.png", 0) end, "size must be")
T.done()
