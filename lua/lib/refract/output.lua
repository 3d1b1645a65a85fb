-- refract.output: where the commands that make tensors write them: a .safetensors file or
-- a NumPy .npz archive (np.load reads it with NumPy alone; metadata goes into its
-- __metadata__.json member), chosen by the name and checked before any work starts.
--
--   local output = require("refract.output")
--   output.check_tensors(opts.out)                 -- at once: extension, folder, writable
--   ...
--   output.write_tensors(opts.out, { image_embeds = e }, { model = dir })
local refract = require("refract")
local data = require("refract.data")

local M = {}

M.tensor_formats = { "safetensors", "npz" }

-- Raises "--out x.bin: expected a .safetensors or .npz file" (or a missing or read-only
-- folder) before a long run would fail at its end.
function M.check_tensors(path, option)
  data.check_out(path, M.tensor_formats, option)
end

-- Writes a table of name -> tensor with string metadata, atomically (a temporary file
-- renamed once complete), in the format the name says.
function M.write_tensors(path, tensors, metadata)
  refract.write(path, tensors, metadata)
end

return M
