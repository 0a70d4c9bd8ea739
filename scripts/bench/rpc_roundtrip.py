#!/usr/bin/env python3
"""Round-trip latency of one small JSON-RPC request to stdio servers, one request at a time.

Usage: python3 scripts/bench/rpc_roundtrip.py [--count 2000] [--warmup 200] [--method model/list]
           --server NAME[:content-length]=COMMAND [--server …]

Each COMMAND (split like a shell line) is started with pipes for stdin/stdout (stderr passes
through) and sent `initialize` first. After `--warmup` untimed requests each, the `--count`
timed requests go round-robin over the servers (request i to A, then to B, …), so that load
from other processes on the machine falls on every server alike. Each request is written with
one write(2) and its clock stops when its whole reply has been read; only one request is ever
in flight. Replies are checked (id, no error) after the timed loop. One JSON line per server on
stdout: p50/p90/p99/max/mean in microseconds, and the `initialize` result's `runtime` when
there is one. The driver's own cost is in every server's numbers alike.
"""
import argparse
import json
import shlex
import sys
import time

from stdio_rpc import Server


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * (len(sorted_values) - 1)))))
    return sorted_values[index]


def parse_server(text):
    name, _, command = text.partition("=")
    name, _, framing = name.partition(":")
    if not command or framing not in ("", "newline", "content-length"):
        raise argparse.ArgumentTypeError(f"expected NAME[:content-length]=COMMAND, got {text!r}")
    return name, framing or "newline", shlex.split(command)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--method", default="model/list")
    parser.add_argument("--server", type=parse_server, action="append", required=True)
    args = parser.parse_args()

    servers = []
    for name, framing, command in args.server:
        server = Server(command, framing)
        result = server.call("initialize", {})
        runtime = result.get("runtime") if isinstance(result, dict) else None
        for _ in range(args.warmup):
            server.call(args.method, {})
        # Prebuilt frames: the timed loop is write, read, stop the clock.
        frames = [server.request_frame(args.method, {}) for _ in range(args.count)]
        servers.append({"name": name, "framing": framing, "server": server, "runtime": runtime,
                        "frames": frames, "samples": [], "replies": []})

    clock = time.perf_counter_ns
    for index in range(args.count):
        for entry in servers:
            server = entry["server"]
            frame = entry["frames"][index][1]
            start = clock()
            server.send(frame)
            reply = server.pipe.read()
            entry["samples"].append(clock() - start)
            entry["replies"].append(reply)

    for entry in servers:
        for (request_id, _), raw in zip(entry["frames"], entry["replies"]):
            reply = json.loads(raw)
            if reply.get("id") != request_id or "error" in reply:
                sys.exit(f"rpc-roundtrip: {entry['name']}: unexpected reply to request {request_id}: {raw[:200]!r}")
        entry["server"].close()
        microseconds = sorted(value / 1000 for value in entry["samples"])
        line = {"benchmark": "rpc-roundtrip", "implementation": entry["name"], "method": args.method,
                "framing": entry["framing"], "count": len(microseconds),
                "p50_us": round(percentile(microseconds, 0.50), 1), "p90_us": round(percentile(microseconds, 0.90), 1),
                "p99_us": round(percentile(microseconds, 0.99), 1), "max_us": round(microseconds[-1], 1),
                "mean_us": round(sum(microseconds) / len(microseconds), 1)}
        if entry["runtime"] is not None:
            line["runtime"] = entry["runtime"]
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
