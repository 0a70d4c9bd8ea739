#!/usr/bin/env python3
"""The Python peers of `model/load`: open time and resident growth of the `safetensors` package.

Usage: python3 scripts/bench/safetensors_peer.py FILE.safetensors --mode open|load_file [--repeats N]

  open       `safe_open(path, framework="numpy")` plus listing its keys: maps the file and
             parses the header, as `model/load` does. Every handle stays open until the end,
             as every loaded model stays resident in the daemon.
  load_file  `safetensors.numpy.load_file(path)`: reads every tensor into a numpy array (a
             copy of the weights). Only one result is alive at a time.

VmRSS of this process is read after the imports and a warm-up on a tiny file (not timed), then
after the first timed call and after the last. One JSON line on stdout.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from stdio_rpc import resident_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--mode", choices=("open", "load_file"), required=True)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:  # warm-up: import-time lazies, code pages
        tiny = os.path.join(scratch, "tiny.safetensors")
        save_file({"x": np.zeros(4, dtype=np.float32)}, tiny)
        with safe_open(tiny, framework="numpy") as handle:
            list(handle.keys())
        load_file(tiny)

    before = resident_bytes()
    seconds, kept, first_resident, key_count = [], [], None, 0
    for index in range(max(1, args.repeats)):
        start = time.perf_counter()
        if args.mode == "open":
            handle = safe_open(args.path, framework="numpy")
            keys = list(handle.keys())
            kept.append(handle)
            key_count = len(keys)
        else:
            tensors = load_file(args.path)
            key_count = len(tensors)
        seconds.append(time.perf_counter() - start)
        if index == 0:
            first_resident = resident_bytes()
        if args.mode == "load_file":
            del tensors
    last_resident = resident_bytes()
    steady = seconds[1:] or seconds
    print(json.dumps({
        "benchmark": "model-load", "implementation": f"safetensors.{'safe_open' if args.mode == 'open' else 'numpy.load_file'}",
        "safetensorsVersion": safetensors.__version__, "path": args.path, "tensorCount": key_count,
        "repeats": len(seconds), "seconds_first": seconds[0], "seconds_p50": statistics.median(steady),
        "seconds_min": min(seconds), "seconds_max": max(seconds),
        "rssBeforeBytes": before, "rssGrowthFirstBytes": first_resident - before,
        "rssGrowthTotalBytes": last_resident - before,
    }), flush=True)
    del kept


if __name__ == "__main__":
    main()
