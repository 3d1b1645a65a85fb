-- refract.report: a report folder: a Markdown file of headings, paragraphs, tables and
-- pictures linked by their path relative to the folder, next to the pictures themselves.
--
--   local report = require("refract.report")
--   local r = report.new("out")                       -- the folder (made if missing)
--   r:heading(1, "Results")
--   r:table({ "attribute", "accuracy" }, { { "shape", "99.7%" } }, { "l", "r" })
--   r:picture("the ablation chart", "ablation.svg")   -- a file written into r.dir
--   r:write("report.md")
local data = require("refract.data")

local M = {}
M.__index = M

-- Makes the folder if needed and checks that it can be written, before any work.
function M.check_dir(dir, option)
  data.make_dir(dir, option or "--report")
  data.check_out(dir .. "/report.md", { "md" }, option or "--report")
end

function M.new(dir)
  M.check_dir(dir)
  return setmetatable({ dir = dir, lines = {} }, M)
end

-- The path of a file in the report folder.
function M:path(name)
  return self.dir .. "/" .. name
end

function M:add(...)
  for _, line in ipairs({ ... }) do self.lines[#self.lines + 1] = line end
end

function M:heading(level, text)
  if #self.lines > 0 and self.lines[#self.lines] ~= "" then self:add("") end
  self:add(string.rep("#", level) .. " " .. text, "")
end

function M:paragraph(text)
  self:add(text, "")
end

-- A table cell: pipes escaped, line breaks as <br>.
local function cell(v)
  return (tostring(v):gsub("|", "\\|"):gsub("\n", "<br>"))
end

-- header: the column titles; rows: lists of cells; align: "l" or "r" per column.
function M:table(header, rows, align)
  local function row(list)
    local cells = {}
    for i, v in ipairs(list) do cells[i] = cell(v) end
    return "| " .. table.concat(cells, " | ") .. " |"
  end
  local rules = {}
  for i = 1, #header do rules[i] = (align and align[i] == "r") and "---:" or "---" end
  self:add(row(header), "| " .. table.concat(rules, " | ") .. " |")
  for _, r in ipairs(rows) do self:add(row(r)) end
  self:add("")
end

-- Markdown for a picture in the folder, to put in a table cell or a paragraph.
function M.image(alt, name)
  return string.format("![%s](%s)", alt:gsub("[%[%]]", ""), name)
end

function M:picture(alt, name)
  self:add(M.image(alt, name), "")
end

-- Writes the Markdown to `name` in the folder; returns its path.
function M:write(name)
  local path = self:path(name)
  data.write_text(path, table.concat(self.lines, "\n"):gsub("\n+$", "") .. "\n")
  return path
end

return M
