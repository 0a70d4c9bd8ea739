#!/usr/bin/env python3
"""Golden fixtures for Loquat's bitsandbytes NF4/FP4 (+ double quantization), made by the real
bitsandbytes on the CPU.

Writes Tests/QuantizationTests/Fixtures/bnb/goldens.safetensors: for every case an input matrix and,
for each of nf4/fp4 × compress_statistics off/on, what `bitsandbytes.functional.quantize_4bit`
returns (packed codes, absmax or qabsmax + nested absmax + offset), the reference dequantization,
and the packed quant-state blob `QuantState.as_dict(packed=True)` serializes. See README-bnb.md.

Run (from the repository root; torch needs the CUDA stand-ins of bnb_cuda_stubs.py):
    python3 Tests/Generators/bnb_cuda_stubs.py /tmp/cuda-stubs
    LD_LIBRARY_PATH=/tmp/cuda-stubs python3 Tests/Generators/bnb_goldens.py
"""
import json
import os
import sys

import numpy as np
import torch

import bitsandbytes
import bitsandbytes.functional as F
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "QuantizationTests", "Fixtures", "bnb", "goldens.safetensors")
# Dequantized outputs up to this many elements are stored whole; larger ones as a checksum.
FULL_DEQUANT_LIMIT = 2048


def checksum(values: np.ndarray) -> int:
    """Σ bits_i · (2i + 1) mod 2^64 over the float32 bit patterns (as the GGUF goldens do)."""
    bits = values.astype(np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    weights = (2 * np.arange(bits.size, dtype=np.uint64) + 1)
    return int(np.sum(bits * weights, dtype=np.uint64))


def midpoint_ties() -> np.ndarray:
    """Two 64-blocks whose absmax is exactly 1.0, so the scaled value is the input itself: the
    float32 midpoints of the sorted NF4 (block 0) and FP4 (block 1) tables, and one ulp either side."""
    rows = []
    for quant_type in ("nf4", "fp4"):
        code = torch.sort(F.get_4bit_type(quant_type, device="cpu")).values
        mids = ((code[:-1] + code[1:]) / 2).numpy().astype(np.float32)
        mids = np.unique(mids)
        values = [np.float32(1.0)]
        for m in mids:
            values += [m, np.nextafter(m, np.float32(2)), np.nextafter(m, np.float32(-2))]
        values += [np.float32(1e-3), np.float32(-1e-3), np.float32(0.0), np.float32(-0.0)]
        values = (values + [np.float32(0.5)] * 64)[:64]
        rows.append(np.array(values, dtype=np.float32))
    return np.stack(rows)


def cases():
    rng = np.random.default_rng(20261129)
    gauss = rng.standard_normal((16, 128)).astype(np.float32) * np.float32(0.02)
    outliers = rng.standard_normal((8, 256)).astype(np.float32) * np.float32(0.05)
    outliers.reshape(-1)[rng.choice(outliers.size, 12, replace=False)] *= np.float32(40)
    zero_block = rng.standard_normal((8, 64)).astype(np.float32)
    zero_block[2] = 0                        # a whole zero block
    zero_block[5] *= np.float32(1e-30)       # a tiny block (reciprocal far from 1)
    odd = rng.standard_normal((7, 37)).astype(np.float32)  # 259 elements: ragged last block, odd padding
    ragged_zero = rng.standard_normal((5, 13)).astype(np.float32)
    ragged_zero[4, 12] = 0                   # 65 elements: the ragged last block is one zero
    wide256 = rng.standard_normal((12, 200)).astype(np.float32)  # blocks straddle rows, ragged end
    # Rows of 48 under 64-blocks: bnb's AVX-512 CPU dequantizer indexes absmax per row here (see README).
    straddle = rng.standard_normal((6, 48)).astype(np.float32)
    # Enough first-level blocks for three nested 256-blocks (the last one ragged); stored as BF16.
    nested = torch.from_numpy(rng.standard_normal((96, 260)).astype(np.float32) * np.float32(0.03)).to(torch.bfloat16)
    return [
        ("gauss", gauss, 64), ("outliers", outliers, 128), ("zero_block", zero_block, 64),
        ("odd", odd, 64), ("ragged_zero", ragged_zero, 64), ("wide256", wide256, 256),
        ("straddle", straddle, 64),
        ("ties", midpoint_ties(), 64), ("nested", nested, 32),
    ]


def main():
    torch._dynamo.config.disable = True  # the reference dequantization runs eagerly
    torch.set_num_threads(1)  # torch's float32 mean (the DQ offset) in its single-thread summation order
    tensors = {}
    metadata = {"generator": "Tests/Generators/bnb_goldens.py", "bitsandbytes": bitsandbytes.__version__,
                "torch": torch.__version__, "numpy": np.__version__}
    names = []
    dynamic_map = F.create_dynamic_map(signed=True)
    tensors["dynamic_map"] = dynamic_map.clone()
    for quant_type in ("nf4", "fp4"):
        tensors[f"quant_map.{quant_type}"] = F.get_4bit_type(quant_type, device="cpu").clone()
    for name, matrix, blocksize in cases():
        names.append(name)
        if isinstance(matrix, torch.Tensor):
            x = matrix.float().contiguous()
            tensors[f"{name}.input"] = matrix.contiguous()
        else:
            x = torch.from_numpy(matrix).contiguous()
            tensors[f"{name}.input"] = x.clone()
        metadata[f"{name}.blocksize"] = str(blocksize)
        for quant_type in ("nf4", "fp4"):
            for nested in (False, True):
                key = f"{name}.{quant_type}.{'dq' if nested else 'plain'}"
                packed, state = F.quantize_4bit(x, blocksize=blocksize, compress_statistics=nested, quant_type=quant_type)
                tensors[f"{key}.packed"] = packed.reshape(-1).contiguous()
                tensors[f"{key}.absmax"] = state.absmax.contiguous()
                if nested:
                    tensors[f"{key}.nested_absmax"] = state.state2.absmax.contiguous()
                    tensors[f"{key}.offset"] = state.offset.reshape(1).contiguous()
                    assert torch.equal(state.state2.code, dynamic_map)
                    absmax = F.dequantize_blockwise(state.absmax, state.state2) + state.offset
                else:
                    absmax = state.absmax
                # The reference dequantization: flat blocks, torch's float32 table, code·absmax in float32.
                code = F.get_4bit_type(quant_type, device="cpu")
                reference = _dequantize_4bit_compute(packed.reshape(-1), absmax.float(), code, blocksize, x.shape, torch.float32)
                cpu = F.dequantize_4bit(packed, state)
                agrees = cpu.shape == reference.shape and torch.equal(cpu.view(torch.int32), reference.view(torch.int32))
                if not agrees and cpu.shape == reference.shape and torch.equal(cpu, reference):
                    agrees = "signed-zero"  # equal values; bnb's scalar CPU table has -0.0 for FP4 code 8
                metadata[f"{key}.cpu_kernel_agrees"] = {True: "true", False: "false"}.get(agrees, agrees)
                if x.numel() <= FULL_DEQUANT_LIMIT:
                    tensors[f"{key}.dequantized"] = reference.contiguous()
                metadata[f"{key}.dequantized_checksum"] = str(checksum(reference.numpy()))
                blob = state.as_dict(packed=True)[f"quant_state.bitsandbytes__{quant_type}"]
                tensors[f"{key}.quant_state"] = blob.contiguous()
    metadata["cases"] = ",".join(names)
    # torch's float32 mean (the DQ offset) with several threads: over 32768 values torch sums one
    # chunk per thread. The probe is integer arithmetic, so Swift rebuilds it without a fixture.
    probe = (np.arange(100_003, dtype=np.int64) * 7919 % 65521).astype(np.float32) / np.float32(65521)
    for threads in (1, 2, 3, 4):
        torch.set_num_threads(threads)
        mean = torch.from_numpy(probe).mean().reshape(1).numpy().view(np.uint32)[0]
        metadata[f"mean_probe.threads{threads}"] = "%08x" % mean
    torch.set_num_threads(1)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=metadata)
    print(json.dumps({"file": os.path.normpath(OUT), "bytes": os.path.getsize(OUT), "tensors": len(tensors),
                      "cpu_kernel_disagrees": sorted(f"{k}={v}" for k, v in metadata.items() if v in ("false", "signed-zero"))}))


if __name__ == "__main__":
    sys.exit(main())
