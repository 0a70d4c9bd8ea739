#!/usr/bin/env python3
"""Goldens for Loquat's ΔW-level adapter combination (TIES, DARE, magnitude pruning), made by PEFT's own
`peft.utils.merge_utils` on small fixed float32 tensors on the CPU.

Writes Tests/AdaptersTests/Fixtures/peft/merge.safetensors (see README-peft-merge.md):
  inputs.<t>            F32 [16, 24]  the task tensors τ_t (t = 0, 1, 2), seeded
  <case>.weights        F32 [T]       the combination weights, as PEFT received them
  <case>.output         F32 [16, 24]  what merge_utils returned
  <case>.mask<t>        F32 [16, 24]  DARE cases: the Bernoulli mask PEFT drew for τ_t (0/1)
  prune_d<d>.<t>        F32 [16, 24]  merge_utils.prune(τ_t, d, "magnitude")
Metadata: versions, and per case `<case>.method`, `.density`, `.majority_sign`, `.sources` (indices of
the inputs, in order), `.bernoulli_calls`.

DARE's masks come from `torch.bernoulli`. `BernoulliRecorder` swaps `torch.bernoulli` for a
pass-through that calls the original and keeps what it returned (and checks its input is a tensor
filled with the density), so the Swift test can inject exactly PEFT's masks. Nothing else of PEFT or
torch is changed.

Run (from the repository root; torch needs the CUDA stand-ins of bnb_cuda_stubs.py):
    python3 Tests/Generators/bnb_cuda_stubs.py /tmp/cuda-stubs
    LD_LIBRARY_PATH=/tmp/cuda-stubs python3 Tests/Generators/peft_merge_goldens.py
"""
import json
import os
import sys

import numpy as np
import torch

import peft
import peft.utils.merge_utils as merge_utils
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "AdaptersTests", "Fixtures", "peft"))
SHAPE = (16, 24)

# (case, merge_utils function, sources, weights, density, majority sign or None)
CASES = [
    ("ties_total_d0.3", "ties", [0, 1, 2], [1.0, 0.6, -0.4], 0.3, "total"),
    ("ties_frequency_d0.5", "ties", [0, 1, 2], [1.0, 0.6, -0.4], 0.5, "frequency"),
    ("ties_total_d1.0", "ties", [0, 1, 2], [0.7, 0.7, 0.7], 1.0, "total"),
    ("ties_total_two_d0.4", "ties", [0, 1], [0.5, 1.5], 0.4, "total"),
    ("dare_linear_d0.3", "dare_linear", [0, 1, 2], [1.0, 0.6, -0.4], 0.3, None),
    ("dare_linear_d0.7", "dare_linear", [0, 1], [0.5, 1.5], 0.7, None),
    ("dare_ties_total_d0.5", "dare_ties", [0, 1, 2], [1.0, 0.6, -0.4], 0.5, "total"),
    ("dare_ties_frequency_d0.3", "dare_ties", [0, 1, 2], [0.8, -1.2, 0.5], 0.3, "frequency"),
    ("magnitude_prune_d0.4", "magnitude_prune", [0, 1, 2], [1.0, 0.6, -0.4], 0.4, None),
    ("task_arithmetic", "task_arithmetic", [0, 1, 2], [1.0, 0.6, -0.4], None, None),
]
PRUNE_DENSITIES = [0.25, 0.6]


class BernoulliRecorder:
    """Pass-through wrapper of `torch.bernoulli` that keeps every mask it returns."""

    def __init__(self, density):
        self.density = density
        self.masks = []

    def __enter__(self):
        self.original = torch.bernoulli

        def recording(input, *args, **kwargs):
            expected = torch.full_like(input, self.density)
            if not torch.equal(input, expected):
                raise SystemExit("torch.bernoulli was not called with a tensor filled with the density")
            mask = self.original(input, *args, **kwargs)
            self.masks.append(mask.detach().clone())
            return mask

        torch.bernoulli = recording
        return self

    def __exit__(self, *exc):
        torch.bernoulli = self.original
        return False


def versions():
    return {"generator": "Tests/Generators/peft_merge_goldens.py", "peft": peft.__version__,
            "torch": torch.__version__, "safetensors": __import__("safetensors").__version__,
            "numpy": np.__version__, "python": sys.version.split()[0]}


def inputs():
    """Three [16, 24] float32 task tensors of different scales and means (torch.manual_seed(0)).
    Magnitudes are distinct within each tensor, so torch.topk's choice at the cut is unambiguous."""
    torch.manual_seed(0)
    tensors = [torch.randn(*SHAPE) * 0.5, torch.randn(*SHAPE) * 0.3 + 0.05, torch.randn(*SHAPE) * 0.8 - 0.1]
    for t in tensors:
        magnitudes = t.abs().reshape(-1)
        if torch.unique(magnitudes).numel() != magnitudes.numel():
            raise SystemExit("repeated magnitude: topk ties would be implementation-defined")
    return [t.contiguous() for t in tensors]


def run_case(index, case, function, sources, weights, density, sign, tensors):
    task = [tensors[s].clone() for s in sources]
    w = torch.tensor(weights, dtype=torch.float32)
    torch.manual_seed(1000 + index)
    recorder = BernoulliRecorder(density if density is not None else 0.0)
    with recorder:
        if function == "task_arithmetic":
            output = merge_utils.task_arithmetic(task, w)
        elif function == "magnitude_prune":
            output = merge_utils.magnitude_prune(task, w, density)
        elif function == "dare_linear":
            output = merge_utils.dare_linear(task, w, density)
        elif function in ("ties", "dare_ties"):
            output = getattr(merge_utils, function)(task, w, density, majority_sign_method=sign)
        else:
            raise SystemExit(f"unknown function {function}")
    random = function.startswith("dare")
    expected_calls = len(task) if random and density < 1 else 0
    if len(recorder.masks) != expected_calls:
        raise SystemExit(f"{case}: {len(recorder.masks)} bernoulli calls, expected {expected_calls}")
    out = {f"{case}.weights": w, f"{case}.output": output.contiguous()}
    for t, mask in enumerate(recorder.masks):
        out[f"{case}.mask{t}"] = mask.contiguous()
    meta = {f"{case}.method": function, f"{case}.density": "" if density is None else repr(density),
            f"{case}.majority_sign": sign or "", f"{case}.sources": json.dumps(sources),
            f"{case}.bernoulli_calls": str(len(recorder.masks))}
    return out, meta


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    tensors = inputs()
    saved = {f"inputs.{t}": x for t, x in enumerate(tensors)}
    metadata = dict(versions(), shape=json.dumps(list(SHAPE)), cases=json.dumps([c[0] for c in CASES]),
                    prune_densities=json.dumps(PRUNE_DENSITIES),
                    inputs="torch.manual_seed(0); randn(16,24)*0.5, randn(16,24)*0.3+0.05, randn(16,24)*0.8-0.1")
    for index, (case, function, sources, weights, density, sign) in enumerate(CASES):
        out, meta = run_case(index, case, function, sources, weights, density, sign, tensors)
        saved.update(out)
        metadata.update(meta)
    for density in PRUNE_DENSITIES:
        for t, x in enumerate(tensors):
            saved[f"prune_d{density}.{t}"] = merge_utils.prune(x.clone(), density, method="magnitude").contiguous()
    path = os.path.join(OUT, "merge.safetensors")
    save_file(saved, path, metadata=metadata)
    reloaded = load_file(path)
    if any(not torch.equal(reloaded[k], v) for k, v in saved.items()):
        raise SystemExit("round trip through safetensors changed a tensor")
    print(json.dumps({"file": path, "bytes": os.path.getsize(path), "tensors": len(saved),
                      "cases": [c[0] for c in CASES]}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
