/// Scalar reference of bitsandbytes 4-bit quantization, written as bnb's PyTorch backend states
/// it (`bitsandbytes/backends/default/ops.py`: `quantize_4bit`, `_dequantize_4bit_compute`):
///
///     absmax_k = max_{i∈k} |w_i|                       full blocks (stored unclamped)
///     u_i      = clamp(w_i · (1 / max(absmax_k, 1e-38)), −1, 1)
///     last ragged block: a = max(max|w_i|, 1e-38) (stored), u_i = clamp(w_i / a, −1, 1)
///     u padded with one 0 when n is odd
///     code_i   = sortedCodes[#{k : midpoint_k < u_i}]   (torch.bucketize, right=False)
///     byte_j   = code_{2j} << 4 | code_{2j+1}
///     ŵ_i      = quantMap[code_i] · absmax_{⌊i/B⌋}      (float32)
///
/// The fast paths (`BitsAndBytesKernels`) must agree with this bit for bit.
public enum BitsAndBytesReference {
    /// Packed codes and per-block absmax of `values` (the flattened matrix).
    public static func quantize(_ values: [Float], blockSize: Int,
                                quantType: BitsAndBytesQuantType) -> (packed: [UInt8], absmax: [Float]) {
        let codebook = BitsAndBytesCodebook.of(quantType)
        let count = values.count
        let fullCount = count - count % blockSize
        var scaled = [Float]()
        scaled.reserveCapacity(count + 1)
        var absmax = [Float]()
        for start in stride(from: 0, to: fullCount, by: blockSize) {
            let block = values[start..<(start + blockSize)]
            let maximum = block.map { abs($0) }.max()!
            absmax.append(maximum)
            let reciprocal = 1 / max(maximum, Float(1e-38))
            scaled += block.map { min(max($0 * reciprocal, -1), 1) }
        }
        if fullCount < count {
            let block = values[fullCount...]
            let maximum = max(block.map { abs($0) }.max()!, Float(1e-38))
            absmax.append(maximum)
            scaled += block.map { min(max($0 / maximum, -1), 1) }
        }
        if count % 2 == 1 { scaled.append(0) }
        let codes = scaled.map { codebook.code(forScaled: $0) }
        let packed = stride(from: 0, to: codes.count, by: 2).map { codes[$0] << 4 | codes[$0 + 1] }
        return (packed, absmax)
    }

    /// `quantMap[code_i] · absmax[i / blockSize]` for the first `count` codes of `packed`.
    public static func dequantize(packed: [UInt8], absmax: [Float], count: Int, blockSize: Int,
                                  quantMap: [Float]) -> [Float] {
        (0..<count).map { index in
            let byte = packed[index / 2]
            let code = index % 2 == 0 ? byte >> 4 : byte & 0x0F
            return quantMap[Int(code)] * absmax[index / blockSize]
        }
    }
}
