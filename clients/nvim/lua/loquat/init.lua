-- Loquat for Neovim: drive a resident loquatd (low-bit quantization, LoRA adapters) from the
-- editor. Every request is asynchronous; results arrive in callbacks and per-layer reports open
-- in scratch buffers. See clients/nvim/README.md.

local rpc = require("loquat.rpc")
local report = require("loquat.report")
local present = rpc.present

local M = {}

M.version = "0.1.0"

M.config = {
  -- The daemon: this, else g:loquat_daemon, else $LOQUATD, else `loquatd` on PATH.
  cmd = nil,
  args = {},
  -- Show $/progress in the command line.
  progress = true,
  -- Open report buffers in a split when a result arrives.
  open_reports = true,
}

M.state = {
  client = nil,
  server = nil, -- the initialize result
  models = {}, -- handle -> what we know (architecture, source, ...)
  last_model = nil, -- last loaded
  last_quantized = nil, -- last quantized
  last_adapter = nil, -- last adapter made
  current = nil, -- the model loaded or quantized most recently (what :LoquatEvaluate measures)
  last_report = nil, -- {name, buf, kind}
  progress = {}, -- recent progress lines, newest last
  errors = {}, -- recent error messages, newest last
  stopping = false,
  busy = { load = 0, quantize = 0 }, -- requests in flight whose result later commands use
}

-- Commands that use "the last loaded/quantized model" wait for a load or quantize still in
-- flight, so `:LoquatLoad x | LoquatQuantize nf4 4` works without waiting by hand.
local waiters = { load = {}, quantize = {} }

local function begin(kind)
  M.state.busy[kind] = M.state.busy[kind] + 1
end

local function finish(kind)
  M.state.busy[kind] = math.max(M.state.busy[kind] - 1, 0)
  if M.state.busy[kind] == 0 then
    local ready = waiters[kind]
    waiters[kind] = {}
    for _, fn in ipairs(ready) do
      fn()
    end
  end
end

-- Runs fn once no request of `kind` is in flight; true when it had to wait.
local function after(kind, fn)
  if M.state.busy[kind] > 0 then
    table.insert(waiters[kind], fn)
    return true
  end
  return false
end

local levels = vim.log.levels

local function notify(message, level)
  vim.notify("loquat: " .. message, level or levels.INFO)
end

local function notify_error(message)
  table.insert(M.state.errors, message)
  if #M.state.errors > 50 then
    table.remove(M.state.errors, 1)
  end
  notify(message, levels.ERROR)
end

local function describe_error(method, err)
  local text = ("%s failed: %s %s"):format(method, tostring(present(err.code) or "?"), err.message or "")
  local data = present(err.data)
  if type(data) == "table" then
    local reason = present(data.reason)
    if type(reason) == "string" and not text:find(reason, 1, true) then
      text = text .. " — " .. reason
    end
    local stderr = present(data.stderr)
    if type(stderr) == "string" and stderr ~= "" then
      text = text .. "\n" .. stderr
    end
  end
  return text
end

local function daemon_cmd()
  if M.config.cmd and M.config.cmd ~= "" then
    return M.config.cmd
  end
  if type(vim.g.loquat_daemon) == "string" and vim.g.loquat_daemon ~= "" then
    return vim.g.loquat_daemon
  end
  if vim.env.LOQUATD and vim.env.LOQUATD ~= "" then
    return vim.env.LOQUATD
  end
  return "loquatd"
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  return M
end

-- --- formatting ---------------------------------------------------------------------------

local num = report.num

local function count(n)
  n = present(n)
  if type(n) ~= "number" then
    return "?"
  end
  if n >= 1e9 then
    return ("%.2fG"):format(n / 1e9)
  elseif n >= 1e6 then
    return ("%.1fM"):format(n / 1e6)
  elseif n >= 1e3 then
    return ("%.1fk"):format(n / 1e3)
  end
  return tostring(n)
end

local function bytes(n)
  n = present(n)
  if type(n) ~= "number" then
    return "?"
  end
  if n >= 2 ^ 30 then
    return ("%.2f GiB"):format(n / 2 ^ 30)
  elseif n >= 2 ^ 20 then
    return ("%.1f MiB"):format(n / 2 ^ 20)
  elseif n >= 2 ^ 10 then
    return ("%.1f KiB"):format(n / 2 ^ 10)
  end
  return ("%d B"):format(n)
end

local function shape(dims)
  if type(dims) ~= "table" then
    return "-"
  end
  local parts = {}
  for i, d in ipairs(dims) do
    parts[i] = tostring(d)
  end
  return table.concat(parts, "x")
end

local function mean_max(layers, key)
  local sum, n, max = 0, 0, nil
  for _, layer in ipairs(layers or {}) do
    local v = present(layer[key])
    if type(v) == "number" then
      sum, n = sum + v, n + 1
      max = (max == nil or v > max) and v or max
    end
  end
  if n == 0 then
    return nil
  end
  return sum / n, max
end

local function seconds(result)
  local s = present(result and result.seconds)
  return type(s) == "number" and ("%.2f s"):format(s) or nil
end

local function show(kind, name, lines)
  local buf = report.show(kind .. "/" .. name, lines, { open = M.config.open_reports })
  M.state.last_report = { kind = kind, name = kind .. "/" .. name, buf = buf }
  return buf
end

-- --- the daemon ------------------------------------------------------------------------------

local function progress_handler(method)
  return function(value)
    local text
    if value.kind == "begin" then
      text = present(value.title) or "started"
      if present(value.message) then
        text = text .. " (" .. value.message .. ")"
      end
    elseif value.kind == "report" then
      text = (present(value.percentage) and (value.percentage .. "% ") or "") .. (present(value.message) or "")
      local eta = present(value.etaSeconds)
      if type(eta) == "number" and eta >= 1 then
        text = text .. (" (eta %ds)"):format(math.floor(eta + 0.5))
      end
    else
      text = "done"
    end
    local line = ("loquat: %s: %s"):format(method, text)
    table.insert(M.state.progress, line)
    if #M.state.progress > 500 then
      table.remove(M.state.progress, 1)
    end
    if M.config.progress then
      local room = math.max(vim.o.columns - 12, 20)
      vim.api.nvim_echo({ { line:sub(1, room) } }, false, {})
    end
  end
end

--- The running client, started (and initialized, asynchronously) when needed. nil when the
--- daemon cannot be started (an ERROR notification says why).
function M.client(opts)
  local st = M.state
  if st.client and not st.client.exited then
    return st.client
  end
  opts = opts or {}
  local client
  local why
  client, why = rpc.start({
    cmd = daemon_cmd(),
    args = M.config.args,
    on_notification = function(method, params)
      if method == "error" and type(params) == "table" then
        notify_error(describe_error("a request", params))
      end
    end,
    on_exit = function(code, signal, tail, failed)
      if st.client == client then
        st.client, st.server = nil, nil
      end
      if st.quitting then
        return
      elseif st.stopping then
        st.stopping = false
        notify(("loquatd stopped (exit code %s)"):format(tostring(code)))
      elseif failed == 0 then
        local text = ("loquatd exited (code %s%s)"):format(tostring(code), (signal and signal ~= 0) and (", signal " .. signal) or "")
        if tail and tail ~= "" then
          text = text .. "\n" .. tail
        end
        notify_error(text)
      end
    end,
  })
  if not client then
    notify_error(why .. " (set $LOQUATD, g:loquat_daemon, or require('loquat').setup({cmd = ...}))")
    return nil
  end
  st.client = client
  client:request("initialize", {
    processId = vim.fn.getpid(),
    clientInfo = { name = "loquat.nvim", version = M.version },
  }, function(err, result)
    if err then
      notify_error(describe_error("initialize", err))
      return
    end
    st.server = result
    if opts.announce then
      local info = result.serverInfo or {}
      local runtime = result.runtime or {}
      notify(("%s %s ready (pid %d, OpenBLAS %s, %s workers)"):format(
        info.name or "loquatd",
        info.version or "?",
        client.pid,
        tostring(present(runtime.blasCore) or "?"),
        tostring(present(runtime.workers) or "?")
      ))
    end
    if opts.on_ready then
      opts.on_ready(result)
    end
  end)
  return client
end

local long_running = {
  ["model/load"] = true,
  ["model/save"] = true,
  quantize = true,
  ["quantize/plan"] = true,
  initAdapter = true,
  evaluate = true,
  calibrate = true,
  merge = true,
  extractAdapter = true,
}

--- Sends METHOD; on_result(result) on success, an ERROR notification on failure.
--- Returns the request id (nil when the daemon is not available).
function M.request(method, params, on_result, on_error)
  local client = M.client()
  if not client then
    if on_error then
      on_error({ code = "unavailable", message = "loquatd is not available" })
    end
    return nil
  end
  return client:request(method, params, function(err, result)
    if err then
      notify_error(describe_error(method, err))
      if on_error then
        on_error(err)
      end
      return
    end
    local ok, problem = pcall(on_result, result)
    if not ok then
      notify_error(("%s: cannot show the result: %s"):format(method, tostring(problem)))
    end
  end, { on_progress = long_running[method] and progress_handler(method) or nil })
end

function M.pending_count()
  local client = M.state.client
  return client and client:pending_count() or 0
end

-- --- commands --------------------------------------------------------------------------------

--- Splits command arguments into positional ones and key=value options (values parsed as JSON
--- when they are JSON, else kept as strings; `targets`/`exclude` may be a single pattern).
function M.parse_args(fargs)
  local positional, options = {}, {}
  for _, arg in ipairs(fargs or {}) do
    local key, value = arg:match("^([%a_][%w_]*)=(.*)$")
    if key then
      local ok, decoded = pcall(vim.json.decode, value)
      if ok and decoded ~= nil and decoded ~= vim.NIL and value ~= "" then
        options[key] = decoded
      else
        options[key] = value
      end
    else
      table.insert(positional, arg)
    end
  end
  for _, key in ipairs({ "targets", "exclude" }) do
    if type(options[key]) == "string" then
      options[key] = { options[key] }
    end
  end
  return positional, options
end

local function architecture_of(handle)
  local seen = {}
  while handle and not seen[handle] do
    seen[handle] = true
    local model = M.state.models[handle]
    if not model then
      return nil
    end
    if model.architecture and model.architecture ~= "unknown" then
      return model.architecture
    end
    handle = model.source
  end
  return nil
end

function M.start()
  local st = M.state
  if st.client and not st.client.exited then
    local info = st.server and st.server.serverInfo or {}
    notify(("%s %s already running (pid %d)"):format(info.name or "loquatd", info.version or "", st.client.pid))
    return st.client
  end
  return M.client({ announce = true })
end

function M.stop()
  local client = M.state.client
  if not client or client.exited then
    notify("loquatd is not running")
    return
  end
  M.state.stopping = true
  client:stop(5000)
end

function M.cancel()
  local client = M.state.client
  local n = client and not client.exited and client:cancel() or 0
  notify(n == 0 and "nothing to cancel" or ("$/cancelRequest sent for %d request(s)"):format(n))
end

function M.load(path, name)
  if not path or path == "" then
    notify_error("usage: :LoquatLoad {path} [name]")
    return
  end
  path = vim.fn.fnamemodify(vim.fn.expand(path), ":p")
  if #path > 1 then
    path = path:gsub("/+$", "")
  end
  begin("load")
  return M.request("model/load", { path = path, name = name }, function(result)
    M.state.models[result.model] = {
      model = result.model,
      architecture = present(result.architecture),
      path = result.path,
    }
    M.state.last_model = result.model
    M.state.current = result.model
    finish("load")
    notify(("loaded %s: %s %s, %s tensors, %s parameters, %s"):format(
      result.model,
      tostring(present(result.architecture) or "?"),
      tostring(present(result.format) or ""),
      tostring(present(result.tensorCount) or "?"),
      count(result.parameterCount),
      bytes(result.byteCount)
    ))
  end, function()
    finish("load")
  end)
end

local function quantize_report(result, method)
  local layers = result.layers or {}
  local with_output = false
  for _, layer in ipairs(layers) do
    if present(layer.outputRelativeError) then
      with_output = true
    end
  end
  local columns = {
    { "layer" },
    { "shape" },
    { "method" },
    { "bits", right = true },
    { "group", right = true },
    { "bits/weight", right = true },
    { "rel. error", right = true },
    { "max abs error", right = true },
    { "SQNR dB", right = true },
  }
  if with_output then
    table.insert(columns, { "output error", right = true })
  end
  local rows = {}
  for _, layer in ipairs(layers) do
    local row = {
      layer.name,
      shape(layer.shape),
      tostring(present(layer.method) or method),
      tostring(present(layer.bits) or "-"),
      tostring(present(layer.groupSize) or "-"),
      num(layer.bitsPerWeight, 3),
      num(layer.relativeError, 5),
      num(layer.maxAbsError, 5),
      num(layer.sqnrDb, 2),
    }
    if with_output then
      table.insert(row, num(layer.outputRelativeError, 5))
    end
    table.insert(rows, row)
  end
  local mean, max = mean_max(layers, "relativeError")
  local lines = {
    ("quantize %s -> %s (%s)"):format(tostring(present(result.source) or "?"), result.model, method),
    ("%d layers, %s bits/weight, %s held%s"):format(
      #layers,
      num(result.bitsPerWeight, 3),
      bytes(result.byteCount),
      seconds(result) and (", " .. seconds(result)) or ""
    ),
    ("relative error: mean %s, max %s"):format(num(mean, 5), num(max, 5)),
    "",
  }
  vim.list_extend(lines, report.table(columns, rows))
  return lines, mean
end

function M.quantize(method, bits, options)
  options = options or {}
  if not options.model and after("load", function()
    M.quantize(method, bits, options)
  end) then
    return
  end
  local model = options.model or M.state.last_model
  if not model then
    notify_error("no model loaded: run :LoquatLoad {path} first")
    return
  end
  if not method or method == "" then
    notify_error("usage: :LoquatQuantize {method} [bits] [key=value ...]")
    return
  end
  local params = vim.tbl_extend("force", {}, options, { model = model, method = method })
  if bits ~= nil then
    local n = tonumber(bits)
    if not n then
      notify_error(("bits must be a number, not %q"):format(tostring(bits)))
      return
    end
    params.bits = n
  end
  begin("quantize")
  return M.request("quantize", params, function(result)
    local source = present(result.source) or model
    M.state.models[result.model] = {
      model = result.model,
      source = source,
      architecture = architecture_of(source),
      quantized = true,
    }
    M.state.last_quantized = result.model
    M.state.current = result.model
    finish("quantize")
    local lines, mean = quantize_report(result, method)
    show("quantize", result.model, lines)
    notify(("quantized %s -> %s: %d layers, %s bits/weight, mean relative error %s"):format(
      source,
      result.model,
      #(result.layers or {}),
      num(result.bitsPerWeight, 3),
      num(mean, 5)
    ))
  end, function()
    finish("quantize")
  end)
end

function M.init_adapter(method, rank, options)
  options = options or {}
  if not options.model and (after("load", function()
    M.init_adapter(method, rank, options)
  end) or after("quantize", function()
    M.init_adapter(method, rank, options)
  end)) then
    return
  end
  local model = options.model or M.state.last_quantized
  if not model then
    notify_error("no quantized model: run :LoquatQuantize {method} {bits} first")
    return
  end
  local r = tonumber(rank)
  if not method or method == "" or not r then
    notify_error("usage: :LoquatInitAdapter {method} {rank} [key=value ...]")
    return
  end
  local params = vim.tbl_extend("force", {}, options, { model = model, method = method, rank = r })
  return M.request("initAdapter", params, function(result)
    M.state.last_adapter = result.adapter
    if result.modelChanged then
      M.state.models[result.model] = {
        model = result.model,
        source = present(result.base),
        architecture = architecture_of(model),
        quantized = true,
      }
    end
    local layers = result.layers or {}
    local with_output = false
    for _, layer in ipairs(layers) do
      if present(layer.outputErrorBefore) then
        with_output = true
      end
    end
    local columns = {
      { "layer" },
      { "method" },
      { "rank", right = true },
      { "alpha", right = true },
      { "weight error before", right = true },
      { "after", right = true },
      { "change", right = true },
    }
    if with_output then
      vim.list_extend(columns, { { "output error before", right = true }, { "after", right = true } })
    end
    local rows = {}
    for _, layer in ipairs(layers) do
      local before, after = present(layer.weightErrorBefore), present(layer.weightErrorAfter)
      local change = "-"
      if type(before) == "number" and type(after) == "number" and before ~= 0 then
        change = ("%+.1f%%"):format((after - before) / before * 100)
      end
      local row = {
        layer.name,
        tostring(present(layer.method) or method),
        tostring(present(layer.rank) or r),
        num(layer.alpha, 1),
        num(before, 5),
        num(after, 5),
        change,
      }
      if with_output then
        vim.list_extend(row, { num(layer.outputErrorBefore, 5), num(layer.outputErrorAfter, 5) })
      end
      table.insert(rows, row)
    end
    local summary = present(result.summary) or {}
    local lines = {
      ("initAdapter %s rank %s on %s -> adapter %s%s"):format(
        result.method or method,
        tostring(result.rank or r),
        model,
        result.adapter,
        result.modelChanged and (", new base " .. result.model) or ""
      ),
      ("%d layers, alpha %s%s%s%s"):format(
        #layers,
        num(result.alpha, 1),
        result.useRSLoRA and ", rsLoRA" or "",
        result.useDoRA and ", DoRA" or "",
        seconds(result) and (", " .. seconds(result)) or ""
      ),
      ("mean weight error %s -> %s"):format(num(summary.meanWeightErrorBefore, 5), num(summary.meanWeightErrorAfter, 5)),
      "",
    }
    vim.list_extend(lines, report.table(columns, rows))
    show("initAdapter", result.adapter, lines)
    notify(("adapter %s (%s rank %s) on %s: mean weight error %s -> %s"):format(
      result.adapter,
      result.method or method,
      tostring(result.rank or r),
      result.model,
      num(summary.meanWeightErrorBefore, 5),
      num(summary.meanWeightErrorAfter, 5)
    ))
  end)
end

local function buffer_text()
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  return table.concat(lines, "\n")
end

function M.evaluate(metric, options)
  options = options or {}
  local waiting_buffer = vim.api.nvim_get_current_buf()
  local function again()
    if vim.api.nvim_buf_is_valid(waiting_buffer) then
      vim.api.nvim_buf_call(waiting_buffer, function()
        M.evaluate(metric, options)
      end)
    end
  end
  if not options.model and (after("load", again) or after("quantize", again)) then
    return
  end
  local st = M.state
  local model = options.model or st.current
  if not model then
    notify_error("nothing to evaluate: run :LoquatLoad (and :LoquatQuantize) first")
    return
  end
  local architecture = architecture_of(model)
  local quantized = st.models[model] and st.models[model].quantized
  local text = buffer_text()
  local has_text = text:find("%S") ~= nil
  if not metric then
    if architecture == "llama" and has_text then
      metric = "perplexity"
    elseif quantized or options.adapter then
      metric = "weightError"
    elseif architecture == "llama" then
      notify_error("the current buffer is empty: perplexity needs text (or quantize first for weightError)")
      return
    else
      notify_error(("%s is not quantized: run :LoquatQuantize first (weightError is measured against the source)"):format(model))
      return
    end
  end
  local metrics = { metric }
  if metric == "perplexity" and quantized then
    table.insert(metrics, "weightError")
  end
  local params = vim.tbl_extend("force", {}, options, { model = model, metrics = metrics })
  params.ctx = nil
  if metric == "perplexity" or metric == "kld" or metric == "embeddingCosine" then
    if not has_text and not options.textFile then
      notify_error(metric .. " needs text: run :LoquatEvaluate in a buffer with text")
      return
    end
    if not options.textFile and not options.text then
      params.text = text
    end
    if metric ~= "embeddingCosine" then
      -- The window must fit in the text; about 4 characters per token, two windows at least.
      params.contextLength = tonumber(options.ctx)
        or options.contextLength
        or math.max(8, math.min(512, math.floor(#text / 10)))
    end
  end
  return M.request("evaluate", params, function(result)
    local lines = {
      ("evaluate %s%s%s"):format(
        result.model or model,
        present(result.adapter) and (" + adapter " .. result.adapter) or "",
        present(result.reference) and (" against " .. result.reference) or ""
      ),
    }
    local summary = {}
    local perplexity = present(result.perplexity)
    if perplexity then
      table.insert(lines, ("perplexity %s ± %s (%s tokens scored, %s chunks, context %s, %s)"):format(
        num(perplexity.value, 3),
        num(perplexity.standardError, 3),
        tostring(present(perplexity.scoredTokenCount) or "?"),
        tostring(present(perplexity.chunkCount) or "?"),
        tostring(present(result.contextLength) or "?"),
        tostring(present(perplexity.scoring) or "?")
      ))
      table.insert(summary, "perplexity " .. num(perplexity.value, 3))
    end
    for _, key in ipairs({ "weightError", "outputError" }) do
      local value = present(result[key])
      if value then
        table.insert(lines, ("%s: mean %s, max %s"):format(key, num(value.mean, 5), num(value.maximum, 5)))
        table.insert(summary, ("%s mean %s"):format(key, num(value.mean, 5)))
      end
    end
    local kld = present(result.kld)
    if kld then
      table.insert(lines, ("KLD: mean %s ± %s, max %s"):format(num(kld.mean, 5), num(kld.standardError, 5), num(kld.maximum, 5)))
    end
    local cosine = present(result.embeddingCosine)
    if cosine then
      table.insert(lines, ("embedding cosine: mean %s, min %s (%s sentences)"):format(
        num(cosine.mean, 5), num(cosine.minimum, 5), tostring(present(cosine.sentenceCount) or "?")))
      table.insert(summary, "embedding cosine " .. num(cosine.mean, 5))
    end
    if seconds(result) then
      table.insert(lines, seconds(result))
    end
    local layers = present(result.layers)
    if type(layers) == "table" and #layers > 0 then
      table.insert(lines, "")
      local columns = { { "layer" } }
      local keys = {}
      for _, key in ipairs({ "weightError", "outputError" }) do
        for _, layer in ipairs(layers) do
          if present(layer[key]) then
            table.insert(keys, key)
            table.insert(columns, { key == "weightError" and "weight error" or "output error", right = true })
            break
          end
        end
      end
      local rows = {}
      for _, layer in ipairs(layers) do
        local row = { layer.name }
        for _, key in ipairs(keys) do
          table.insert(row, num(layer[key], 5))
        end
        table.insert(rows, row)
      end
      vim.list_extend(lines, report.table(columns, rows))
    end
    show("evaluate", result.model or model, lines)
    notify(("evaluated %s: %s"):format(result.model or model, table.concat(summary, ", ")))
  end)
end

function M.info(model)
  local st = M.state
  if model and model ~= "" then
    return M.request("model/info", { model = model }, function(result)
      local rows = {}
      for _, tensor in ipairs(result.tensors or {}) do
        table.insert(rows, { tensor.name, shape(tensor.shape), tostring(present(tensor.dtype) or "?"), bytes(tensor.byteCount) })
      end
      local lines = {
        ("%s: %s %s, %s tensors, %s parameters, %s"):format(
          result.model,
          tostring(present(result.architecture) or "?"),
          tostring(present(result.format) or ""),
          tostring(present(result.tensorCount) or #rows),
          count(result.parameterCount),
          bytes(result.byteCount)
        ),
        tostring(present(result.path) or ""),
        "",
      }
      vim.list_extend(lines, report.table({
        { "tensor" },
        { "shape" },
        { "dtype" },
        { "size", right = true },
      }, rows))
      show("info", result.model, lines)
    end)
  end
  local models, adapters
  local function render()
    if not models or not adapters then
      return
    end
    local client = st.client
    local server = st.server or {}
    local info = server.serverInfo or {}
    local runtime = server.runtime or {}
    local lines = {
      ("%s %s, pid %s, OpenBLAS %s (%s)"):format(
        info.name or "loquatd",
        info.version or "?",
        client and tostring(client.pid) or "?",
        tostring(present(runtime.blasCore) or "?"),
        tostring(present(runtime.blasCoreSource) or "?")
      ),
      ("last loaded: %s, last quantized: %s, last adapter: %s"):format(
        st.last_model or "-",
        st.last_quantized or "-",
        st.last_adapter or "-"
      ),
      "",
      ("models (%d)"):format(#models),
    }
    local rows = {}
    for _, m in ipairs(models) do
      local quantization = present(m.quantization)
      table.insert(rows, {
        m.model,
        tostring(present(m.architecture) or "?"),
        tostring(present(m.format) or "?"),
        tostring(present(m.tensorCount) or "?"),
        count(m.parameterCount),
        bytes(m.byteCount),
        tostring(present(m.source) or "-"),
        quantization and ("%s %s bits/weight"):format(
          table.concat(quantization.methods or {}, "+"),
          num(quantization.bitsPerWeight, 3)
        ) or "-",
      })
    end
    vim.list_extend(lines, report.table({
      { "model" },
      { "architecture" },
      { "format" },
      { "tensors", right = true },
      { "parameters", right = true },
      { "size", right = true },
      { "source" },
      { "quantization" },
    }, rows))
    table.insert(lines, "")
    table.insert(lines, ("adapters (%d)"):format(#adapters))
    rows = {}
    for _, a in ipairs(adapters) do
      table.insert(rows, {
        a.adapter,
        tostring(present(a.method) or "?"),
        tostring(present(a.rank) or "?"),
        num(a.alpha, 1),
        tostring(present(a.model) or "?"),
        tostring(present(a.base) or "-"),
        tostring(present(a.layerCount) or "?"),
        count(a.parameterCount),
      })
    end
    vim.list_extend(lines, report.table({
      { "adapter" },
      { "method" },
      { "rank", right = true },
      { "alpha", right = true },
      { "model" },
      { "base" },
      { "layers", right = true },
      { "parameters", right = true },
    }, rows))
    show("info", "resident", lines)
  end
  M.request("model/list", nil, function(result)
    models = result.models or {}
    render()
  end)
  M.request("adapter/list", nil, function(result)
    adapters = result.adapters or {}
    render()
  end)
end

--- For VimLeavePre: ask the daemon to exit without waiting for it.
function M.shutdown_now()
  local client = M.state.client
  if client and not client.exited then
    M.state.quitting = true
    client:close_now()
  end
end

-- --- completion -------------------------------------------------------------------------------

local function capability(key, fallback)
  local server = M.state.server
  local list = server and server.capabilities and present(server.capabilities[key])
  return type(list) == "table" and list or fallback
end

local function complete_from(list, arglead)
  local out = {}
  for _, item in ipairs(list) do
    if item:sub(1, #arglead) == arglead then
      table.insert(out, item)
    end
  end
  return out
end

function M.complete_quantizers(arglead, cmdline)
  if select(2, cmdline:gsub("%s+", "")) > 1 then
    return {}
  end
  return complete_from(capability("quantizers", { "nf4", "fp4", "nf", "int", "fp8", "hqq", "gptq" }), arglead)
end

function M.complete_init_methods(arglead, cmdline)
  if select(2, cmdline:gsub("%s+", "")) > 1 then
    return {}
  end
  return complete_from(capability("initMethods", {
    "lora", "gaussian", "pissa", "olora", "loftq", "lqer", "qera-approx", "cloq", "quailora",
    "lq-lora", "qa-lora", "auto",
  }), arglead)
end

function M.complete_metrics(arglead)
  return complete_from({ "weightError", "perplexity", "outputError", "embeddingCosine" }, arglead)
end

function M.complete_models(arglead)
  return complete_from(vim.tbl_keys(M.state.models), arglead)
end

return M
