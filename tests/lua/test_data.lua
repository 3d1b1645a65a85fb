-- refract.data: text lists, CSV parsing (quotes, line breaks, header rules, errors that
-- name the file and line), labels and groups in every supported format, matching CSV rows
-- to images by file, class folders, output checks; refract.ablate's component names.
local refract = require("refract")
local T = require("testlib")
local data = require("refract.data")
local ablate = require("refract.ablate")

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")
local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

-- {===== lists
local list, lines = data.read_list(write("classes.txt", "cat\r\n\n  \ndog\nred fox"), "class names")
T.eq(list, { "cat", "dog", "red fox" }, "lines, blank ones skipped, \\r dropped")
T.eq(lines, { 1, 4, 5 }, "line numbers in the file")
list, lines = data.read_list(write("classes.json", '["a", "b c"]'), "class names")
T.eq(list, { "a", "b c" }, "JSON list")
T.eq(lines, { 1, 2 }, "JSON positions")
T.fails(function() data.read_list(write("empty.txt", "\n\n"), "class names") end, "empty.txt: no class names")
T.fails(function() data.read_list(write("obj.json", '{"a": 1}'), "templates") end, "expected a JSON list of templates")
T.fails(function() data.read_list(write("num.json", '["a", 3]'), "templates") end, "entry 2 is not a string")
T.fails(function() data.read_list(tmp .. "/missing.txt", "texts") end, "missing.txt: cannot read texts")
T.fails(function() data.read_list(tmp, "texts") end, "is a folder")
-- }=====

-- {===== CSV
local csv = data.parse_csv('\239\187\191name, y ,note\r\na.png,1,"x, ""quoted"""\r\nb.png,0,"two\nlines"\r\n\r\nc.png,2,\n', "t.csv")
T.eq(csv.header, { "name", "y", "note" }, "header (BOM dropped, names trimmed)")
T.eq(#csv.rows, 3, "rows (blank line skipped)")
T.eq(csv.rows[1][3], 'x, "quoted"', "comma and doubled quotes in a quoted field")
T.eq(csv.rows[2][3], "two\nlines", "line break in a quoted field")
T.eq(csv.rows[3][3], "", "empty last field")
T.eq(csv.lines, { 2, 3, 6 }, "each row's line (a quoted line break counts)")
T.fails(function() data.parse_csv("", "e.csv") end, "e.csv: empty CSV file (a header row is required)")
T.fails(function() data.parse_csv("a,b\n1,2\n3\n", "f.csv") end, "f.csv:3: 1 fields, but the header has 2")
T.fails(function() data.parse_csv('a,b\n1,"2\n', "g.csv") end, "g.csv:2: a quoted field is never closed")
T.fails(function() data.parse_csv('a,b\n1,"2"x\n', "h.csv") end, "h.csv:2: unexpected text after a quoted field")
T.fails(function() data.parse_csv('a,b\n1,x"y\n', "i.csv") end, "i.csv:2: a quote inside an unquoted field")
T.fails(function() data.parse_csv("a,a\n1,2\n", "j.csv") end, 'j.csv:1: header names column "a" twice')
T.fails(function() data.parse_csv("a,,c\n1,2,3\n", "k.csv") end, "k.csv:1: header column 2 has no name")
T.fails(function() data.csv_column(csv, "z") end, 't.csv: no column "z" (columns: name, y, note)')
-- }=====

-- {===== labels and groups
local meta = write("metadata.csv", table.concat({
  "img_filename,y,place,split",
  "001.Albatross/a.jpg,1,0,2",
  "002.Gull/b.jpg,1,1,2",
  "003.Sparrow/c.jpg,0,0,2",
  '"004.Finch/d, e.jpg",0,1,0', "" }, "\n"))
T.eq(data.read_labels(meta .. ":y"), { 1, 1, 0, 0 }, "CSV column, rows in order")
T.eq(data.read_groups(meta .. ":place"), { "0", "1", "0", "1" }, "groups from a CSV column")
-- Rows matched to images by their file column, whatever the order, paths with folders.
local paths = { "/data/wb/003.Sparrow/c.jpg", "./004.Finch/d, e.jpg", "wb//001.Albatross/a.jpg" }
T.eq(data.read_labels(meta .. ":y", { paths = paths, count = 3 }), { 0, 0, 1 }, "matched by img_filename")
T.eq(data.read_groups(meta .. ":place", { paths = paths, count = 3 }), { "0", "1", "0" }, "groups matched too")
T.fails(function() data.read_labels(meta .. ":y", { paths = { "/x/zzz.jpg" } }) end,
  'no row for image 1, /x/zzz.jpg (images are matched to rows by column "img_filename")')
T.fails(function() data.read_labels(meta .. ":y", { count = 5 }) end, "metadata.csv:y: 4 labels for 5 images")
-- A decomposition holding NaN or infinity (a damaged file) went into every accuracy,
-- span and neighbour without a word.
local poisoned = refract.zeros({ 2, 3, 4, 5 })
poisoned:set(1, 2, refract.full({ 3, 4, 5 }, math.huge))
T.fails(function() data.decomposition({ attn_heads = poisoned }, { source = "poisoned.safetensors" }) end,
  "poisoned.safetensors: attn_heads holds infinity at element 61 (counting from 1, row-major)")
T.eq(data.decomposition({ attn_heads = refract.full({ 2, 3, 4, 5 }, 1e38) }).count, 2, "finite values whose sum overflows")
-- Integral floats past the integers in a labels file: string.format failed, naming nothing.
refract.write(tmp .. "/huge_labels.npy", refract.tensor({ 0, 1e30, math.huge }))
T.fails(function() data.read_labels(tmp .. "/huge_labels.npy") end, "huge_labels.npy: entry 1 is 1.0000000150475e+30, not an integer")
T.fails(function() data.read_labels(meta .. ":y", { classes = 1 }) end,
  "metadata.csv:2: label 1 is out of range for 1 classes (0..0)")
T.fails(function() data.read_labels(meta .. ":nope") end, 'no column "nope" (columns: img_filename, y, place, split)')
T.fails(function() data.read_labels(meta) end, "name the column: " .. meta .. ":COLUMN")
local dup = write("dup.csv", "file,y\na.png,0\nb.png,1\na.png,1\n")
T.fails(function() data.read_labels(dup .. ":y", { paths = { "a.png" } }) end, 'dup.csv:4: file "a.png" is also on line 2')
-- names mapped through the classifier's class list; unknown names are errors
local shapes = write("shapes.csv", "file,shape\n0.png,ring\n1.png,star\n2.png,ring\n")
T.eq(data.read_labels(shapes .. ":shape", { classes = { "circle", "star", "ring" } }), { 2, 1, 2 }, "class names")
T.fails(function() data.read_labels(shapes .. ":shape", { classes = { "circle", "star" } }) end,
  'shapes.csv:2: label "ring" is neither a class index (from 0) nor one of the 2 class names')
T.fails(function() data.read_labels(shapes .. ":shape") end, 'shapes.csv:2: label "ring" is not a class index')
-- text files, JSON, .npy and .safetensors
T.eq(data.read_labels(write("labels.txt", "3\n0\n\n2\n")), { 3, 0, 2 }, "text file")
T.fails(function() data.read_labels(write("neg.txt", "3\n-1\n")) end, "neg.txt:2: label -1 is out of range")
T.fails(function() data.read_labels(write("big.txt", "3\n7\n"), { classes = 5 }) end,
  "big.txt:2: label 7 is out of range for 5 classes (0..4)")
T.eq(data.read_labels(write("labels.json", '["1", "0"]')), { 1, 0 }, "JSON list")
refract.write(tmp .. "/labels.npy", refract.tensor({ 4, 1, 0 }, "i64"))
T.eq(data.read_labels(tmp .. "/labels.npy"), { 4, 1, 0 }, ".npy i64")
refract.write(tmp .. "/l.safetensors", { labels = refract.tensor({ { 2 }, { 1 } }, "i32"),
                                         y = refract.tensor({ 1, 0 }, "u8"), f = refract.tensor({ 0.5, 1 }) })
T.eq(data.read_labels(tmp .. "/l.safetensors"), { 2, 1 }, ".safetensors default name, [N, 1]")
T.eq(data.read_labels(tmp .. "/l.safetensors:y"), { 1, 0 }, ".safetensors:NAME")
T.fails(function() data.read_labels(tmp .. "/l.safetensors:f") end, "l.safetensors:f: entry 0 is 0.5, not an integer")
-- class folders (ImageFolder): sorted subfolder names are classes 0..C-1
os.execute(string.format("mkdir -p '%s/val/n02' '%s/val/n01' '%s/val/n03'", tmp, tmp, tmp))
local folder_paths = { tmp .. "/val/n03/x.jpg", tmp .. "/val/n01/y.jpg", tmp .. "/val/n02/z.jpg" }
T.eq(data.read_labels(tmp .. "/val", { paths = folder_paths }), { 2, 0, 1 }, "class folders")
T.fails(function() data.read_labels(tmp .. "/val", { paths = { tmp .. "/other/q.jpg" } }) end, "is not in a class folder")
T.fails(function() data.read_labels(tmp .. "/val") end, "need a decomposition that records its image paths")
-- a class folder whose name holds a newline is a class like any other (`ls` split it in two,
-- dropping it and shifting the later classes' indices)
os.execute(string.format("mkdir -p '%s/val2/n00\nx' '%s/val2/n01' '%s/val2/n02'", tmp, tmp, tmp))
T.eq(data.read_labels(tmp .. "/val2", { paths = { tmp .. "/val2/n02/a.jpg", tmp .. "/val2/n00\nx/b.jpg",
  tmp .. "/val2/n01/c.jpg" } }), { 2, 0, 1 }, "a class folder named with a newline")
-- }=====

-- {===== outputs
data.check_out(tmp .. "/a.json", { "json" })
T.fails(function() data.check_out(tmp .. "/a.txt", { "json" }) end, "a.txt: expected a .json file")
T.fails(function() data.check_out(tmp .. "/no/such/a.json", { "json" }) end, "folder " .. tmp .. "/no/such does not exist")
T.fails(function() data.check_out(tmp .. "/val", { "val" }, "--chart") end, "expected a .val file")
-- check_out's write test follows no link and truncates nothing: a link planted at its probe's
-- name (predicted here from the same random seed) emptied the file it pointed to
do
  local victim = tmp .. "/victim.txt"
  data.write_text(victim, "finished work")
  math.randomseed(42)
  local probe = string.format("%s/.refract-write-test-%d", tmp, math.random(1 << 30))
  os.execute(string.format("ln -s '%s' '%s'", victim, probe))
  math.randomseed(42)
  data.check_out(tmp .. "/probe.json", { "json" })
  T.eq(refract.read_file(victim), "finished work", "a link at the probe's name redirects nothing")
  os.remove(probe)
end
data.write_text(tmp .. "/w.txt", "hello")
T.eq(io.open(tmp .. "/w.txt"):read("a"), "hello", "write_text")
-- The JSON, SVG and Markdown outputs (ablate, retrieve, segment, textspan, reports) are
-- written as every output is: a link planted at OUT.tmp redirects nothing (here to a
-- victim file, and to /dev/full, a full disk: the text was lost and a link to /dev/full
-- renamed into place, reported as written), and a failed write is an error naming OUT.
local victim = write("victim.txt", "precious")
os.execute(string.format("ln -s '%s' '%s/planted.json.tmp'", victim, tmp))
data.write_text(tmp .. "/planted.json", "{}\n")
T.eq(T.read_file(victim), "precious", "a link at OUT.tmp redirects nothing")
T.eq(refract.file_type(tmp .. "/planted.json"), "file", "OUT is a new file, not the planted link")
T.eq(T.read_file(tmp .. "/planted.json"), "{}\n", "written whole")
os.execute(string.format("ln -s /dev/full '%s/full.json.tmp'", tmp))
data.write_text(tmp .. "/full.json", "[1, 2]\n")
T.eq(refract.file_type(tmp .. "/full.json"), "file", "a link to /dev/full at OUT.tmp: OUT is a file")
if refract.file_type(tmp .. "/full.json") == "file" then   -- (reading /dev/full never ends)
  T.eq(T.read_file(tmp .. "/full.json"), "[1, 2]\n", "a link to /dev/full at OUT.tmp: written whole elsewhere")
end
T.fails(function() data.write_text(tmp .. "/no/such/w.json", "x") end, tmp .. "/no/such/w.json: cannot create")
-- }=====

-- {===== components by name
local dec = { layers = 12, heads = 16 }
local heads = ablate.parse_heads("12.7, 11.*,12.7", dec)
T.eq(#heads, 17, "12.7 once, then 16 heads of layer 11")
T.eq({ heads[1].layer, heads[1].head, heads[2].layer, heads[2].head, heads[17].head }, { 12, 7, 11, 1, 16 }, "order")
T.eq(#ablate.parse_heads("all", dec), 192, "all heads")
T.eq(#ablate.parse_heads("1-3.2-3", dec), 6, "ranges")
T.fails(function() ablate.parse_heads("12", dec) end, 'bad head "12" in "12": expected LAYER.HEAD')
T.fails(function() ablate.parse_heads("12.x", dec) end, 'bad head "x" in "12.x"')
T.fails(function() ablate.parse_heads("13.1", dec) end, "layer 13 in \"13.1\" is out of range: the model has layers 1..12")
T.fails(function() ablate.parse_heads("1.0", dec) end, "head 0 in \"1.0\" is out of range: the model has heads 1..16")
T.eq(ablate.parse_mlps("embed,3-4,12", dec), { 0, 3, 4, 12 }, "MLP terms")
T.eq(#ablate.parse_mlps("all", dec), 13, "all MLP terms with the embedding term")
T.fails(function() ablate.parse_mlps("13", dec) end, "MLP 13 in \"13\" is out of range: the model has MLPs 0..12")
-- }=====

os.execute("rm -rf '" .. tmp .. "'")
T.done()
