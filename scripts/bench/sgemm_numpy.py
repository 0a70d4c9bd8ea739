#!/usr/bin/env python3
"""numpy's float32 matmul GFLOP/s, in the same JSON lines as `LoquatBench sgemm`.

Usage: python3 scripts/bench/sgemm_numpy.py [--sizes 512,1024,2048] [--repeats 5]

numpy wheels bundle their own OpenBLAS (scipy-openblas), which detects the CPU by itself and
does not read Debian's library, so this is the peer to compare our wrapper against. The BLAS
core comes from threadpoolctl when it is installed (`pip install threadpoolctl`); otherwise
from numpy's build configuration, which names the build target, not the run-time core.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def blas_core_and_threads():
    """(core, threads) of numpy's BLAS: run-time values via threadpoolctl, else build-time."""
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                return pool.get("architecture") or pool.get("internal_api", "unknown"), pool.get("num_threads", 0)
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        words = blas.get("openblas configuration", "").split()
        # e.g. "OpenBLAS 0.3.31 USE64BITINT DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
        target = next((w for w in reversed(words) if not w.isupper() and "=" not in w and w[0].isalpha()), None)
        return "build:" + (target or blas.get("name", "unknown")), default_threads()
    except Exception:  # older numpy without mode="dicts"
        return "unknown", default_threads()


def default_threads():
    """OpenBLAS's own default: OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else all CPUs."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return os.cpu_count() or 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    core, threads = blas_core_and_threads()
    print(f"sgemm: numpy {np.__version__}, BLAS core {core}, {threads} threads "
          f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})", file=sys.stderr)
    rng = np.random.default_rng(1)
    for size in (int(s) for s in args.sizes.split(",") if s):
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        c = np.empty((size, size), dtype=np.float32)
        np.matmul(a, b, out=c)  # warm-up: threads, caches, pages
        best = float("inf")
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - start)
        gflops = 2 * size ** 3 / best / 1e9
        print(json.dumps({"benchmark": "sgemm", "implementation": "numpy", "size": size,
                          "gflops": round(gflops, 2), "core": core, "threads": threads},
                         separators=(",", ":")))


if __name__ == "__main__":
    main()
