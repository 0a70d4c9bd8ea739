#!/usr/bin/env python3
"""Generate the K-quant encoder goldens for Tests/CheckpointsTests (see Tests/CheckpointsTests/Fixtures/kquant/README.md).

gguf-py (PyPI `gguf` 0.19.0) dequantizes the K-quants but cannot quantize them, so the bytes
come from ggml itself: its `quantize_row_q{2,3,4,5,6}_K_ref`, called through ctypes from a
`libggml-base.so` built from an unmodified ggml checkout (the build command is in that README;
nothing of ggml is committed). gguf-py then decodes every block as a sanity check and writes
the fixture file:

  kquant.gguf   `input` (F32, ROWS x 512: Gaussian rows at several scales, heavy tails, a lone
                outlier, zeros, constants, sub-blocks below ggml's 1e-15 threshold, integer and
                half-integer ties, one-signed rows, a ramp, a sparse row) and `<TYPE>` (raw
                Q2_K, Q3_K, Q4_K, Q5_K, Q6_K bytes) = ggml's reference quantization of it.

Usage: python3 Tests/Generators/kquant_goldens.py --libggml /path/to/libggml-base.so [--out DIR]
"""
import argparse
import ctypes
import importlib.metadata
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "CheckpointsTests", "Fixtures", "kquant")
COLUMNS = 512  # two super-blocks per row
TYPES = [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def input_rows(rng):
    """Rows that reach every branch of the reference fits (see the module docstring)."""
    def gaussian(scale):
        return rng.standard_normal(COLUMNS) * scale

    rows = [gaussian(1.0), gaussian(0.02), gaussian(0.02), gaussian(1e-4), gaussian(300.0),
            gaussian(3e-6),  # scales in the f16 subnormal range
            rng.uniform(-1, 1, COLUMNS), rng.laplace(0, 0.05, COLUMNS),
            rng.standard_t(2, COLUMNS) * 0.01]
    outlier = gaussian(0.01)
    outlier[37] = 2.5
    outlier[300] = -4.0
    rows.append(outlier)
    rows.append(np.zeros(COLUMNS))
    rows.append(np.full(COLUMNS, 0.75))
    rows.append(np.full(COLUMNS, -0.125))
    tiny = gaussian(1.0)
    tiny[0:16] = 1e-17      # a whole 16-sub-block below GROUP_MAX_EPS
    tiny[32:64] = 0.0       # a zero 32-sub-block
    tiny[256:512] = rng.standard_normal(256) * 1e-16  # a whole super-block below it
    rows.append(tiny)
    rows.append(rng.integers(-8, 8, COLUMNS).astype(np.float64))      # integer ties
    rows.append(rng.integers(-16, 16, COLUMNS) + 0.5)                 # half-integer ties
    rows.append(np.abs(gaussian(0.1)) + 0.05)                         # all positive
    rows.append(-np.abs(gaussian(0.1)) - 0.05)                        # all negative
    rows.append(np.linspace(-1, 1, COLUMNS))                          # ramp
    sparse = np.zeros(COLUMNS)
    positions = rng.choice(COLUMNS, 20, replace=False)
    sparse[positions] = rng.standard_normal(20)
    rows.append(sparse)
    mixed = gaussian(0.02)
    mixed[::16] *= 50      # one large value in every 16-sub-block
    rows.append(mixed)
    skewed = gaussian(0.02) + 0.03
    skewed[128:160] = rng.uniform(0.5, 0.6, 32)  # a sub-block with min > 0 (clamped min path)
    rows.append(skewed)
    for _ in range(3):
        rows.append(gaussian(0.05))
    return np.stack(rows).astype(np.float32)


def quantize(lib, qtype, values):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    flat = np.ascontiguousarray(values.reshape(-1), dtype=np.float32)
    output = np.zeros(flat.size // block_size * type_size, dtype=np.uint8)
    function = getattr(lib, f"quantize_row_{qtype.name[:2].lower()}_K_ref")
    function.restype = None
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    function(flat.ctypes.data, output.ctypes.data, flat.size)
    return output.reshape(values.shape[0], -1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--libggml", required=True, help="libggml-base.so built as Fixtures/kquant/README.md says")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    lib = ctypes.CDLL(os.path.abspath(args.libggml))
    rng = np.random.default_rng(20261130)
    values = input_rows(rng)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "kquant.gguf")
    writer = gguf.GGUFWriter(path, arch="kquant-goldens")
    writer.add_string("goldens.source", "ggml quantize_row_q*_K_ref via ctypes")
    writer.add_string("goldens.gguf_py", importlib.metadata.version("gguf"))
    writer.add_tensor("input", values)
    for qtype in TYPES:
        blocks = quantize(lib, qtype, values)
        decoded = gguf.quants.dequantize(blocks, qtype)
        error = np.linalg.norm(decoded - values) / max(np.linalg.norm(values), 1e-30)
        print(f"{qtype.name}: {blocks.nbytes} bytes, relative error of the decoded input {error:.4f}")
        writer.add_tensor(qtype.name, blocks, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
