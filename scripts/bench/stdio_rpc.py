"""A minimal JSON-RPC 2.0 client over a child process's stdin/stdout, for the benchmarks.

Deliberately tiny and synchronous (no reader thread), so that its own cost per request is one
os.write, one or two os.read and a json.loads: the same for every server it drives.
"""
import json
import os
import subprocess


class Pipe:
    """Frames requests and reads replies, newline-delimited or LSP Content-Length."""

    def __init__(self, descriptor, framing="newline"):
        self.descriptor = descriptor
        self.framing = framing
        self.buffer = b""

    def _fill(self):
        chunk = os.read(self.descriptor, 65536)
        if not chunk:
            raise EOFError("the server closed its output")
        self.buffer += chunk

    def frame(self, body):
        if self.framing == "newline":
            return body + b"\n"
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    def read(self):
        """The next reply body (bytes)."""
        if self.framing == "newline":
            while True:
                end = self.buffer.find(b"\n")
                if end >= 0:
                    line, self.buffer = self.buffer[:end], self.buffer[end + 1:]
                    return line
                self._fill()
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        length = None
        for header in self.buffer[:end].split(b"\r\n"):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("reply frame without Content-Length")
        self.buffer = self.buffer[end + 4:]
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body


class RPCError(Exception):
    pass


class Server:
    """A server child process: `call(method, params)` returns the result or raises RPCError."""

    def __init__(self, command, framing="newline", env=None):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env)
        self.pipe = Pipe(self.process.stdout.fileno(), framing)
        self.next_id = 0

    @property
    def pid(self):
        return self.process.pid

    def request_frame(self, method, params):
        self.next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params},
                          separators=(",", ":")).encode()
        return self.next_id, self.pipe.frame(body)

    def send(self, frame):
        view = memoryview(frame)
        while view:
            written = os.write(self.process.stdin.fileno(), view)
            view = view[written:]

    def call(self, method, params=None):
        request_id, frame = self.request_frame(method, params or {})
        self.send(frame)
        reply = json.loads(self.pipe.read())
        if reply.get("id") != request_id:
            raise RPCError(f"{method}: reply for id {reply.get('id')}, expected {request_id}")
        if "error" in reply:
            raise RPCError(f"{method}: {reply['error']}")
        return reply.get("result")

    def close(self, timeout=60):
        """End of input: the daemon finishes queued work and exits 0."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def memory_status(pid="self"):
    """VmRSS and its parts RssAnon (heap, copies) and RssFile (mapped file pages touched) of a
    process, from /proc/<pid>/status, in bytes."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile"):
                fields[name] = int(value.split()[0]) * 1024
    if "VmRSS" not in fields:
        raise RuntimeError(f"no VmRSS for {pid}")
    return fields


def resident_bytes(pid="self"):
    """VmRSS of a process from /proc/<pid>/status, in bytes."""
    return memory_status(pid)["VmRSS"]
