-- Developer tool: writes the TextSpan description pools in scripts/data/text/ from the word
-- lists below, deterministically (a fixed-seed generator of our own, so every Lua gives the
-- same files). Run from the repository root:  build/refract scripts/dev/gen_descriptions.lua
--
--   descriptions.txt         short general image descriptions (objects, scenes, colours,
--                            textures, materials, styles, counts, positions, people, animals,
--                            weather, times of day), one per line
--   shapes_descriptions.txt  descriptions of tinyclip-shapes' world, using only the words its
--                            captions use (other tokens of that model were never trained)
--
-- Every phrase is written for this project.
local out_dir = (arg[1] or "scripts/data/text")

-- {===== a small deterministic generator (SplitMix64 on Lua integers)
local state = 0x2545F4914F6CDD1D
local function next_u32()
  state = state + 0x9E3779B97F4A7C15
  local z = state
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  z = z ~ (z >> 31)
  return (z >> 32) & 0xffffffff
end
local function pick(list) return list[next_u32() % #list + 1] end
-- }=====

local function article(phrase)
  local first = phrase:sub(1, 1):lower()
  if first:match("[aeio]") or phrase:match("^u[^n]") or phrase:match("^hour") then return "an " .. phrase end
  return "a " .. phrase
end

-- {===== word lists
local objects = {
  "bicycle", "chair", "teapot", "guitar", "car", "bus", "boat", "clock", "lamp", "umbrella",
  "book", "bottle", "cup", "bowl", "vase", "kite", "balloon", "hat", "shoe", "backpack",
  "suitcase", "laptop", "phone", "camera", "television", "piano", "violin", "drum", "trumpet", "bench",
  "table", "sofa", "bed", "door", "window", "ladder", "bridge", "tower", "lighthouse", "windmill",
  "tent", "train", "airplane", "helicopter", "truck", "tractor", "motorcycle", "scooter", "skateboard", "surfboard",
  "sailboat", "canoe", "rocket", "robot", "teddy bear", "doll", "ball", "basket", "box", "bucket",
  "candle", "key", "lock", "mirror", "pillow", "blanket", "rug", "plate", "fork", "knife",
  "spoon", "kettle", "pan", "jar", "mug", "cake", "pizza", "sandwich", "apple", "banana",
  "orange", "lemon", "strawberry", "tomato", "carrot", "loaf of bread", "donut", "ice cream cone", "watch", "necklace",
  "ring", "scarf", "glove", "jacket", "dress", "sweater", "helmet", "fence", "gate", "mailbox",
  "fountain", "statue", "flag", "sign", "traffic light", "street lamp", "wheel", "tire", "hammer", "screwdriver",
  "paintbrush", "pencil", "notebook", "envelope", "map", "globe", "telescope", "microscope", "toy car", "toy train",
}
local plural = {
  bicycle = "bicycles", chair = "chairs", car = "cars", boat = "boats", book = "books", bottle = "bottles",
  cup = "cups", balloon = "balloons", kite = "kites", hat = "hats", shoe = "shoes", apple = "apples",
  orange = "oranges", lemon = "lemons", candle = "candles", key = "keys", ball = "balls", box = "boxes",
  flag = "flags", tent = "tents", umbrella = "umbrellas", plate = "plates", pencil = "pencils", clock = "clocks",
  dog = "dogs", cat = "cats", bird = "birds", horse = "horses", cow = "cows", sheep = "sheep",
  duck = "ducks", fish = "fish", butterfly = "butterflies", bee = "bees", rabbit = "rabbits", deer = "deer",
  goat = "goats", pig = "pigs", chicken = "chickens", elephant = "elephants", zebra = "zebras", penguin = "penguins",
  child = "children", woman = "women", man = "men", person = "people", tree = "trees", house = "houses",
  flower = "flowers", rock = "rocks", cloud = "clouds", star = "stars", mountain = "mountains", leaf = "leaves",
}
local animals = {
  "dog", "cat", "bird", "horse", "cow", "sheep", "duck", "fish", "butterfly", "bee",
  "rabbit", "deer", "goat", "pig", "chicken", "elephant", "zebra", "penguin", "lion", "tiger",
  "bear", "fox", "wolf", "owl", "eagle", "parrot", "frog", "turtle", "snake", "lizard",
  "monkey", "giraffe", "camel", "squirrel", "mouse", "hedgehog", "dolphin", "whale", "shark", "octopus",
  "crab", "snail", "spider", "ant", "dragonfly", "swan", "goose", "flamingo", "peacock", "kangaroo",
  "koala", "panda", "raccoon", "otter", "seal", "puppy", "kitten", "lamb", "pony", "donkey",
}
local people = {
  "child", "baby", "boy", "girl", "teenager", "woman", "man", "old woman", "old man", "couple",
  "family", "chef", "doctor", "nurse", "firefighter", "police officer", "soldier", "farmer", "fisherman", "painter",
  "musician", "dancer", "singer", "athlete", "runner", "cyclist", "swimmer", "climber", "skier", "surfer",
  "student", "teacher", "scientist", "builder", "mechanic", "waiter", "shopkeeper", "tourist", "bride", "clown",
}
local activities = {
  "reading a book", "riding a bicycle", "playing the guitar", "cooking dinner", "walking a dog", "eating lunch",
  "laughing", "sleeping", "running", "jumping", "swimming", "dancing", "painting a picture", "talking on a phone",
  "carrying a bag", "holding an umbrella", "waving", "sitting on a bench", "standing in a doorway", "looking at the camera",
  "drinking coffee", "writing a letter", "playing football", "climbing a wall", "fishing from a pier",
  "taking a photo", "wearing a hat", "wearing glasses", "smiling", "working at a desk",
}
local animal_actions = {
  "sleeping", "running", "eating", "drinking water", "flying", "swimming", "jumping", "playing",
  "lying in the grass", "sitting on a fence", "standing in a field", "looking at the camera",
  "hiding behind a tree", "walking on a beach", "resting in the shade", "in a cage",
}
local scenes = {
  "beach", "forest", "desert", "mountain range", "snowy field", "lake", "river", "waterfall", "meadow", "farm",
  "garden", "park", "city street", "busy market", "quiet village", "harbour", "airport", "train station", "highway", "bridge over a river",
  "kitchen", "living room", "bedroom", "bathroom", "office", "classroom", "library", "museum", "church", "castle",
  "stadium", "playground", "swimming pool", "restaurant", "cafe", "supermarket", "factory", "warehouse", "parking lot", "construction site",
  "jungle", "cave", "canyon", "volcano", "glacier", "coral reef", "island", "cliff", "hillside", "vineyard",
  "orchard", "wheat field", "rice paddy", "swamp", "pond", "countryside road", "alley", "rooftop", "balcony", "backyard",
  "street at a crossing", "skyline", "suburb", "campsite", "ski slope", "shopping mall", "concert hall", "theatre stage", "laboratory", "hospital room",
  "underwater scene", "night sky", "sunny field", "foggy valley", "rocky shore", "sandy dune", "frozen lake", "autumn forest", "flower garden", "old town square",
}
local colours = {
  "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
  "gray", "golden", "silver", "turquoise", "beige", "dark green", "light blue", "navy blue", "maroon", "lime green",
}
local textures = {
  "striped", "spotted", "checkered", "furry", "fluffy", "wrinkled", "rough", "smooth", "shiny", "glossy",
  "matte", "rusty", "dusty", "muddy", "wet", "cracked", "polished", "scratched", "woven", "knitted",
}
local materials = {
  "wood", "metal", "glass", "plastic", "stone", "paper", "cardboard", "leather", "wool", "cotton",
  "clay", "marble", "concrete", "brick", "ice", "rubber", "gold", "steel", "bamboo", "straw",
}
local styles = {
  "a photograph", "a black and white photograph", "an old photograph", "a watercolour painting", "an oil painting",
  "a pencil sketch", "a charcoal drawing", "an ink drawing", "a cartoon", "a comic strip panel",
  "pixel art", "a 3D render", "a digital illustration", "a child's drawing", "a mosaic",
  "a stained glass window", "an embroidery", "a woodcut print", "a poster", "a postcard",
  "a sculpture", "a clay model", "an origami model", "a blueprint", "a tattoo",
}
local counts = { "two", "three", "four", "five", "six", "a pair of", "a few", "many", "a group of", "a row of" }
local subjects_countable = {
  "bicycle", "chair", "car", "boat", "book", "bottle", "cup", "balloon", "kite", "hat", "shoe", "apple",
  "orange", "lemon", "candle", "key", "ball", "box", "flag", "tent", "umbrella", "plate", "pencil", "clock",
  "dog", "cat", "bird", "horse", "cow", "sheep", "duck", "fish", "butterfly", "bee", "rabbit", "deer",
  "goat", "pig", "chicken", "elephant", "zebra", "penguin", "child", "woman", "man", "person", "tree", "house",
  "flower", "rock", "cloud", "star", "mountain", "leaf",
}
local positions = {
  "on the left", "on the right", "in the center", "in the top left corner", "in the bottom right corner",
  "in the foreground", "in the background", "at the top of the picture", "at the bottom of the picture", "at the edge of the frame",
  "on a table", "on the floor", "on a shelf", "on the grass", "in the sand", "next to a wall",
  "under a tree", "behind a window", "in front of a house", "on a wooden table",
}
local weather = {
  "in the rain", "in heavy snow", "in thick fog", "on a sunny day", "under a stormy sky", "on a windy day",
  "under a cloudy sky", "during a thunderstorm", "in a light drizzle", "after a snowfall", "in the mist", "under a rainbow",
}
local times = {
  "at night", "at sunset", "at sunrise", "at dawn", "at dusk", "at noon", "in the early morning", "in the late afternoon",
  "in the evening", "at midnight", "in golden hour light", "under the stars",
}
local photo_kinds = {
  "a close-up photo", "an aerial view", "a blurry photo", "a dark photo", "a bright photo", "an overexposed picture",
  "a photo with low contrast", "a photo with high contrast", "a photo with a shallow depth of field", "a long exposure photo",
  "a wide-angle photo", "a photo taken from below", "a photo taken from above", "a photo taken through a window", "a grainy photo",
  "a sharp photo", "a pale, washed-out picture", "a vivid, colourful picture", "a picture with a lot of empty space", "a cluttered picture",
  "a symmetric composition", "a picture with strong shadows", "a backlit photo", "a silhouette against the sky", "a reflection in water",
  "a panoramic photo", "a selfie", "a portrait photo", "a landscape photo", "a macro photo of a small detail",
  "a photo of text", "a screenshot", "a diagram", "a chart with numbers", "a map",
  "a photo of a crowd", "a photo of an empty room", "a photo of a single object", "a photo of many small objects", "a repeating pattern",
}
local lighting = {
  "lit by candlelight", "lit by neon signs", "in soft window light", "in harsh sunlight", "in the shade",
  "under street lights", "lit by a campfire", "in moonlight", "under fluorescent light", "in warm light",
}
-- }=====

local lines, seen = {}, {}
local function add(s)
  s = s:gsub("%s+", " ")
  if not seen[s] then
    seen[s] = true
    lines[#lines + 1] = s
  end
end

-- Each family once over its whole list, then sampled combinations.
for _, o in ipairs(objects) do add("a photo of " .. article(o)) end
for _, a in ipairs(animals) do add("a photo of " .. article(a)) end
for _, p in ipairs(people) do add("a photo of " .. article(p)) end
for _, s in ipairs(scenes) do add("a photo of " .. article(s)) end
for _, k in ipairs(photo_kinds) do add(k) end
for _, c in ipairs(colours) do
  add(article(c .. " object"))
  add("a mostly " .. c .. " picture")
  add(article(c .. " background"))
end
for _, t in ipairs(textures) do add(article(t .. " surface")); add(article(t .. " pattern")) end
for _, m in ipairs(materials) do add("a close-up of " .. m); add("something made of " .. m) end
for _, w in ipairs(weather) do add("a street " .. w); add("a landscape " .. w) end
for _, t in ipairs(times) do add("a city " .. t); add("a field " .. t) end
for _, l in ipairs(lighting) do add("a room " .. l); add("a face " .. l) end

local function repeat_add(n, make)
  local start = #lines
  local tries = 0
  while #lines - start < n and tries < n * 50 do
    add(make())
    tries = tries + 1
  end
end
local function thing() return next_u32() % 3 == 0 and pick(animals) or pick(objects) end

repeat_add(300, function() return article(pick(colours) .. " " .. pick(objects)) end)
repeat_add(150, function() return article(pick(colours) .. " " .. pick(animals)) end)
repeat_add(200, function() return article(pick(objects)) .. " made of " .. pick(materials) end)
repeat_add(120, function() return article(pick(materials) .. " " .. pick(objects)) end)
repeat_add(200, function() return article(pick(textures) .. " " .. thing()) end)
repeat_add(250, function() return pick(styles) .. " of " .. article(thing()) end)
repeat_add(100, function() return pick(styles) .. " of " .. article(pick(scenes)) end)
repeat_add(80, function() return pick(styles) .. " of " .. article(pick(people)) end)
repeat_add(180, function()
  local s = pick(subjects_countable)
  return pick(counts) .. " " .. plural[s]
end)
repeat_add(200, function() return article(thing()) .. " " .. pick(positions) end)
repeat_add(180, function() return article(pick(scenes)) .. " " .. pick(weather) end)
repeat_add(180, function() return article(pick(scenes)) .. " " .. pick(times) end)
repeat_add(200, function() return article(pick(people)) .. " " .. pick(activities) end)
repeat_add(150, function() return article(pick(animals)) .. " " .. pick(animal_actions) end)
repeat_add(100, function() return article(pick(people)) .. " in " .. article(pick(scenes)) end)
repeat_add(100, function() return article(pick(animals)) .. " in " .. article(pick(scenes)) end)
repeat_add(80, function() return article(pick(objects)) .. " " .. pick(lighting) end)
repeat_add(80, function() return article(pick(colours) .. " " .. pick(objects)) .. " " .. pick(positions) end)
repeat_add(60, function() return pick(photo_kinds) .. " of " .. article(pick(scenes)) end)

local function write(path, list)
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(list, "\n"), "\n")
  f:close()
  print(string.format("%s: %d lines", path, #list))
end
write(out_dir .. "/descriptions.txt", lines)

-- {===== tinyclip-shapes' world, in its captions' words
local shapes = { "circle", "square", "triangle", "star", "cross", "diamond", "heart", "ring" }
local shape_colours = { "red", "green", "blue", "yellow", "purple", "orange", "white", "black" }
local sizes = { "small", "large" }
local places = { "top left", "top right", "bottom left", "bottom right", "center" }
local grounds = { "a plain gray background", "a plain white background", "a striped background",
                  "a checkerboard", "a noise texture", "a gradient" }
local grounds_short = { "a gray background", "a white background", "stripes", "a checkerboard",
                        "a noise texture", "a gradient" }
lines, seen = {}, {}
for _, s in ipairs(shapes) do add("a photo of " .. article(s) .. ".") end
for _, c in ipairs(shape_colours) do add("a photo of " .. article(c .. " object") .. ".") end
for _, p in ipairs(places) do add("an object at the " .. p .. ".") end
for _, z in ipairs(sizes) do add(article(z .. " object") .. ".") end
for _, g in ipairs(grounds_short) do add("a photo of " .. g .. ".") end
for _, c in ipairs(shape_colours) do
  for _, s in ipairs(shapes) do add(article(c .. " " .. s) .. ".") end
end
for _, z in ipairs(sizes) do
  for _, s in ipairs(shapes) do add(article(z .. " " .. s) .. ".") end
  for _, c in ipairs(shape_colours) do add(article(z .. " " .. c .. " thing") .. ".") end
end
for _, s in ipairs(shapes) do
  for _, p in ipairs(places) do add(article(s) .. " in the " .. p .. ".") end
  for _, g in ipairs(grounds) do add(article(s) .. " on " .. g .. ".") end
end
for _, c in ipairs(shape_colours) do
  for _, p in ipairs(places) do add(article(c .. " thing") .. " in the " .. p .. ".") end
  for _, g in ipairs(grounds) do add(article(c .. " shape") .. " on " .. g .. ".") end
end
for _, z in ipairs(sizes) do
  for _, p in ipairs(places) do add("a picture of " .. article(z .. " shape") .. " at the " .. p .. ".") end
  for _, g in ipairs(grounds) do add(article(z .. " object") .. " on " .. g .. ".") end
end
for _, p in ipairs(places) do
  for _, g in ipairs(grounds) do add("a shape in the " .. p .. " on " .. g .. ".") end
end
repeat_add(150, function()
  return "an image of " .. article(pick(sizes) .. " " .. pick(shape_colours) .. " " .. pick(shapes)) ..
         " in the " .. pick(places) .. " on " .. pick(grounds) .. "."
end)
write(out_dir .. "/shapes_descriptions.txt", lines)
-- }=====
