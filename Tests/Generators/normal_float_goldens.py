#!/usr/bin/env python3
"""Goldens for Loquat's NormalFloat-k grid (Tests/QuantizationTests/NormalFloatTests.swift).

Rebuilds LoftQ's `create_normal_map(offset=0.9677083, symmetric=False)` (yxli2123/LoftQ
glue/utils_qaunt.py; PEFT NFQuantizer, use_extra_value=True) and its block quantizer
(`quant_nf4_block`: blocks of 64 of the flattened matrix, absmax, argmin |u - c|, first index on
ties) with numpy float32 and scipy's norm.ppf. torch.linspace is reproduced by its scalar CPU
kernel (start + step*i for the first half, end - step*(steps-1-i) after), in float32; when torch
imports, the script checks that torch.linspace agrees.

Writes Tests/QuantizationTests/Fixtures/normal-float/normal_float_goldens.json:
float32 values as their uint32 bit patterns.

    python3 Tests/Generators/normal_float_goldens.py
"""
import json
import os
import sys

import numpy as np
from scipy.stats import norm

OFFSET = np.float32(0.9677083)


def linspace_like_torch(start, end, steps):
    start, end = np.float32(start), np.float32(end)
    step = np.float32((end - start) / np.float32(steps - 1))
    halfway = steps // 2
    out = []
    for i in range(steps):
        if i < halfway:
            out.append(np.float32(start + np.float32(step * np.float32(i))))
        else:
            out.append(np.float32(end - np.float32(step * np.float32(steps - i - 1))))
    return np.array(out, dtype=np.float32)


def check_against_torch():
    try:
        import torch
    except Exception as error:  # torch absent or broken: the scalar formula is the reference
        print(f"torch not importable ({type(error).__name__}); using the scalar linspace formula", file=sys.stderr)
        return
    for steps in (3, 2, 5, 4, 9, 8, 129, 128):
        ours = linspace_like_torch(OFFSET, 0.5, steps)
        theirs = torch.linspace(float(OFFSET), 0.5, steps).numpy()
        if not np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)):
            print(f"warning: torch.linspace differs for steps={steps}", file=sys.stderr)


def create_normal_map(bits):
    half = 2 ** (bits - 1)
    v1 = norm.ppf(linspace_like_torch(OFFSET, 0.5, half + 1)[:-1].astype(np.float64)).tolist()
    v3 = (-norm.ppf(linspace_like_torch(OFFSET, 0.5, half)[:-1].astype(np.float64))).tolist()
    values = np.sort(np.array(v1 + [0.0] + v3, dtype=np.float32))
    return (values / values.max()).astype(np.float32)


def quantize(weight, codebook, block=64):
    flat = weight.reshape(-1, block)
    absmax = np.abs(flat).max(axis=1, keepdims=True).astype(np.float32)
    u = (flat / absmax).astype(np.float32)
    codes = np.argmin(np.abs(u[:, :, None] - codebook[None, None, :]), axis=-1)
    dequantized = (codebook[codes] * absmax).astype(np.float32)
    return codes.reshape(-1), dequantized.reshape(-1)


def main():
    check_against_torch()
    rng = np.random.default_rng(20261129)
    rows, columns = 4, 128
    weight = (rng.standard_normal((rows, columns)) * 0.05).astype(np.float32)
    weight[1, 5] = 0.4  # an outlier so one block has a wide range
    result = {"rows": rows, "columns": columns, "weight": weight.reshape(-1).view(np.uint32).tolist()}
    for bits in (2, 3, 4, 8):
        codebook = create_normal_map(bits)
        codes, dequantized = quantize(weight, codebook)
        result[f"codebook{bits}"] = codebook.view(np.uint32).tolist()
        result[f"codes{bits}"] = codes.tolist()
        result[f"dequantized{bits}"] = dequantized.view(np.uint32).tolist()
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.path.join(here, "..", "QuantizationTests", "Fixtures", "normal-float", "normal_float_goldens.json")
    with open(target, "w") as handle:
        json.dump(result, handle, separators=(",", ":"))
    print(f"wrote {os.path.normpath(target)}")


if __name__ == "__main__":
    main()
