#!/usr/bin/env python3
"""Writes safetensors goldens with the reference writer (the `safetensors` Python package,
Rust core) for Tests/CheckpointsTests/SafetensorsGoldenTests.swift.

    python3 -m venv /tmp/st && /tmp/st/bin/pip install safetensors numpy
    /tmp/st/bin/python Tests/Generators/safetensors_reference_files.py

Files (in Tests/CheckpointsTests/Fixtures/safetensors/):
  worked_example.safetensors  formats.md §1.1: one F32 tensor w = [1, -2], N = 88.
  mixed_dtypes.safetensors    every dtype Loquat has, names chosen so that dtype rank and
                              name order disagree, plus a scalar, a zero-size tensor and a
                              name that needs JSON escaping. Values are i * 3 + 1 mod 256 bytes.
"""
import os

import numpy as np
import safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "CheckpointsTests", "Fixtures", "safetensors")

# name -> (reference TensorSpec dtype, safetensors dtype, shape, bytes per element)
MIXED = {
    "a.bool": ("bool", [3], 1),
    "b.u8": ("uint8", [2, 2], 1),
    "c.i8": ("int8", [3], 1),
    "d.f8_e5m2": ("float8_e5m2", [2], 1),
    "e.f8_e4m3": ("float8_e4m3fn", [2], 1),
    "f.i16": ("int16", [2], 2),
    "g.u16": ("uint16", [1], 2),
    "h.f16": ("float16", [3], 2),
    "i.bf16": ("bfloat16", [2, 1], 2),
    "j.i32": ("int32", [2], 4),
    "k.u32": ("uint32", [1], 4),
    "l.f32": ("float32", [2, 3], 4),
    "m.f32.scalar": ("float32", [], 4),
    "n.f32.empty": ("float32", [0, 4], 4),
    "o.f64": ("float64", [2], 8),
    "p.i64": ("int64", [1, 2], 8),
    "q.u64": ("uint64", [1], 8),
    "r \"quoted\"\\path\ttab\u00e9": ("float32", [1], 4),
}


def pattern(byte_count, seed):
    return np.array([(i * 3 + 1 + seed) % 256 for i in range(byte_count)], dtype=np.uint8)


def write(name, tensors):
    buffers = []
    specs = {}
    for seed, (key, (dtype, shape, size)) in enumerate(tensors.items()):
        count = int(np.prod(shape)) if shape else 1
        data = pattern(count * size, seed)
        buffers.append(data)
        specs[key] = safetensors.TensorSpec(dtype=dtype, shape=shape, data_ptr=data.ctypes.data, data_len=data.nbytes)
    blob = safetensors.serialize(specs, metadata={"format": "pt"})
    with open(os.path.join(OUT, name), "wb") as handle:
        handle.write(blob)
    print(name, len(blob), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    w = np.array([1.0, -2.0], dtype=np.float32)
    blob = safetensors.serialize(
        {"w": safetensors.TensorSpec(dtype="float32", shape=[2], data_ptr=w.ctypes.data, data_len=w.nbytes)},
        metadata={"format": "pt"})
    with open(os.path.join(OUT, "worked_example.safetensors"), "wb") as handle:
        handle.write(blob)
    print("worked_example.safetensors", len(blob), "bytes")
    write("mixed_dtypes.safetensors", MIXED)


if __name__ == "__main__":
    main()
