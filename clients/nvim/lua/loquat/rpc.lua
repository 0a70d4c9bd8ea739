-- JSON-RPC 2.0 client for loquatd over stdio with LSP Content-Length framing.
--
-- Everything is asynchronous: the daemon runs as a libuv child process (vim.loop), its stdout
-- is parsed as it arrives, and responses are delivered to callbacks on the main loop
-- (vim.schedule). Nothing here ever waits. Works with Neovim 0.7+.

local uv = vim.uv or vim.loop

local M = {}

local Client = {}
Client.__index = Client

local function json_encode(value)
  return vim.json.encode(value)
end

local function json_decode(text)
  return vim.json.decode(text)
end

-- A JSON null decodes to vim.NIL: treat it as absent.
local function present(value)
  if value == nil or value == vim.NIL then
    return nil
  end
  return value
end
M.present = present

--- Is `cmd` something we can start? Returns the command or nil and a reason.
function M.resolve(cmd)
  if cmd == nil or cmd == "" then
    return nil, "no loquatd command configured"
  end
  if vim.fn.executable(cmd) ~= 1 then
    if cmd:find("/") and vim.fn.filereadable(cmd) == 0 and vim.fn.isdirectory(cmd) == 0 then
      return nil, ("loquatd not found: %s does not exist"):format(cmd)
    elseif cmd:find("/") then
      return nil, ("loquatd at %s is not an executable file"):format(cmd)
    end
    return nil, ("loquatd not found: %s is not on PATH"):format(cmd)
  end
  return cmd
end

--- Starts the daemon. opts:
---   cmd, args          the executable and its arguments
---   on_notification    function(method, params) for notifications other than matched progress
---   on_exit            function(code, signal, stderr_tail) when the process has exited
--- Returns the client, or nil and an error message (nothing is left running then).
function M.start(opts)
  local cmd, why = M.resolve(opts.cmd)
  if not cmd then
    return nil, why
  end
  local self = setmetatable({
    cmd = cmd,
    next_id = 1,
    pending = {}, -- id -> {method, callback, on_progress, token, started}
    by_token = {}, -- progress token -> id
    buffer = "",
    stderr_lines = {},
    stderr_partial = "",
    exited = false,
    on_notification = opts.on_notification,
    on_exit = opts.on_exit,
  }, Client)

  self.stdin = uv.new_pipe(false)
  self.stdout = uv.new_pipe(false)
  self.stderr = uv.new_pipe(false)
  local handle, pid_or_err = uv.spawn(cmd, {
    args = opts.args or {},
    stdio = { self.stdin, self.stdout, self.stderr },
  }, function(code, signal)
    vim.schedule(function()
      self:_exited(code, signal)
    end)
  end)
  if not handle then
    self.stdin:close()
    self.stdout:close()
    self.stderr:close()
    return nil, ("cannot start %s: %s"):format(cmd, tostring(pid_or_err))
  end
  self.handle = handle
  self.pid = pid_or_err

  self.stdout:read_start(function(err, data)
    if err or not data then
      return -- end of output: the exit callback follows
    end
    self:_feed(data)
  end)
  self.stderr:read_start(function(_, data)
    if not data then
      return
    end
    local text = self.stderr_partial .. data
    local lines = vim.split(text, "\n", { plain = true })
    self.stderr_partial = table.remove(lines)
    for _, line in ipairs(lines) do
      table.insert(self.stderr_lines, line)
      if #self.stderr_lines > 20 then
        table.remove(self.stderr_lines, 1)
      end
    end
  end)
  return self
end

-- Called in libuv's fast context: only string work here, the rest is scheduled.
function Client:_feed(data)
  self.buffer = self.buffer .. data
  local bodies = {}
  while true do
    local header_end = self.buffer:find("\r\n\r\n", 1, true)
    if not header_end then
      break
    end
    local header = self.buffer:sub(1, header_end - 1)
    local length = tonumber(header:lower():match("content%-length:%s*(%d+)"))
    if not length then
      -- Not a frame we understand: drop the header and go on (the daemon never does this).
      self.buffer = self.buffer:sub(header_end + 4)
    else
      local body_start = header_end + 4
      if #self.buffer < body_start + length - 1 then
        break
      end
      table.insert(bodies, self.buffer:sub(body_start, body_start + length - 1))
      self.buffer = self.buffer:sub(body_start + length)
    end
  end
  if #bodies > 0 then
    vim.schedule(function()
      for _, body in ipairs(bodies) do
        self:_dispatch(body)
      end
    end)
  end
end

function Client:_dispatch(body)
  local ok, message = pcall(json_decode, body)
  if not ok or type(message) ~= "table" then
    return
  end
  local id = present(message.id)
  if id == nil and message.error ~= nil and message.method == nil then
    -- An error the daemon could not tie to a request (a frame it could not parse).
    if self.on_notification then
      self.on_notification("error", message.error)
    end
    return
  end
  if id ~= nil and (message.result ~= nil or message.error ~= nil) then
    local request = self.pending[id]
    if not request then
      return -- the answer to a request we gave up on
    end
    self.pending[id] = nil
    if request.token then
      self.by_token[request.token] = nil
    end
    local err = present(message.error)
    if err then
      request.callback(err, nil)
    else
      request.callback(nil, present(message.result))
    end
    return
  end
  if message.method == "$/progress" and type(message.params) == "table" then
    local id_for_token = self.by_token[message.params.token]
    local request = id_for_token and self.pending[id_for_token]
    if request and request.on_progress then
      request.on_progress(message.params.value or {}, request)
      return
    end
  end
  if self.on_notification and message.method then
    self.on_notification(message.method, present(message.params))
  end
end

function Client:_write(message)
  if self.exited or self.stdin:is_closing() then
    return false
  end
  local body = json_encode(message)
  self.stdin:write(("Content-Length: %d\r\n\r\n%s"):format(#body, body))
  return true
end

function Client:_exited(code, signal)
  if self.exited then
    return
  end
  self.exited = true
  local tail = table.concat(self.stderr_lines, "\n")
  for _, pipe in ipairs({ self.stdin, self.stdout, self.stderr }) do
    if not pipe:is_closing() then
      pipe:close()
    end
  end
  if not self.handle:is_closing() then
    self.handle:close()
  end
  local pending = self.pending
  self.pending, self.by_token = {}, {}
  local ids = vim.tbl_keys(pending)
  table.sort(ids)
  for _, id in ipairs(ids) do
    local request = pending[id]
    request.callback({
      code = "exited",
      message = ("loquatd exited (code %s%s) while %s was pending"):format(
        tostring(code),
        (signal and signal ~= 0) and (", signal " .. signal) or "",
        request.method
      ),
      data = { stderr = tail },
    }, nil)
  end
  if self.on_exit then
    self.on_exit(code, signal, tail, #ids)
  end
end

--- Sends a request; callback(err, result) runs on the main loop. opts.on_progress(value) asks
--- for work-done progress (a workDoneToken is added to object params). Returns the id.
function Client:request(method, params, callback, opts)
  opts = opts or {}
  local id = self.next_id
  self.next_id = id + 1
  if params == nil or (type(params) == "table" and next(params) == nil) then
    params = vim.empty_dict()
  end
  local token
  if opts.on_progress and type(params) == "table" and not vim.tbl_islist(params) then
    token = params.workDoneToken or ("nvim-" .. id)
    params.workDoneToken = token
    self.by_token[token] = id
  end
  self.pending[id] = {
    id = id,
    method = method,
    callback = callback,
    on_progress = opts.on_progress,
    token = token,
    started = uv.hrtime(),
  }
  if not self:_write({ jsonrpc = "2.0", id = id, method = method, params = params }) then
    self.pending[id] = nil
    vim.schedule(function()
      callback({ code = "exited", message = "loquatd is not running" }, nil)
    end)
  end
  return id
end

function Client:notify(method, params)
  if params == nil or (type(params) == "table" and next(params) == nil) then
    params = vim.empty_dict()
  end
  return self:_write({ jsonrpc = "2.0", method = method, params = params })
end

--- $/cancelRequest for one id, or for every pending request.
function Client:cancel(id)
  local ids = id and { id } or vim.tbl_keys(self.pending)
  for _, each in ipairs(ids) do
    self:notify("$/cancelRequest", { id = each })
  end
  return #ids
end

function Client:pending_count()
  return vim.tbl_count(self.pending)
end

--- shutdown + exit; kills the process if it has not exited after `timeout_ms` (default 5000).
function Client:stop(timeout_ms, done)
  if self.exited then
    if done then
      done()
    end
    return
  end
  local finished = false
  local function finish()
    if finished then
      return
    end
    finished = true
    self:notify("exit")
    if not self.stdin:is_closing() then
      self.stdin:close()
    end
    local timer = uv.new_timer()
    timer:start(timeout_ms or 5000, 0, function()
      timer:close()
      if not self.exited and not self.handle:is_closing() then
        self.handle:kill("sigkill")
      end
    end)
    if done then
      done()
    end
  end
  self:request("shutdown", nil, finish)
  -- Do not wait for a long request to end before giving up on a clean shutdown.
  vim.defer_fn(finish, timeout_ms or 5000)
end

--- For VimLeavePre: shutdown + exit written at once, stdin closed; the daemon exits by itself.
function Client:close_now()
  if self.exited then
    return
  end
  self:_write({ jsonrpc = "2.0", id = self.next_id, method = "shutdown", params = vim.empty_dict() })
  self.next_id = self.next_id + 1
  self:notify("exit")
  if not self.stdin:is_closing() then
    self.stdin:close()
  end
end

return M
