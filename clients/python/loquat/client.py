"""A JSON-RPC 2.0 client for loquatd over a child process's stdin/stdout (newline-delimited)."""

import errno
import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
import weakref

__all__ = ["Client", "LoquatError", "DaemonExited", "DaemonNotFound", "find_daemon"]

CLIENT_NAME = "loquat-python"


class LoquatError(Exception):
    """An error response from loquatd: ``code``, ``message`` and ``data`` as sent."""

    def __init__(self, code, message, data=None):
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self):
        text = "%s (code %s)" % (self.message, self.code)
        if isinstance(self.data, dict) and self.data.get("reason") and self.data["reason"] not in self.message:
            text += ": %s" % self.data["reason"]
        return text


class DaemonExited(LoquatError):
    """loquatd went away before answering. ``code`` is None; ``returncode`` is the exit status
    (negative: killed by that signal) when known."""

    def __init__(self, message, returncode=None):
        super().__init__(None, message, {"returncode": returncode})
        self.returncode = returncode

    def __str__(self):
        return self.message


class DaemonNotFound(LoquatError, FileNotFoundError):
    """No loquatd to start. A ``LoquatError`` (``code`` None) and a ``FileNotFoundError``;
    ``tried`` (also ``data["tried"]``) lists each place looked at and what was wrong with it."""

    def __init__(self, message, tried):
        LoquatError.__init__(self, None, message, {"tried": list(tried)})
        self.errno = errno.ENOENT
        self.strerror = message
        self.filename = tried[0][0] if tried else None
        self.tried = list(tried)

    def __str__(self):
        return self.message


DAEMON_ENVIRONMENT = ("LOQUAT_DAEMON", "LOQUATD")


def find_daemon(path=None):
    """The daemon to run: ``path``, else ``$LOQUAT_DAEMON``, else ``$LOQUATD``, else ``loquatd``
    on PATH. The first of these that is given decides: one that is set but is not an executable
    file raises ``DaemonNotFound`` (naming it) instead of falling through to the next. A name
    without a slash is looked up on PATH."""
    if path is not None:
        where, value = "argument", os.fspath(path)
    else:
        where, value = next((("$" + name, os.environ[name]) for name in DAEMON_ENVIRONMENT if os.environ.get(name)),
                            ("PATH", "loquatd"))
    if os.sep not in value and not (os.altsep and os.altsep in value):
        found = shutil.which(value)
        if found:
            return found
        problem = "not on PATH"
    elif os.path.isdir(value):
        problem = "a directory"
    elif not os.path.exists(value):
        problem = "no such file"
    elif not os.access(value, os.X_OK):
        problem = "not executable"
    else:
        return value
    tried = [(value, "%s: %s" % (where, problem))]
    if where == "PATH":
        tried += [("$" + name, "not set") for name in DAEMON_ENVIRONMENT]
    raise DaemonNotFound("loquatd not found: tried %s. Pass the daemon's path, set LOQUAT_DAEMON (or LOQUATD) "
                         "or put loquatd on PATH; build it with `swift build -c release --product loquatd`"
                         % "; ".join("%s (%s)" % pair for pair in tried), tried)


def _model_handle(model):
    """Accepts a handle or a result dict that carries one (from load/info)."""
    return model["model"] if isinstance(model, dict) else model


def _stop_process(process, timeout):
    """Finalizer: close stdin (the daemon exits on end of input) and kill if it lingers."""
    try:
        process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Client:
    """Starts loquatd and talks to it; usable from several threads at once.

    ``with Client() as c: c.load(path, name="base")`` — leaving the block sends shutdown and
    exit and waits for the daemon (killing it after ``stop_timeout`` seconds). The daemon also
    exits when this process does: it watches our process id and its stdin.

    ``on_progress`` (here, or per call) receives each ``$/progress`` value dict
    (``{"kind": "begin"|"report"|"end", ...}``); when one is given, calls carry a
    ``workDoneToken`` automatically. Callbacks run in the calling thread; if one raises, the
    request is cancelled and the exception propagates.
    """

    def __init__(self, daemon=None, *, args=(), env=None, stderr=None, on_progress=None,
                 initialize=True, stop_timeout=10.0):
        self.on_progress = on_progress
        self.stop_timeout = stop_timeout
        self.server_info = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards _waiting and _closed
        self._write_lock = threading.Lock()  # one message at a time on stdin
        self._waiting = {}  # request id or progress token -> queue of that call
        self._closed = None  # why the connection ended, once it has
        self._process = subprocess.Popen(
            [find_daemon(daemon), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, env=env)
        self._finalizer = weakref.finalize(self, _stop_process, self._process, stop_timeout)
        self._reader = threading.Thread(target=self._read, name="loquat-reader", daemon=True)
        self._reader.start()
        if initialize:
            try:
                self.initialize()
            except BaseException:
                self._finalizer()
                raise

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def pid(self):
        return self._process.pid

    @property
    def returncode(self):
        """The daemon's exit status, or None while it runs."""
        return self._process.poll()

    def close(self):
        """shutdown + exit, then wait for the daemon (kill it on timeout). Returns its exit status."""
        if self._process.poll() is None and self._closed is None:
            try:
                self.request("shutdown", timeout=self.stop_timeout)
                self.notify("exit")
            except (LoquatError, TimeoutError, OSError):
                pass
        self._finalizer()
        self._reader.join(self.stop_timeout)
        if not self._reader.is_alive():
            self._process.stdout.close()
        return self._process.returncode

    # -- requests --------------------------------------------------------------------------

    def call(self, method, *, on_progress=None, timeout=None, **params):
        """Sends ``method`` with named params (None values are left out); returns the result."""
        params = {key: value for key, value in params.items() if value is not None}
        return self.request(method, params, on_progress=on_progress, timeout=timeout)

    def request(self, method, params=None, *, on_progress=None, timeout=None):
        """Sends one request with ``params`` (a dict, list or None) and waits for its response.

        Raises LoquatError for an error response, DaemonExited if the daemon goes away first,
        TimeoutError (after sending ``$/cancelRequest``) when ``timeout`` seconds pass without
        a response or a progress notification for this call.
        """
        on_progress = on_progress or self.on_progress
        with self._lock:
            request_id = next(self._ids)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        token = None
        if on_progress is not None and method != "shutdown" and isinstance(params, (dict, type(None))):
            params = dict(params or {})
            token = params.setdefault("workDoneToken", "%s-%d" % (CLIENT_NAME, request_id))
        if params is not None:
            message["params"] = params
        inbox = queue.SimpleQueue()
        with self._lock:
            self._check_open(method)
            self._waiting[request_id] = inbox
            if token is not None:
                self._waiting[("progress", _token_key(token))] = inbox
        try:
            self._send(message, method)
            while True:
                try:
                    kind, payload = inbox.get(timeout=timeout)
                except queue.Empty:
                    raise TimeoutError("%s: nothing heard for %s s; cancelled" % (method, timeout)) from None
                if kind == "progress":
                    on_progress(payload)
                elif kind == "closed":
                    raise self._exited_error(method)
                elif "error" in payload:
                    error = payload["error"] or {}
                    raise LoquatError(error.get("code"), error.get("message", ""), error.get("data"))
                else:
                    return payload.get("result")
        except LoquatError:
            raise
        except BaseException:  # a timeout, a failing callback, KeyboardInterrupt: stop the work
            self._cancel(request_id)
            raise
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
                if token is not None:
                    self._waiting.pop(("progress", _token_key(token)), None)

    def notify(self, method, params=None):
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        with self._lock:
            self._check_open(method)
        self._send(message, method)

    def cancel(self, request_id):
        """Sends ``$/cancelRequest``; the request then ends with error -32800 (or its result)."""
        self.notify("$/cancelRequest", {"id": request_id})

    # -- convenience -----------------------------------------------------------------------

    def initialize(self, **params):
        """Runs ``initialize`` once (done by the constructor); later calls return the first result."""
        if self.server_info is None:
            params = {"processId": os.getpid(), "clientInfo": {"name": CLIENT_NAME}, **params}
            self.server_info = self.request("initialize", params)
        return self.server_info

    def load(self, path, name=None, **params):
        return self.call("model/load", path=os.fspath(path), name=name, **params)

    def info(self, model, **params):
        return self.call("model/info", model=_model_handle(model), **params)

    def list_models(self):
        return self.call("model/list")["models"]

    def unload(self, model):
        return self.call("model/unload", model=_model_handle(model))

    def save(self, model, path, **params):
        """``format`` ("safetensors"|"gguf"), ``dtype``, ``overwrite``, ``on_progress`` as keywords."""
        return self.call("model/save", model=_model_handle(model), path=os.fspath(path), **params)

    def quantize(self, model, method, **params):
        """``quantize``: ``bits``, ``groupSize``, ``targets``, ``rotate``, ``outliers``, ``plan``, ``name``, …
        as keywords (``method`` is the quantization method, hence not ``call``'s first argument)."""
        on_progress, timeout = params.pop("on_progress", None), params.pop("timeout", None)
        body = {"model": _model_handle(model), "method": method}
        body.update({key: value for key, value in params.items() if value is not None})
        return self.request("quantize", body, on_progress=on_progress, timeout=timeout)

    def quantize_plan(self, model, budget_bits_per_weight, candidates, **params):
        """``quantize/plan``: the per-layer formats that minimise the summed error under the budget."""
        on_progress, timeout = params.pop("on_progress", None), params.pop("timeout", None)
        body = {"model": _model_handle(model), "budgetBitsPerWeight": budget_bits_per_weight, "candidates": candidates}
        body.update({key: value for key, value in params.items() if value is not None})
        return self.request("quantize/plan", body, on_progress=on_progress, timeout=timeout)

    def evaluate(self, model, metrics=("perplexity",), **params):
        """``evaluate``: ``text`` or ``text_file``, ``reference``, ``context_length``, ``max_chunks``,
        ``scoring`` ("all"|"second-half"), ``on_progress`` (running perplexity per chunk)."""
        on_progress, timeout = params.pop("on_progress", None), params.pop("timeout", None)
        renamed = {"text_file": "textFile", "context_length": "contextLength", "max_chunks": "maxChunks"}
        body = {"model": _model_handle(model), "metrics": list(metrics)}
        body.update({renamed.get(key, key): value for key, value in params.items() if value is not None})
        if "reference" in body:
            body["reference"] = _model_handle(body["reference"])
        return self.request("evaluate", body, on_progress=on_progress, timeout=timeout)

    def calibrate(self, model, **params):
        """``calibrate``: ``text`` or ``text_file``, ``context_length``, ``sample_count``, ``targets``,
        ``name``; returns the calibration handle's summary (per-layer Gram matrices stay resident)."""
        return self._request_with("calibrate", {"model": _model_handle(model)}, params)

    def init_adapter(self, model, method, rank, **params):
        """``initAdapter``: ``method`` is an initialisation (lora, gaussian, pissa, olora, loftq, lqer,
        qera-approx, cloq, quailora, lq-lora, qa-lora, auto); keywords in snake_case (``alpha``,
        ``use_rslora``, ``use_dora``, ``iterations``, ``calibration``, ``targets``, ``rank_pattern``,
        ``alpha_pattern``, ``seed``, ``svd``, ``damping``, ``candidates``, ``name``, ``model_name``)."""
        return self._request_with("initAdapter", {"model": _model_handle(model), "method": method, "rank": rank}, params)

    def save_adapter(self, adapter, path, **params):
        """``adapter/save`` as a PEFT directory: ``overwrite``, ``base_model_name_or_path``."""
        return self._request_with("adapter/save", {"adapter": _adapter_handle(adapter), "path": os.fspath(path)}, params)

    def load_adapter(self, path, **params):
        """``adapter/load`` of a PEFT directory: ``model`` (checks shapes against it), ``name``."""
        if "model" in params:
            params["model"] = _model_handle(params["model"])
        return self._request_with("adapter/load", {"path": os.fspath(path)}, params)

    def list_adapters(self):
        return self.call("adapter/list")["adapters"]

    def unload_adapter(self, adapter):
        return self.call("adapter/unload", adapter=_adapter_handle(adapter))

    def merge(self, adapters, model=None, **params):
        """``merge``: ``adapters`` is a list of handles or ``{"adapter", "weight"}`` dicts (or
        ``(handle, weight)`` pairs); ``into`` ("full"|"quantized") needs ``model``; ``combination``,
        ``density``, ``rank``, ``seed``, ``strategy``, ``name`` as keywords."""
        entries = []
        for entry in adapters:
            if isinstance(entry, tuple):
                entries.append({"adapter": _adapter_handle(entry[0]), "weight": entry[1]})
            elif isinstance(entry, dict) and "weight" in entry:
                entries.append({"adapter": entry["adapter"], "weight": entry["weight"]})
            else:
                entries.append({"adapter": _adapter_handle(entry)})
        body = {"adapters": entries}
        if model is not None:
            body["model"] = _model_handle(model)
        return self._request_with("merge", body, params)

    def unmerge(self, model, **params):
        """``model/unmerge`` of a model made by ``merge(into="full")``."""
        return self._request_with("model/unmerge", {"model": _model_handle(model)}, params)

    def extract_adapter(self, base, finetuned, **params):
        """``extractAdapter``: ``rank`` | ``energy`` | ``relative_error`` | ``parameter_budget``,
        ``max_rank``, ``targets``, ``relative_to``, ``quantized``, ``svd``, ``name``."""
        return self._request_with("extractAdapter", {"base": _model_handle(base), "finetuned": _model_handle(finetuned)}, params)

    def _request_with(self, method, body, params):
        """``body`` plus the snake_case keywords as camelCase params (None dropped)."""
        on_progress, timeout = params.pop("on_progress", None), params.pop("timeout", None)
        special = {"use_rslora": "useRSLoRA", "use_dora": "useDoRA"}
        for key, value in params.items():
            if value is not None:
                body[special.get(key) or _camel(key)] = value
        return self.request(method, body, on_progress=on_progress, timeout=timeout)

    # -- plumbing --------------------------------------------------------------------------

    def _check_open(self, method):
        if self._closed is not None:
            raise self._exited_error(method)

    def _exited_error(self, method):
        returncode = self._process.poll()
        return DaemonExited("loquatd %s (%s) before answering %s"
                            % (self._closed or "closed its output", _describe_status(returncode), method),
                            returncode)

    def _send(self, message, method):
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        try:
            with self._write_lock:
                self._process.stdin.write(data)
                self._process.stdin.flush()
        except (OSError, ValueError):  # broken pipe, or stdin already closed
            self._reader.join(1.0)
            raise self._exited_error(method) from None

    def _cancel(self, request_id):
        try:
            self.cancel(request_id)
        except LoquatError:
            pass

    def _read(self):
        try:
            for line in self._process.stdout:
                if line.strip():
                    self._dispatch(json.loads(line))
            reason = "closed its output"
        except (OSError, ValueError) as error:
            reason = "sent something unreadable (%s)" % error
        try:
            self._process.wait(1.0)  # collect the exit status for the error message
        except subprocess.TimeoutExpired:
            pass
        with self._lock:
            self._closed = reason
            inboxes = {id(inbox): inbox for inbox in self._waiting.values()}
        for inbox in inboxes.values():
            inbox.put(("closed", None))

    def _dispatch(self, message):
        if isinstance(message, list):
            for item in message:
                self._dispatch(item)
            return
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if method is None:  # a response
            with self._lock:
                inbox = self._waiting.get(message.get("id"))
            if inbox is not None:
                inbox.put(("response", message))
        elif method == "$/progress":
            params = message.get("params") or {}
            with self._lock:
                inbox = self._waiting.get(("progress", _token_key(params.get("token"))))
            if inbox is not None:
                inbox.put(("progress", params.get("value")))
        elif "id" in message:  # a request from the server: we offer none
            reply = {"jsonrpc": "2.0", "id": message["id"],
                     "error": {"code": -32601, "message": "client does not handle %s" % method}}
            try:
                self._send(reply, method)
            except LoquatError:
                pass


def _token_key(token):
    """Progress tokens are int or string; keep 1 and "1" apart, as the protocol does."""
    return (type(token).__name__, token)


def _describe_status(returncode):
    if returncode is None:
        return "still running"
    if returncode < 0:
        return "killed by signal %d" % -returncode
    return "exit status %d" % returncode


def _camel(name):
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _adapter_handle(adapter):
    """A handle string, or a result dict that has an ``adapter`` key."""
    return adapter["adapter"] if isinstance(adapter, dict) else adapter
