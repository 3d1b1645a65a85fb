-- refract.classifier: zero-shot classifiers from class names and prompt templates, as
-- CLIP's paper and the reference code build them: for each class, embed every template
-- with the class name filled in, divide each embedding by its norm, average over the
-- templates, divide by the norm again. The result is [D, C], column c for class c.
--
--   local classifier = require("refract.classifier")
--   local k = classifier.build(model, { "cat", "dog" }, { "a photo of a {}." })   -- [D, 2]
--   local k, names = classifier.read("imagenet.safetensors")
local refract = require("refract")

local M = {}

-- The sentence for one class: every `{}` and `{c}` in the template replaced by the name.
function M.fill(template, name)
  return (template:gsub("{c?}", function() return name end))
end

-- Checks every template holds a place for the class name; `where` names each template in
-- errors (e.g. "templates.txt:3").
function M.check_templates(templates, where)
  for i, t in ipairs(templates) do
    if not t:find("{}", 1, true) and not t:find("{c}", 1, true) then
      error(string.format("%s: template %q has no {} (or {c}) where the class name goes",
        where and where[i] or ("template " .. i), t), 0)
    end
  end
end

-- Names that occur more than once (their columns are identical, so those classes can
-- never be told apart): a list of { name =, indices = {from 0} }.
function M.duplicates(names)
  local first, dups, by_name = {}, {}, {}
  for i, n in ipairs(names) do
    if first[n] then
      if not by_name[n] then
        by_name[n] = { name = n, indices = { first[n] - 1 } }
        dups[#dups + 1] = by_name[n]
      end
      table.insert(by_name[n].indices, i - 1)
    else
      first[n] = i
    end
  end
  return dups
end

-- The classifier [D, C] (f32, on the device). opts.batch: texts per encoding batch
-- (default 256); opts.progress: called with the number of classes done after each batch.
function M.build(model, names, templates, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "batch" and key ~= "progress" then error("classifier.build: unknown option " .. tostring(key), 2) end
  end
  M.check_templates(templates)
  local per_batch = math.max(1, (opts.batch or 256) // #templates)
  local columns = {}
  local first = 1
  while first <= #names do
    local last = math.min(#names, first + per_batch - 1)
    local texts = {}
    for c = first, last do
      for _, t in ipairs(templates) do texts[#texts + 1] = M.fill(t, names[c]) end
    end
    local e = model:encode_texts(texts)
    local unit = e:normalize(2)
    e:free()
    local grouped = unit:reshape(last - first + 1, #templates, -1)
    unit:free()
    local mean = grouped:mean(2)
    grouped:free()
    columns[#columns + 1] = mean:normalize(2)
    mean:free()
    if opts.progress then opts.progress(last - first + 1) end
    first = last + 1
  end
  local rows = #columns == 1 and columns[1] or refract.cat(columns, 1)
  local k = rows:t()
  for _, c in ipairs(columns) do c:free() end
  return k
end

-- A classifier file: FILE.safetensors[:NAME] (default tensor `classifier`) or FILE.npy.
-- Returns the tensor [D, C] and the class names when the file records them.
function M.read(spec)
  local file, name = spec:match("^(.*%.safetensors):([^/]+)$")
  file = file or spec
  local k
  if file:match("%.npy$") then k = refract.read(file)
  else k = refract.read(file, name or "classifier") end
  local names
  if file:match("%.safetensors$") then
    local md = refract.metadata(file)
    if md.classes then
      local ok, list = pcall(refract.json_decode, md.classes)
      if ok and type(list) == "table" and #list == (k:ndim() == 2 and k:shape(2) or -1) then names = list end
    end
  end
  if k:ndim() ~= 2 then
    error(string.format("%s: a classifier is [D, C], not [%s]", spec, table.concat(k:shape(), ", ")), 0)
  end
  -- A NaN or an infinity makes every logit of its class NaN, and argmax then picks a
  -- class without a word. (x * 0 is NaN exactly where x is NaN or infinite.)
  local bad = (k * 0):ne(0)
  if bad:any() then
    local at = bad:flatten():argmax():item() - 1
    local v = k:flatten()[at + 1]:item()
    error(string.format("%s: the classifier holds %s at row %d, column %d: it must be finite", spec,
      v ~= v and "NaN" or "infinity", at // k:shape(2) + 1, at % k:shape(2) + 1), 0)
  end
  return k, names
end

return M
