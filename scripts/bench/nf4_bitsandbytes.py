#!/usr/bin/env python3
"""bitsandbytes' NF4 quantize/dequantize on the CPU, in the same JSON lines as `LoquatBench nf4`.

Usage: python3 scripts/bench/nf4_bitsandbytes.py [--size 4096] [--repeats 5] [--threads 2]

Times `bitsandbytes.functional.quantize_4bit(W, blocksize=64, quant_type="nf4",
compress_statistics=…)` on a size×size float32 matrix (GB/s of fp32 input) and `dequantize_4bit`
(GB/s of fp32 output), best of `repeats` after one warm-up, with `torch.set_num_threads(threads)`.

PyPI's Linux torch wheel links CUDA libraries that come only as large nvidia-* wheels; when torch
cannot be imported for that reason, torch_cpu.import_torch re-runs this script with do-nothing
stand-ins (see torch_cpu.py). If torch or bitsandbytes is not installed it prints one line with
"skipped" and exits 0.
"""
import argparse
import json
import sys
import time

from torch_cpu import import_torch


def skipped(reason):
    print(json.dumps({"benchmark": "nf4", "implementation": "bitsandbytes", "skipped": reason}))
    return 0


def best_of(repeats, body):
    body()  # warm-up: allocator, lazily built tables, threads
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch = import_torch("nf4_bitsandbytes")
    if torch is None:
        return skipped("torch is not installed (pip install --no-deps torch bitsandbytes)")
    try:
        import bitsandbytes
        import bitsandbytes.functional as F
    except ImportError as error:
        return skipped(f"bitsandbytes is not importable: {error}")
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(4096)
    weight = torch.randn(args.size, args.size, generator=generator, dtype=torch.float32) * 0.02
    byte_count = weight.numel() * 4
    for double_quant in (False, True):
        state = {}

        def quantize():
            state["packed"], state["state"] = F.quantize_4bit(weight, blocksize=64, quant_type="nf4",
                                                              compress_statistics=double_quant)

        def dequantize():
            state["out"] = F.dequantize_4bit(state["packed"], state["state"])

        timings = [("quantize", best_of(args.repeats, quantize)), ("dequantize", best_of(args.repeats, dequantize))]
        for operation, seconds in timings:
            print(json.dumps({"benchmark": f"nf4-{operation}", "implementation": "bitsandbytes", "size": args.size,
                              "doubleQuant": double_quant, "seconds": round(seconds, 5),
                              "gbps": round(byte_count / seconds / 1e9, 3), "threads": torch.get_num_threads(),
                              "version": bitsandbytes.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
