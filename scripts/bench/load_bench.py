#!/usr/bin/env python3
"""`model/load` through loquatd over a pipe: time per load and the daemon's resident growth.

Usage: python3 scripts/bench/load_bench.py --daemon LOQUATD PATH [PATH …] [--repeats 10]
       python3 scripts/bench/load_bench.py --daemon LOQUATD --convert GGUF --to DIR

With PATHs: for each, a fresh daemon is started and sent `initialize` and `model/list` (code
paths warm, nothing loaded); its VmRSS is read from /proc/<pid>/status; then `model/load` is sent
`--repeats` times with distinct names, every model staying resident, and VmRSS is read after
each. The clock runs in this client from writing the request to reading the whole reply, so it
includes the JSON-RPC round trip (tens of microseconds). Finally every model is unloaded and
VmRSS read once more. Growth is also split into RssAnon (heap: copies, bookkeeping) and RssFile
(pages of mapped files that were touched). One JSON line per PATH on stdout.

With --convert: one daemon loads GGUF and writes it with `model/save {format: "safetensors"}`
as a Hugging Face directory DIR (F32 for GGUF block types), unless DIR/model.safetensors
already exists. One JSON line with the time it took.
"""
import argparse
import json
import os
import statistics
import time

from stdio_rpc import Server, memory_status


def growth(before, after, field="VmRSS"):
    return after.get(field, 0) - before.get(field, 0)


def load_repeatedly(daemon, path, repeats):
    with Server([daemon]) as server:
        runtime = server.call("initialize", {}).get("runtime", {})
        server.call("model/list")
        before = memory_status(server.pid)
        seconds, resident, summary = [], [], None
        for index in range(repeats):
            start = time.perf_counter()
            summary = server.call("model/load", {"path": path, "name": f"bench-{index}"})
            seconds.append(time.perf_counter() - start)
            resident.append(memory_status(server.pid))
        for index in range(repeats):
            server.call("model/unload", {"model": f"bench-{index}"})
        after_unload = memory_status(server.pid)["VmRSS"]
    steady = seconds[1:] or seconds
    return {
        "benchmark": "model-load", "implementation": "loquatd", "path": path, "format": summary["format"],
        "tensorCount": summary["tensorCount"], "byteCount": summary["byteCount"], "repeats": repeats,
        "seconds_first": seconds[0], "seconds_p50": statistics.median(steady), "seconds_min": min(seconds),
        "seconds_max": max(seconds),
        "rssBeforeBytes": before["VmRSS"], "rssGrowthFirstBytes": growth(before, resident[0]),
        "rssGrowthPerLaterLoadBytes": growth(resident[0], resident[-1]) // max(1, repeats - 1),
        "rssAnonGrowthPerLaterLoadBytes": growth(resident[0], resident[-1], "RssAnon") // max(1, repeats - 1),
        "rssFileGrowthPerLaterLoadBytes": growth(resident[0], resident[-1], "RssFile") // max(1, repeats - 1),
        "rssGrowthTotalBytes": growth(before, resident[-1]), "rssAfterUnloadBytes": after_unload,
        "blasCore": runtime.get("blasCore"),
    }


def convert(daemon, gguf, directory):
    target = os.path.join(directory, "model.safetensors")
    if os.path.exists(target):
        return {"benchmark": "model-save", "path": directory, "skipped": "already converted"}
    with Server([daemon]) as server:
        server.call("initialize", {})
        server.call("model/load", {"path": gguf, "name": "source"})
        start = time.perf_counter()
        result = server.call("model/save", {"model": "source", "path": directory, "format": "safetensors"})
        elapsed = time.perf_counter() - start
    return {"benchmark": "model-save", "implementation": "loquatd", "source": gguf, "path": directory,
            "format": "safetensors", "byteCount": result["byteCount"], "seconds": elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", default=os.environ.get("LOQUATD", ".build/release/loquatd"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--convert", metavar="GGUF")
    parser.add_argument("--to", metavar="DIR")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.convert:
        if not args.to:
            parser.error("--convert needs --to DIR")
        print(json.dumps(convert(args.daemon, args.convert, args.to)), flush=True)
    for path in args.paths:
        print(json.dumps(load_repeatedly(args.daemon, path, max(1, args.repeats))), flush=True)


if __name__ == "__main__":
    main()
