#!/usr/bin/env python3
"""Python's JSON parsers on the file `LoquatBench json-parse` reads, in the same JSON lines.

Usage: python3 scripts/bench/json_parse_peer.py FILE.json [--repeats 10]

Peers: the standard library's `json.loads` and `orjson.loads` (skipped, with a line on stderr,
when orjson is not installed). Both get the same bytes, read once; one untimed warm-up parse;
the result of each timed parse is dropped after the clock stops, as on the Swift side.
Python's cyclic GC stays on, as in any Python program.
"""
import argparse
import json
import sys
import time


def measure(name, loads, data, repeats):
    top = loads(data)  # warm-up
    count = len(top) if isinstance(top, list) else 0
    del top
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = loads(data)
        seconds.append(time.perf_counter() - start)
        del value
    samples = list(seconds)
    seconds.sort()
    median = seconds[len(seconds) // 2]
    return {"benchmark": "json-parse", "implementation": name, "byteCount": len(data),
            "topLevelElements": count, "repeats": repeats, "seconds": samples, "seconds_p50": median, "seconds_min": seconds[0],
            "megabytesPerSecond": len(data) / median / 1e6}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with open(args.path, "rb") as handle:
        data = handle.read()
    peers = [("python-json", json.loads)]
    try:
        import orjson
        peers.append(("orjson", orjson.loads))
    except ImportError:
        print("json-parse: orjson is not installed; skipping it", file=sys.stderr)
    for name, loads in peers:
        print(json.dumps(measure(name, loads, data, max(1, args.repeats))), flush=True)


if __name__ == "__main__":
    main()
