-- Headless test of the Loquat plugin (run by test/run.sh). Exits 0 when every check passes.

local passes, failures = 0, 0
local out = io.stdout

local function say(line)
  out:write(line .. "\n")
  out:flush()
end

local function check(name, condition, detail)
  if condition then
    passes = passes + 1
    say("ok   nvim: " .. name)
  else
    failures = failures + 1
    say("FAIL nvim: " .. name .. (detail and (" — " .. tostring(detail)) or ""))
  end
  return condition
end

-- Capture notifications (and keep them quiet).
local notes = {}
vim.notify = function(message, level)
  table.insert(notes, { message = message, level = level or vim.log.levels.INFO })
end
-- Capture what goes to the command line (headless Neovim would print it on the terminal).
local echoes = {}
vim.api.nvim_echo = function(chunks, history, opts)
  local text = {}
  for _, chunk in ipairs(chunks) do
    table.insert(text, chunk[1])
  end
  table.insert(echoes, table.concat(text))
end

local function find_note(pattern, level, from)
  for i = from or 1, #notes do
    local note = notes[i]
    if (level == nil or note.level == level) and note.message:find(pattern) then
      return note, i
    end
  end
end
local function last_note()
  return notes[#notes] and notes[#notes].message or "(none)"
end

local function buffer_lines(buf)
  return vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

local function rows_of(lines, prefix)
  local rows = {}
  for _, line in ipairs(lines) do
    if line:sub(1, #prefix) == prefix then
      table.insert(rows, line)
    end
  end
  return rows
end

local function run()
  local ERROR, INFO = vim.log.levels.ERROR, vim.log.levels.INFO
  local minilm = os.getenv("LOQUAT_TEST_MINILM")

  check("commands defined by plugin/loquat.lua",
    vim.fn.exists(":LoquatStart") == 2 and vim.fn.exists(":LoquatLoad") == 2 and vim.fn.exists(":LoquatQuantize") == 2
      and vim.fn.exists(":LoquatInitAdapter") == 2 and vim.fn.exists(":LoquatEvaluate") == 2 and vim.fn.exists(":LoquatInfo") == 2)

  local loquat = require("loquat")
  local state = loquat.state

  -- A missing daemon binary: an ERROR at once, nothing pending, no hang.
  loquat.setup({ cmd = "/nonexistent/loquatd" })
  local t0 = vim.loop.hrtime()
  vim.cmd("LoquatStart")
  vim.cmd("LoquatLoad " .. minilm)
  local elapsed_ms = (vim.loop.hrtime() - t0) / 1e6
  check("missing daemon: ERROR notification naming it", find_note("loquatd not found: /nonexistent/loquatd", ERROR) ~= nil, last_note())
  check("missing daemon: no client, nothing pending, returns at once",
    state.client == nil and loquat.pending_count() == 0 and elapsed_ms < 1000, ("%.0f ms"):format(elapsed_ms))

  loquat.setup({ cmd = os.getenv("LOQUATD") })
  local mark = #notes + 1
  vim.cmd("LoquatQuantize nf4 4")
  check("quantize before any load: ERROR", find_note("no model loaded", ERROR, mark) ~= nil, last_note())

  vim.cmd("LoquatStart")
  check("start: initialized", vim.wait(20000, function() return state.server ~= nil end, 20), last_note())
  check("start: ready notification", find_note("loquatd [%d.]+ ready %(pid %d+", INFO) ~= nil, last_note())

  vim.cmd("LoquatLoad " .. vim.fn.fnameescape(minilm) .. " mini")
  check("load MiniLM", vim.wait(20000, function() return state.last_model == "mini" end, 20), last_note())
  check("load: notification", find_note("loaded mini: bert", INFO) ~= nil, last_note())

  mark = #notes + 1
  vim.cmd("LoquatLoad /nonexistent/model.safetensors")
  check("load of a missing file: ERROR with -32001",
    vim.wait(10000, function() return find_note("model/load failed: %-32001", ERROR, mark) ~= nil end, 20), last_note())

  -- Quantize: the command returns while the request runs; the report arrives in a callback.
  local progress_before = #state.progress
  t0 = vim.loop.hrtime()
  vim.cmd("LoquatQuantize nf4 4")
  elapsed_ms = (vim.loop.hrtime() - t0) / 1e6
  check("quantize: asynchronous (pending after the command returned)",
    loquat.pending_count() == 1 and state.last_quantized == nil,
    ("pending %d after %.1f ms"):format(loquat.pending_count(), elapsed_ms))
  check("quantize: result arrives", vim.wait(120000, function() return state.last_quantized ~= nil end, 20), last_note())
  check("quantize: handle", state.last_quantized == "mini-nf4", state.last_quantized)
  local report = state.last_report or {}
  check("quantize: report buffer", report.kind == "quantize" and report.buf and vim.api.nvim_buf_is_valid(report.buf),
    vim.inspect(report))
  local lines = report.buf and buffer_lines(report.buf) or {}
  check("quantize: report header", (lines[1] or ""):find("^quantize mini %-> mini%-nf4 %(nf4%)") ~= nil, lines[1])
  local rows = rows_of(lines, "encoder.layer.")
  check("quantize: 36 layer rows", #rows == 36, #rows)
  local numeric, in_range = 0, 0
  for _, row in ipairs(rows) do
    local relative, maxabs, sqnr = row:match(
      "^encoder%.layer%.%d+%.[%w%._]+%s+%d+x%d+%s+nf4%s+4%s+64%s+4%.%d%d%d%s+(%d%.%d+)%s+(%d%.%d+)%s+(%d+%.%d%d)$")
    if relative then
      numeric = numeric + 1
      if tonumber(relative) > 0.05 and tonumber(relative) < 0.15 and tonumber(maxabs) > 0 and tonumber(sqnr) > 10 then
        in_range = in_range + 1
      end
    end
  end
  check("quantize: every row has shape, bits, bits/weight, errors, SQNR", numeric == 36, numeric .. " rows parsed; e.g. " .. tostring(rows[1]))
  check("quantize: relative errors 0.05..0.15, SQNR > 10 dB", in_range == 36, in_range)
  local header_index
  for i, line in ipairs(lines) do
    if line:find("^layer%s") then
      header_index = i
    end
  end
  local aligned = header_index ~= nil
  for _, row in ipairs(rows) do
    aligned = aligned and vim.fn.strdisplaywidth(row) == vim.fn.strdisplaywidth(lines[header_index])
  end
  check("quantize: table aligned (header and rows the same width)", aligned, lines[header_index or 1])
  local seen_percent, seen_done = false, false
  for i = progress_before + 1, #state.progress do
    seen_percent = seen_percent or state.progress[i]:find("^loquat: quantize: %d+%% encoder%.layer") ~= nil
    seen_done = seen_done or state.progress[i] == "loquat: quantize: done"
  end
  check("quantize: $/progress shown (percent per layer, done)", seen_percent and seen_done, #state.progress - progress_before)
  local echoed = false
  for _, line in ipairs(echoes) do
    echoed = echoed or line:find("^loquat: quantize: %d+%% encoder%.layer") ~= nil
  end
  check("quantize: progress echoed in the command line", echoed, #echoes)
  check("quantize: summary notification", find_note("quantized mini %-> mini%-nf4: 36 layers", INFO) ~= nil, last_note())

  -- initAdapter on the last quantized model.
  vim.cmd("LoquatInitAdapter loftq 8 iterations=1 name=lq")
  check("initAdapter: result", vim.wait(120000, function() return state.last_adapter == "lq" end, 20), last_note())
  lines = buffer_lines(state.last_report.buf)
  rows = rows_of(lines, "encoder.layer.")
  check("initAdapter: report with 36 rows", state.last_report.kind == "initAdapter" and #rows == 36, #rows)
  local lower = 0
  for _, row in ipairs(rows) do
    local before, after = row:match("loftq%s+8%s+8%.0%s+(%d%.%d+)%s+(%d%.%d+)%s+%-%d+%.%d%%$")
    if before and tonumber(after) < tonumber(before) then
      lower = lower + 1
    end
  end
  check("initAdapter: loftq lowers every layer's error", lower == 36, lines[5] .. " / " .. tostring(rows[1]))
  check("initAdapter: header names the new base", (lines[1] or ""):find("new base mini%-nf4%-loftq") ~= nil, lines[1])

  -- evaluate: weightError of the last quantized model against its source.
  vim.cmd("LoquatEvaluate")
  check("evaluate: result", vim.wait(60000, function()
    return state.last_report.kind == "evaluate"
  end, 20), last_note())
  lines = buffer_lines(state.last_report.buf)
  check("evaluate: weightError of mini-nf4 against mini",
    (lines[1] or ""):find("^evaluate mini%-nf4 against mini") ~= nil and (lines[2] or ""):find("^weightError: mean 0%.0%d+, max 0%.") ~= nil,
    (lines[1] or "") .. " | " .. (lines[2] or ""))
  check("evaluate: 36 per-layer rows", #rows_of(lines, "encoder.layer.") == 36, #rows_of(lines, "encoder.layer."))

  -- info: what is resident, and one model's tensors.
  vim.cmd("LoquatInfo")
  check("info: report", vim.wait(20000, function() return state.last_report.name == "info/resident" end, 20), last_note())
  lines = table.concat(buffer_lines(state.last_report.buf), "\n")
  check("info: lists models and the adapter",
    lines:find("\nmini%s+bert") and lines:find("\nmini%-nf4%s+bert.-nf4 4%.50%d bits/weight") and lines:find("\nlq%s+loftq%s+8") ~= nil,
    lines:sub(1, 400))
  vim.cmd("LoquatInfo mini")
  check("info {model}: tensor table", vim.wait(20000, function() return state.last_report.name == "info/mini" end, 20), last_note())
  check("info {model}: 104 tensors", #rows_of(buffer_lines(state.last_report.buf), "encoder.") + #rows_of(buffer_lines(state.last_report.buf), "embeddings.") + #rows_of(buffer_lines(state.last_report.buf), "pooler.") == 104)

  -- Cancel a request in flight.
  mark = #notes + 1
  vim.cmd("LoquatQuantize int 3 name=cancelled")
  vim.cmd("LoquatCancel")
  check("cancel: -32800 comes back as an ERROR",
    vim.wait(60000, function() return find_note("quantize failed: %-32800", ERROR, mark) ~= nil end, 20), last_note())

  -- Commands typed back to back: quantize waits for the load, evaluate for the quantize.
  vim.cmd("LoquatLoad " .. vim.fn.fnameescape(minilm) .. " mini2")
  vim.cmd("LoquatQuantize nf4 4 targets=encoder.layer.0.*")
  vim.cmd("LoquatEvaluate")
  check("load | quantize | evaluate without waiting: chained", vim.wait(60000, function()
    return state.last_report.name == "evaluate/mini2-nf4"
  end, 20), last_note())
  check("chained: 6 rows for encoder.layer.0.*",
    #rows_of(buffer_lines(state.last_report.buf), "encoder.layer.0.") == 6, last_note())

  -- The daemon dies during a request: the callback gets an error, no hang; a later command
  -- starts a new daemon.
  mark = #notes + 1
  local pid = state.client.pid
  vim.cmd("LoquatQuantize hqq 2 name=killed")
  vim.loop.kill(pid, "sigkill")
  check("daemon killed mid-request: ERROR naming the pending request",
    vim.wait(20000, function() return find_note("loquatd exited .- while quantize was pending", ERROR, mark) ~= nil end, 20),
    last_note())
  check("daemon killed: client cleared, nothing pending", state.client == nil and loquat.pending_count() == 0)
  vim.cmd("LoquatStart")
  check("restart after the crash", vim.wait(20000, function() return state.server ~= nil end, 20) and state.client.pid ~= pid, last_note())

  -- Perplexity of a Llama model on this buffer's text (optional: SmolLM2 decode is heavier).
  if os.getenv("LOQUAT_NVIM_LLAMA") == "1" then
    vim.cmd("enew")
    local text = {}
    for i = 1, 12 do
      text[i] = "The quick brown fox jumps over the lazy dog, and the dog sleeps in the warm afternoon sun number " .. i .. "."
    end
    vim.api.nvim_buf_set_lines(0, 0, -1, false, text)
    vim.cmd("LoquatLoad " .. vim.fn.fnameescape(os.getenv("LOQUAT_TEST_SMOLLM2")) .. " smol")
    check("llama: load", vim.wait(60000, function() return state.last_model == "smol" end, 20), last_note())
    vim.cmd("LoquatEvaluate")
    check("llama: perplexity report", vim.wait(240000, function() return state.last_report.name == "evaluate/smol" end, 50), last_note())
    lines = buffer_lines(state.last_report.buf)
    check("llama: perplexity value", (lines[2] or ""):find("^perplexity %d+%.%d+ ± %d+%.%d+") ~= nil, lines[2])
  end

  vim.cmd("LoquatStop")
  check("stop", vim.wait(20000, function() return state.client == nil end, 20) and find_note("loquatd stopped %(exit code 0%)", INFO) ~= nil, last_note())
end

local ok, problem = xpcall(run, debug.traceback)
if not ok then
  failures = failures + 1
  say("FAIL nvim: the test script raised an error:\n" .. tostring(problem))
end
say(("nvim-client: %d passed, %d failed (Neovim %s)"):format(passes, failures, tostring(vim.version and vim.version().minor and ("0." .. vim.version().minor .. "." .. vim.version().patch) or "?")))
if failures > 0 then
  vim.cmd("cquit 1")
else
  vim.cmd("qall!")
end
