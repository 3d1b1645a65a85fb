-- refract.svg: small charts written as SVG text (no dependencies; any browser or
-- `rsvg-convert` shows them).
--
--   local svg = require("refract.svg")
--   local text = svg.line_chart({ title = "...", x_label = "...", y_label = "...",
--     x = { 0, 1, 2 }, series = { { name = "accuracy", values = { 70, 60, 20 } } } })
local M = {}

local function escape(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end
M.escape = escape

-- Tick values covering [lo, hi] at a "nice" step (1, 2 or 5 times a power of ten).
function M.ticks(lo, hi, count)
  count = count or 6
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / count
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, f in ipairs({ 1, 2, 5, 10 }) do
    step = f * mag
    if raw <= step then break end
  end
  local first = math.floor(lo / step + 1e-9) * step
  local list = {}
  local v = first
  while v <= hi + step * 1e-9 do
    list[#list + 1] = v
    v = v + step
  end
  if list[#list] < hi - step * 1e-9 then list[#list + 1] = list[#list] + step end
  return list, step
end

local function fmt_tick(v, step)
  if step >= 1 then return string.format("%d", math.floor(v + 0.5)) end
  local digits = math.max(0, -math.floor(math.log(step, 10) + 1e-9))
  return string.format("%." .. digits .. "f", v)
end

local palette = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b" }

-- A line chart: opts.x (numbers), opts.series = { {name =, values = {...}} }, opts.title,
-- opts.x_label, opts.y_label, opts.y_min / opts.y_max (default: from the data, widened to
-- ticks), opts.x_tick_labels (strings under each x), opts.width / opts.height (pixels),
-- opts.value_labels (print each value next to its point), opts.note (a line under the title).
function M.line_chart(opts)
  require("refract.util").check_options(opts, "svg.line_chart", { "x", "series", "title", "x_label", "y_label",
    "y_min", "y_max", "x_tick_labels", "width", "height", "value_labels", "note" })
  local W, H = opts.width or 720, opts.height or 440
  local left, right, top, bottom = 72, 40, opts.note and 62 or 48, 64
  if opts.value_labels then top = top + 16 end  -- room for the labels of the highest points
  if #opts.series > 1 then right = 180 end
  local xs = opts.x
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(opts.series) do
    for _, v in ipairs(s.values) do lo = math.min(lo, v); hi = math.max(hi, v) end
  end
  lo = opts.y_min or lo
  hi = opts.y_max or hi
  local yt, ystep = M.ticks(lo, hi, 5)
  lo, hi = yt[1], yt[#yt]
  local xlo, xhi = xs[1], xs[#xs]
  if xhi == xlo then xhi = xlo + 1 end
  local pw, ph = W - left - right, H - top - bottom
  -- points stay clear of the axes by a twentieth of the width on each side
  local pad = pw / 20
  local function px(x) return left + pad + (x - xlo) / (xhi - xlo) * (pw - 2 * pad) end
  local function py(y) return top + (hi - y) / (hi - lo) * ph end
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif">', W, H, W, H)
  add('<rect x="0" y="0" width="%d" height="%d" fill="white"/>', W, H)
  if opts.title then
    add('<text x="%g" y="26" font-size="17" text-anchor="middle" font-weight="bold">%s</text>', W / 2, escape(opts.title))
  end
  if opts.note then
    add('<text x="%g" y="46" font-size="12" text-anchor="middle" fill="#555">%s</text>', W / 2, escape(opts.note))
  end
  -- grid and y ticks
  for _, v in ipairs(yt) do
    local y = py(v)
    add('<line x1="%g" y1="%.2f" x2="%g" y2="%.2f" stroke="#e4e4e4" stroke-width="1"/>', left, y, left + pw, y)
    add('<text x="%g" y="%.2f" dy="0.35em" font-size="12" text-anchor="end">%s</text>',
      left - 8, y, fmt_tick(v, ystep))
  end
  -- x ticks
  for i, x in ipairs(xs) do
    local label = opts.x_tick_labels and opts.x_tick_labels[i] or tostring(x)
    add('<line x1="%.2f" y1="%g" x2="%.2f" y2="%g" stroke="black" stroke-width="1"/>', px(x), top + ph, px(x), top + ph + 5)
    add('<text x="%.2f" y="%g" font-size="12" text-anchor="middle">%s</text>', px(x), top + ph + 20, escape(label))
  end
  -- axes
  add('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black" stroke-width="1.2"/>', left, top, left, top + ph)
  add('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black" stroke-width="1.2"/>', left, top + ph, left + pw, top + ph)
  if opts.x_label then
    add('<text x="%g" y="%g" font-size="13" text-anchor="middle">%s</text>', left + pw / 2, H - 16, escape(opts.x_label))
  end
  if opts.y_label then
    add('<text x="18" y="%g" font-size="13" text-anchor="middle" transform="rotate(-90 18 %g)">%s</text>',
      top + ph / 2, top + ph / 2, escape(opts.y_label))
  end
  -- series
  for k, s in ipairs(opts.series) do
    local colour = s.colour or palette[(k - 1) % #palette + 1]
    local pts = {}
    for i, v in ipairs(s.values) do pts[i] = string.format("%.2f,%.2f", px(xs[i]), py(v)) end
    add('<polyline points="%s" fill="none" stroke="%s" stroke-width="2.2"/>', table.concat(pts, " "), colour)
    for i, v in ipairs(s.values) do
      add('<circle cx="%.2f" cy="%.2f" r="4" fill="%s"/>', px(xs[i]), py(v), colour)
      if opts.value_labels then
        add('<text x="%.2f" y="%.2f" font-size="11" text-anchor="middle" fill="%s">%.1f</text>',
          px(xs[i]), py(v) - 9, colour, v)
      end
    end
    if #opts.series > 1 then
      local ly = top + 10 + (k - 1) * 20
      add('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2.2"/>', left + pw + 14, ly, left + pw + 34, ly, colour)
      add('<text x="%g" y="%g" dy="0.35em" font-size="12">%s</text>', left + pw + 40, ly, escape(s.name or ""))
    end
  end
  add("</svg>")
  return table.concat(out, "\n") .. "\n"
end

return M
