-- Scratch buffers holding reports: a few header lines and aligned tables.

local M = {}

local function width(text)
  return vim.fn.strdisplaywidth(text)
end

local function pad(text, size, right)
  local gap = size - width(text)
  if gap <= 0 then
    return text
  end
  if right then
    return string.rep(" ", gap) .. text
  end
  return text .. string.rep(" ", gap)
end

--- Formats a number with `decimals` decimals; "-" for nil/NIL; very small or large values in
--- scientific notation so that columns stay narrow.
function M.num(value, decimals)
  if value == nil or value == vim.NIL then
    return "-"
  end
  if type(value) ~= "number" then
    return tostring(value)
  end
  decimals = decimals or 5
  local magnitude = math.abs(value)
  if magnitude ~= 0 and (magnitude < 10 ^ -(decimals - 1) or magnitude >= 1e7) then
    return ("%." .. math.max(decimals - 2, 2) .. "e"):format(value)
  end
  return ("%." .. decimals .. "f"):format(value)
end

--- columns: list of {title, right = bool}; rows: list of lists of strings.
--- Returns the lines: header, a rule, one line per row; every column aligned.
function M.table(columns, rows)
  local widths = {}
  for c, column in ipairs(columns) do
    widths[c] = width(column[1])
    for _, row in ipairs(rows) do
      widths[c] = math.max(widths[c], width(row[c] or ""))
    end
  end
  local function line(cells)
    local parts = {}
    for c, column in ipairs(columns) do
      parts[c] = pad(cells[c] or "", widths[c], column.right)
    end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local header = {}
  local rule = {}
  for c, column in ipairs(columns) do
    header[c] = column[1]
    rule[c] = string.rep("-", widths[c])
  end
  local lines = { line(header), table.concat(rule, "  ") }
  for _, row in ipairs(rows) do
    table.insert(lines, line(row))
  end
  return lines
end

--- Shows `lines` in the scratch buffer `name` (created or reused; opened in a split at the
--- bottom unless it is visible already). Returns the buffer number.
function M.show(name, lines, opts)
  opts = opts or {}
  local bufname = "loquat://" .. name
  local buf = vim.fn.bufnr(bufname)
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, bufname)
    vim.api.nvim_buf_set_option(buf, "buftype", "nofile")
    vim.api.nvim_buf_set_option(buf, "bufhidden", "hide")
    vim.api.nvim_buf_set_option(buf, "swapfile", false)
    vim.api.nvim_buf_set_option(buf, "filetype", "loquat")
  end
  vim.api.nvim_buf_set_option(buf, "modifiable", true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
  vim.api.nvim_buf_set_option(buf, "modified", false)
  if opts.open ~= false and vim.fn.bufwinid(buf) == -1 then
    local previous = vim.api.nvim_get_current_win()
    vim.cmd("botright split")
    local win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(win, buf)
    vim.api.nvim_win_set_height(win, math.max(5, math.min(#lines + 1, math.floor(vim.o.lines / 2))))
    vim.api.nvim_win_set_option(win, "wrap", false)
    vim.api.nvim_win_set_option(win, "number", false)
    if opts.focus == false and vim.api.nvim_win_is_valid(previous) then
      vim.api.nvim_set_current_win(previous)
    end
  end
  return buf
end

return M
