-- refract retrieve: nearest images by one head's (or MLP's) direct contribution, with a contact sheet
local refract = require("refract")
local util = require("refract.util")
local data = require("refract.data")
local retrieve = require("refract.retrieve")
local provenance = require("refract.provenance")

local usage = [==[
usage: refract retrieve --decomposition DEC --component L.H|L.*|mlp.L|all
                        (--query-image N | --query-text "..." --model DIR) [--k 8]
                        --sheet FILE.png [--size PIXELS] [--out FILE.json]

Image retrieval by a single component of the representation (Gandelsman et al., ICLR
2024): every image of the decomposition is represented by that component's direct
contribution alone, and the images are ranked by its cosine similarity to the query's:
a head that encodes a property (colour, shape, location...) retrieves images that share
it, whatever else they show. The contributions are first centred (their mean over the
decomposition's images subtracted): each carries a share of ln_post's mean and bias that
hardly changes between images and would make every cosine about 1.

  --decomposition DEC  attn_heads and mlps per image from `refract decompose` (a
                       .safetensors file or its --chunks folder) made from --images,
                       --dir or --list, so that it records the images' paths
  --component C        L.H: head H of layer L; L.*: layer L's heads summed; mlp.L: layer
                       L's MLP (mlp.0: the embedding term); all: the whole representation.
                       Layers and heads count from 1
  --query-image N      the decomposition's image N (from 1, in its order), or its path
  --query-text TEXT    a text, embedded by --model's text tower (the decomposition must
                       not be projected)
  --model DIR          the model for --query-text
  --k N                how many neighbours (default 8); a --query-image is its own first
  --sheet FILE.png     the neighbours' images in rank order (the model's centre square),
                       the query image framed in orange, a bar under each showing its
                       similarity (full = 1)
  --size PIXELS        thumbnail side in the sheet (default 128)
  --uncentred          compare the contributions as they are, without centring
  --out FILE.json      the query, the component and the neighbours {rank, image (from 1),
                       file, score}, with the provenance (version, arguments, checksums)
The neighbours are also printed.
]==]

local opts = util.parse_args(arg, {
  decomposition = { arg = true }, component = { arg = true }, query_image = { arg = true },
  query_text = { arg = true }, model = { arg = true }, k = { arg = true }, sheet = { arg = true },
  size = { arg = true }, out = { arg = true }, uncentred = {},
}, usage)
if opts.help then io.write(usage) return end
local function usage_error(msg) error(msg .. "\n\n" .. usage, 0) end
for _, name in ipairs({ "decomposition", "component", "sheet" }) do
  if not opts[name] then usage_error("--" .. name:gsub("_", "-") .. " is required") end
end
if #opts._ > 0 then usage_error("unexpected argument " .. opts._[1]) end
if (opts.query_image and 1 or 0) + (opts.query_text and 1 or 0) ~= 1 then
  usage_error("give exactly one of --query-image or --query-text")
end
if opts.query_text and not opts.model then usage_error("--query-text needs --model DIR") end
if opts.model and not opts.query_text then usage_error("--model goes with --query-text") end
local function positive(name, default)
  if not opts[name] then return default end
  local v = math.tointeger(tonumber(opts[name]))
  if not v or v < 1 then usage_error("--" .. name .. " must be a positive integer") end
  return v
end
local k, size = positive("k", 8), positive("size", 128)
-- The thumbnails are preprocessed at this size: past its limit the error named only
-- preprocess's argument.
if size > 8192 then usage_error("--size must be at most 8192 pixels") end
data.check_out(opts.sheet, { "png" }, "--sheet")
if opts.out then data.check_out(opts.out, { "json" }) end

local dec = data.read_decomposition(opts.decomposition, { "attn_heads", "mlps" })
if not dec.paths then
  error(opts.decomposition .. " does not record its images' paths: make it with `refract decompose` "
    .. "from --images, --dir or --list (not --pixels)", 0)
end
local component = retrieve.component(dec, opts.component)
local vectors = opts.uncentred and component.vectors or retrieve.centred(component.vectors)

local query, query_image, query_desc
if opts.query_image then
  query_image = math.tointeger(tonumber(opts.query_image))
  if not query_image then
    for i, p in ipairs(dec.paths) do
      if p == opts.query_image or p:sub(-#opts.query_image - 1) == "/" .. opts.query_image then
        query_image = i
        break
      end
    end
    if not query_image then error("--query-image " .. opts.query_image .. ": no such image in the decomposition", 0) end
  end
  if query_image < 1 or query_image > dec.count then
    error(string.format("--query-image %d: the decomposition has images 1..%d", query_image, dec.count), 0)
  end
  query = vectors[query_image]
  query_desc = string.format("image %d (%s)", query_image, dec.paths[query_image])
else
  local model = refract.load(opts.model)
  if not model:config().has_text then error(opts.model .. ": the model has no text tower", 0) end
  if model:config().embed_dim ~= dec.dim then
    error(string.format("%s has %d-dimensional components but the model embeds texts in %d dimensions "
      .. "(was it decomposed with --project?)", opts.decomposition, dec.dim, model:config().embed_dim), 0)
  end
  query = model:encode_texts({ opts.query_text })[1]
  query_desc = string.format("text %q", opts.query_text)
end

local hits = retrieve.nearest(vectors, query, k)
retrieve.sheet(opts.sheet, dec.paths, hits, { query = query_image, size = size })

print(string.format("%d nearest of %d images to %s by %s (cosine similarity%s):", #hits, dec.count,
  query_desc, component.name, opts.uncentred and "" or ", centred"))
local listing = {}
for r, hit in ipairs(hits) do
  print(string.format("  %2d  %+.4f  image %d  %s", r, hit.score, hit.image, dec.paths[hit.image]))
  listing[r] = { rank = r, image = hit.image, file = dec.paths[hit.image], score = hit.score }
end
if opts.out then
  local result = { component = opts.component, component_name = component.name, neighbours = listing,
                   centred = not opts.uncentred,
                   images = dec.count,
                   query = opts.query_image and { image = query_image, file = dec.paths[query_image] }
                     or { text = opts.query_text },
                   provenance = provenance.new({ model = opts.model, inputs = { opts.decomposition } }) }
  data.write_text(opts.out, refract.json_encode(result, 1) .. "\n")
end
print("wrote " .. opts.sheet .. (opts.out and (" and " .. opts.out) or ""))
