#!/usr/bin/env python3
"""PEFT's LoftQ initialization (`peft.utils.loftq_utils.loftq_init`) timed on the CPU: the peer of Loquat's LoftQ.

Usage: python3 scripts/bench/peft_loftq.py [--size 4096] [--rank 16] [--iterations 5] [--threads 2]

Runs `loftq_init(W, num_bits=4, reduced_rank=rank, num_iter=iterations)` once on a size×size
float32 matrix W (torch.Generator seed 4096, normal with std 0.02) under
`torch.set_num_threads(threads)` and prints one JSON line: the wall time of that call and
‖W − Q − B·A‖_F / ‖W‖_F of what it returns. Each iteration quantizes with bitsandbytes NF4
(`Params4bit`: blocksize 64, compress_statistics=False) and takes a full SVD of the residual
(torch.linalg.svd, MKL LAPACK in PyPI's wheel), so the SVDs dominate.

PEFT hard-codes its device (`compute_device = "xpu" if is_xpu_available() else "cuda"`). On a
machine with neither, the script compiles PEFT's own `loftq_init` source with that one line changed
to `compute_device = "cpu"` (in a copy of the module's globals; the installed PEFT is not
modified), exactly as Tests/Generators/peft_goldens.py does for the fixtures.

PyPI's Linux torch wheel links CUDA libraries that come only as large nvidia-* wheels; when torch
cannot be imported for that reason, torch_cpu.import_torch re-runs this script with do-nothing
stand-ins (see torch_cpu.py). If torch, PEFT or bitsandbytes is not installed it prints one line
with "skipped" and exits 0.
"""
import __future__
import argparse
import inspect
import json
import sys
import textwrap
import time

from torch_cpu import import_torch

PEER = "peft.loftq_init"
# The one line of peft.utils.loftq_utils.loftq_init that picks the device (PEFT 0.21.2).
DEVICE_LINE = 'compute_device = "xpu" if is_xpu_available() else "cuda"'
CPU_LINE = 'compute_device = "cpu"'


def skipped(reason):
    print(json.dumps({"peer": PEER, "skipped": reason}))
    return 0


def loftq_init_on_cpu(loftq_utils):
    """PEFT's `loftq_init`, recompiled from its own source with DEVICE_LINE replaced by CPU_LINE."""
    source = textwrap.dedent(inspect.getsource(loftq_utils.loftq_init))
    if source.count(DEVICE_LINE) != 1:
        raise RuntimeError(f"loftq_init no longer contains {DEVICE_LINE!r}; update the patch")
    namespace = dict(vars(loftq_utils))
    code = compile(source.replace(DEVICE_LINE, CPU_LINE), loftq_utils.__file__, "exec",
                   flags=__future__.annotations.compiler_flag, dont_inherit=True)
    exec(code, namespace)
    return namespace["loftq_init"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch = import_torch("peft_loftq")
    if torch is None:
        return skipped("torch is not installed (pip install --no-deps torch bitsandbytes)")
    try:
        import bitsandbytes  # noqa: F401  (PEFT's 4-bit path quantizes with it)
        import peft
        import peft.utils.loftq_utils as loftq_utils
    except ImportError as error:
        return skipped(f"peft or bitsandbytes is not importable: {error}")
    loftq_init = loftq_init_on_cpu(loftq_utils)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(4096)
    weight = torch.randn(args.size, args.size, generator=generator, dtype=torch.float32) * 0.02
    start = time.perf_counter()
    qweight, lora_A, lora_B = loftq_init(weight, num_bits=4, reduced_rank=args.rank, num_iter=args.iterations)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        residual = weight.double() - qweight.double() - lora_B.double() @ lora_A.double()
        relative_error = float(torch.linalg.norm(residual) / torch.linalg.norm(weight.double()))
    print(json.dumps({"peer": PEER, "peftVersion": peft.__version__, "seconds": round(seconds, 3),
                      "relativeError": relative_error, "shape": [args.size, args.size], "rank": args.rank,
                      "iterations": args.iterations, "threads": torch.get_num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
