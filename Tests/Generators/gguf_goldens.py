#!/usr/bin/env python3
"""Generate the GGUF golden fixtures for Tests/CheckpointsTests (see README-gguf.md).

Everything here is computed by gguf-py (PyPI package `gguf`), the numpy reference that
llama.cpp ships, so the Swift tests compare against an independent implementation:

  blocks.gguf    one small tensor of random blocks for every block type Loquat decodes, plus
                 `<TYPE>.dequantized` (F32) = gguf.quants.dequantize of those bytes.
  quantize.gguf  `input` (F32, 8 x 64, with awkward rows: zeros, ties, sign-symmetric maxima)
                 and `<TYPE>` = gguf.quants.quantize(input) for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16.
  metadata.gguf  one key of every GGUF value type (nested and string arrays too), alignment 64,
                 and tensors of rank 1-3 written by gguf.GGUFWriter.
  smollm2-q4_1-checksums.txt   (only with --model) checksums of gguf-py's dequantization of a
                 few tensors of SmolLM2-135M-Instruct.Q4_1.gguf, for the real-model test.

Checksum: float32 bit patterns b_i as uint64, sum of b_i * (2i + 1) modulo 2^64 (any single
changed bit changes it, since the weights are odd).

Usage: python3 Tests/Generators/gguf_goldens.py [--model PATH] [--out DIR]
"""
import argparse
import importlib.metadata
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "CheckpointsTests", "Fixtures", "gguf")

# Offsets of the f16 scale fields (d, dmin, m) inside each block (formats.md section 2.5).
HALF_FIELDS = {
    T.Q8_0: [0], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.IQ4_NL: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
ROWS = 3


def random_blocks(rng, qtype, rows, blocks_per_row):
    """Random block bytes whose f16 scale fields are finite, so every output is a number."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows * blocks_per_row, type_size), dtype=np.uint8)
    for offset in HALF_FIELDS[qtype]:
        scales = (rng.standard_normal(rows * blocks_per_row) * 0.02).astype(np.float16)
        data[:, offset:offset + 2] = scales.view(np.uint8).reshape(-1, 2)
    return data.reshape(rows, blocks_per_row * type_size)


def plain_bytes(rng, qtype, rows, columns):
    if qtype == T.F32:
        return rng.standard_normal((rows, columns)).astype(np.float32)
    if qtype == T.F16:
        values = rng.standard_normal((rows, columns)) * np.exp2(rng.integers(-20, 10, (rows, columns)))
        values = values.astype(np.float16)
        values[0, :4] = np.array([0.0, -0.0, 6e-8, -65504.0], dtype=np.float16)  # zero, -0, subnormal, max
        return values
    # BF16: random bit patterns with the all-ones exponent (inf/NaN) excluded.
    bits = rng.integers(0, 1 << 16, size=(rows, columns), dtype=np.uint32).astype(np.uint16)
    bits[(bits & 0x7F80) == 0x7F80] &= 0xBFFF
    return bits.view(np.uint8).reshape(rows, columns * 2)


def write_blocks(out, rng):
    writer = gguf.GGUFWriter(os.path.join(out, "blocks.gguf"), "test")
    for qtype in [T.F32, T.F16, T.BF16]:
        data = plain_bytes(rng, qtype, ROWS, 64)
        if qtype == T.BF16:
            writer.add_tensor(qtype.name, data, raw_dtype=qtype)
            values = gguf.quants.dequantize(data, qtype)
        else:
            writer.add_tensor(qtype.name, data)
            values = data.astype(np.float32)
        writer.add_tensor(qtype.name + ".dequantized", values.astype(np.float32).reshape(ROWS, 64))
    for qtype in HALF_FIELDS:
        block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
        data = random_blocks(rng, qtype, ROWS, 2)
        writer.add_tensor(qtype.name, data, raw_dtype=qtype)
        values = gguf.quants.dequantize(data, qtype).astype(np.float32)
        assert values.shape == (ROWS, 2 * block_size) and np.isfinite(values).all()
        writer.add_tensor(qtype.name + ".dequantized", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantizer_input(rng):
    rows = [
        rng.standard_normal(64),
        rng.standard_normal(64) * 1e-3,
        rng.integers(-8, 8, 64).astype(np.float64),           # exact ties for x/d + 8.5
        np.concatenate([[2.0, -2.0], rng.uniform(-2, 2, 30), [-3.0, 3.0], rng.uniform(-3, 3, 30)]),
        np.zeros(64),                                          # d = 0
        rng.uniform(-1000, 1000, 64),
        np.linspace(-1, 1, 64),
        np.concatenate([rng.standard_normal(63) * 0.01, [40.0]]),  # one outlier
    ]
    return np.stack(rows).astype(np.float32)


def write_quantize(out, rng):
    values = quantizer_input(rng)
    writer = gguf.GGUFWriter(os.path.join(out, "quantize.gguf"), "test")
    writer.add_tensor("input", values)
    for qtype in [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.BF16]:
        writer.add_tensor(qtype.name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_metadata(out, rng):
    V = gguf.GGUFValueType
    writer = gguf.GGUFWriter(os.path.join(out, "metadata.gguf"), "test")
    writer.add_custom_alignment(64)
    writer.add_key_value("test.uint8", 200, V.UINT8)
    writer.add_key_value("test.int8", -100, V.INT8)
    writer.add_key_value("test.uint16", 60000, V.UINT16)
    writer.add_key_value("test.int16", -30000, V.INT16)
    writer.add_key_value("test.uint32", 4000000000, V.UINT32)
    writer.add_key_value("test.int32", -2000000000, V.INT32)
    writer.add_key_value("test.float32", 3.25, V.FLOAT32)
    writer.add_key_value("test.bool", True, V.BOOL)
    writer.add_key_value("test.string", "h\u00e9llo \u2713", V.STRING)
    writer.add_key_value("test.uint64", 2**63 + 5, V.UINT64)
    writer.add_key_value("test.int64", -(2**62), V.INT64)
    writer.add_key_value("test.float64", 1e-300, V.FLOAT64)
    writer.add_array("test.array.int32", [1, -2, 3])
    writer.add_array("test.array.float32", [0.5, -1.5])
    writer.add_array("test.array.bool", [True, False])
    writer.add_array("test.array.string", ["a", "bb", ""])
    writer.add_array("test.array.nested", [[1, 2], [3]])
    writer.add_tensor("vector", np.arange(5, dtype=np.float32) - 2)
    writer.add_tensor("cube", (np.arange(24, dtype=np.float32) / 8).astype(np.float16).reshape(2, 3, 4))
    writer.add_tensor("matrix", gguf.quants.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), T.Q8_0),
                      raw_dtype=T.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def checksum(values):
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).ravel().astype(np.uint64)
    weights = np.arange(bits.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int(np.sum(bits * weights, dtype=np.uint64))


def write_model_checksums(out, model):
    reader = gguf.GGUFReader(model)
    wanted = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_norm.weight",
              "blk.29.ffn_down.weight", "output_norm.weight"]
    by_name = {t.name: t for t in reader.tensors}
    with open(os.path.join(out, "smollm2-q4_1-checksums.txt"), "w") as f:
        f.write("# name type element_count checksum first_value (gguf-py dequantization)\n")
        for name in wanted:
            t = by_name[name]
            values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
            f.write(f"{name} {t.tensor_type.name} {values.size} {checksum(values)} {float(values[0])!r}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--model", help="SmolLM2-135M-Instruct.Q4_1.gguf, for smollm2-q4_1-checksums.txt")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("gguf", importlib.metadata.version("gguf"), "numpy", np.__version__)
    rng = np.random.default_rng(20260512)
    write_blocks(args.out, rng)
    write_quantize(args.out, rng)
    write_metadata(args.out, rng)
    if args.model:
        write_model_checksums(args.out, args.model)


if __name__ == "__main__":
    main()
