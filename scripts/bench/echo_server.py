#!/usr/bin/env python3
"""The round-trip peer: a minimal JSON-RPC 2.0 server on stdio, newline-delimited, json stdlib.

Answers every request with `{"models": []}` (what loquatd's `model/list` says when nothing is
loaded) and notifications with nothing. This is the floor a stdio JSON-RPC server can reach in
Python: read a line, parse it, build the reply, serialize it, write it, flush.
"""
import json
import sys


def main():
    read = sys.stdin.buffer.readline
    out = sys.stdout.buffer
    while True:
        line = read()
        if not line:
            return
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as error:
            reply = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": f"Parse error: {error}"}}
        else:
            if "id" not in request:
                continue
            reply = {"jsonrpc": "2.0", "id": request["id"], "result": {"models": []}}
        out.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
