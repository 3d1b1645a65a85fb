-- refract.batches: a dataset's images in batches, as dataset:batches gives them (pixels,
-- index of the batch's first image, count), with a choice for images that cannot be
-- read. on_error "abort" (the default): the run stops with an error naming the image's
-- path. on_error "skip": the image is left out, its batch made of the others, and
-- { path, message } appended to `skipped` (in dataset order), for the output to record.
local refract = require("refract")

local M = {}

local HINT = "\n(--on-error skip leaves out images that cannot be read and records them in "
  .. "the output)"

-- spec: the table dataset:batches takes (batch, model, start, stop); start and stop
-- default to the whole dataset.
function M.batches(dataset, spec, on_error, skipped)
  local first, stop, size = spec.start or 1, spec.stop or #dataset, spec.batch
  local function from(start)
    return dataset:batches({ batch = size, model = spec.model, start = start, stop = stop })
  end
  local next_batch = from(first)
  return function()
    while first <= stop do
      local ok, pixels, index, count = pcall(next_batch)
      if ok then
        if not pixels then return nil end
        first = index + count
        return pixels, index, count
      end
      local message = tostring(pixels)
      -- Only an image's own failure; anything else (Ctrl-C, device memory) goes on up.
      local reason = message:match("loading images: (.*)$")
      if not reason then error(pixels, 0) end
      if on_error ~= "skip" then error(reason .. HINT, 0) end
      -- The batch that failed, image by image; the rest with a new loader.
      local last = math.min(first + size - 1, stop)
      local good, start = {}, first
      for i = first, last do
        local path = dataset:path(i)
        local done, px = pcall(refract.preprocess, path, spec.model)
        if done then
          good[#good + 1] = px
        else
          local why = tostring(px):match("preprocess: (.*)$") or tostring(px)
          skipped[#skipped + 1] = { path, why }
          io.stderr:write("refract: skipping ", why, "\n")
        end
      end
      first = last + 1
      if first <= stop then next_batch = from(first) end
      if #good > 0 then
        local batch = refract.cat(good, 1)
        for _, px in ipairs(good) do px:free() end
        return batch, start, #good
      end
    end
    return nil
  end
end

-- The paths of images first..last (default: all) without those `skipped` lists (in
-- dataset order, as M.batches appends them): the rows an output holds.
function M.kept_paths(dataset, skipped, first, last)
  local rows, s = {}, 1
  for i = first or 1, last or #dataset do
    local path = dataset:path(i)
    if skipped[s] and skipped[s][1] == path then s = s + 1 else rows[#rows + 1] = path end
  end
  return rows
end

return M
