-- refract.json_encode / json_decode: round trips, null, keys, nesting up to the limit
-- (deep tables once overflowed the C stack of the encoder), and clear errors.
local refract = require("refract")
local T = require("testlib")

local v = { name = "x", list = { 1, 2.5, "three", true }, nothing = refract.null, nested = { a = { b = 1 } } }
local back = refract.json_decode(refract.json_encode(v))
T.eq(back.name, "x", "string")
T.eq(back.list, { 1, 2.5, "three", true }, "array")
T.ok(back.nothing == refract.null, "null round trip")
T.eq(back.nested.a.b, 1, "nested object")
T.eq(math.type(back.list[1]), "integer", "integers stay integers")
T.eq(refract.json_encode("s"), '"s"', "a bare string")
T.eq(refract.json_encode({ a = 1 }, 2), '{\n  "a": 1\n}', "indented")
-- Keys come out sorted whatever order the table holds them in, so a rerun writes the same bytes.
local many = {}
for i = 40, 1, -1 do many["k" .. string.format("%02d", i)] = i end
local keys = {}
for k in refract.json_encode(many):gmatch('"(k%d%d)"') do keys[#keys + 1] = k end
T.eq(#keys, 40, "every key written")
for i = 2, #keys do T.ok(keys[i - 1] < keys[i], "keys sorted: " .. keys[i - 1] .. " before " .. keys[i]) end

-- Number keys become strings the way tostring writes them.
local keyed = refract.json_decode(refract.json_encode({ [1.5] = "a", [2.0] = "b", x = "c" }))
T.eq({ keyed["1.5"], keyed["2"], keyed.x }, { "a", "b", "c" }, "number keys (2.0 is the integer key 2 in Lua)")

-- 200 levels are allowed (objects and arrays); 201 are refused with a message.
local function nested(depth, array)
  local root = {}
  local cur = root
  for _ = 1, depth do
    local n = array and { 1 } or { a = 1 }
    if array then cur[1] = n else cur.x = n end
    cur = n
  end
  return root
end
for _, array in ipairs({ false, true }) do
  local deep = refract.json_decode(refract.json_encode(nested(199, array)))
  local levels = 0
  while type(deep) == "table" do deep = array and deep[1] or deep.x levels = levels + 1 end
  T.eq(levels, 200, "199 nested tables round-trip (" .. (array and "arrays" or "objects") .. ")")
  T.fails(function() return refract.json_encode(nested(201, array)) end, "nesting over 200")
end

-- What JSON cannot hold, and text that is not JSON.
T.fails(function() return refract.json_encode({ f = print }) end, "cannot represent")
T.fails(function() return refract.json_encode({ 0 / 0 }) end, "cannot represent")
T.fails(function() return refract.json_encode({ [true] = 1 }) end, "cannot represent")
T.fails(function() return refract.json_decode("{\"a\": }") end, "invalid JSON at line 1")
T.fails(function() return refract.json_decode(string.rep("[", 300) .. string.rep("]", 300)) end,
  "nested too deeply")

T.done()
