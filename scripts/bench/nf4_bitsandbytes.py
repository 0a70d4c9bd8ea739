#!/usr/bin/env python3
"""bitsandbytes' NF4 quantize/dequantize on the CPU, in the same JSON lines as `LoquatBench nf4`.

Usage: python3 scripts/bench/nf4_bitsandbytes.py [--size 4096] [--repeats 5] [--threads 2]

Times `bitsandbytes.functional.quantize_4bit(W, blocksize=64, quant_type="nf4",
compress_statistics=…)` on a size×size float32 matrix (GB/s of fp32 input) and `dequantize_4bit`
(GB/s of fp32 output), best of `repeats` after one warm-up, with `torch.set_num_threads(threads)`.

PyPI's Linux torch wheel links CUDA libraries that come only as large nvidia-* wheels. When
torch cannot be imported for that reason, this script builds do-nothing stand-ins with
Tests/Generators/bnb_cuda_stubs.py in $TMPDIR/loquat-cuda-stubs-torch-<version> (once) and re-runs itself with
LD_LIBRARY_PATH pointing there (nothing on the CPU path calls them). If torch or bitsandbytes is
not installed it prints one line with "skipped" and exits 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STUBS = os.path.join(HERE, "..", "..", "Tests", "Generators", "bnb_cuda_stubs.py")
MARKER = "LOQUAT_BNB_CUDA_STUBS"


def skipped(reason):
    print(json.dumps({"benchmark": "nf4", "implementation": "bitsandbytes", "skipped": reason}))
    return 0


def import_torch():
    """torch, or re-exec with CUDA stand-ins when only its CUDA libraries are missing."""
    try:
        import torch
        return torch
    except ModuleNotFoundError:
        return None
    except (OSError, ValueError, ImportError) as error:
        if os.environ.get(MARKER):
            raise
        from importlib.metadata import version
        # Built once per torch version and reused by later runs.
        stubs = os.path.join(tempfile.gettempdir(), f"loquat-cuda-stubs-torch-{version('torch')}")
        if not os.path.isdir(stubs):
            subprocess.run([sys.executable, STUBS, stubs], check=True, stdout=subprocess.DEVNULL)
        environment = dict(os.environ, **{MARKER: stubs})
        environment["LD_LIBRARY_PATH"] = stubs + os.pathsep + environment.get("LD_LIBRARY_PATH", "")
        print(f"nf4_bitsandbytes: torch needs CUDA libraries ({error}); using stand-ins in {stubs}", file=sys.stderr)
        os.execve(sys.executable, [sys.executable] + sys.argv, environment)


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
    torch = import_torch()
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
