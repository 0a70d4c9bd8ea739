import LoquatSupport
import Tensors

/// Reference quantizers for the legacy 32-element block types, as ggml's `quantize_row_*_ref`
/// (`ggml/src/ggml-quants.c`) and gguf-py's `quants.py` compute them (formats.md §2.6). The
/// arithmetic is unfused Float32 in gguf-py's order (`x·(1/d) + 8.5`, then truncation), so the
/// bytes match gguf-py exactly; ggml built with FMA contraction may differ in rare ties.
extension GGMLBlockCodec {
    /// Encodes a row-major `rowCount × columnCount` Float32 matrix as `dtype`, block by block,
    /// in parallel. `columnCount` must be a multiple of the block size.
    public static func encode(_ values: [Float], rowCount: Int, columnCount: Int, as dtype: DType) throws -> [UInt8] {
        try values.withUnsafeBufferPointer {
            try encode($0, rowCount: rowCount, columnCount: columnCount, as: dtype)
        }
    }

    public static func encode(_ values: UnsafeBufferPointer<Float>, rowCount: Int, columnCount: Int,
                              as dtype: DType) throws -> [UInt8] {
        guard rowCount >= 0, columnCount >= 0,
              rowCount.multipliedReportingOverflow(by: columnCount) == (values.count, false) else {
            throw GGMLBlockCodecError.valueCountMismatch(valueCount: values.count, rowCount: rowCount,
                                                         columnCount: columnCount)
        }
        guard let encodeBlock = blockEncoder(for: dtype) else {
            throw TensorError.unsupportedDType(name: "", dtype: dtype, operation: "GGML encoding")
        }
        guard columnCount % dtype.blockSize == 0 else {
            throw TensorError.notWholeBlocks(dtype: dtype, elementCount: columnCount)
        }
        let blockSize = dtype.blockSize, blockByteCount = dtype.blockByteCount
        let blockCount = values.count / blockSize
        var output = [UInt8](repeating: 0, count: blockCount * blockByteCount)
        guard blockCount > 0 else { return output }
        let source = values.baseAddress!
        output.withUnsafeMutableBytes { bytes in
            let target = bytes.baseAddress!
            Parallel.forEachChunk(blockCount, minimumChunk: max(1, 16_384 / blockSize)) { blocks in
                for b in blocks { encodeBlock(source + b * blockSize, target + b * blockByteCount) }
            }
        }
        return output
    }

    /// Writes one block of `dtype` from its `blockSize` inputs.
    typealias BlockEncoder = (_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) -> Void

    static func blockEncoder(for dtype: DType) -> BlockEncoder? {
        switch dtype {
        case .f32: return { x, block in block.storeBytes(of: x[0].bitPattern.littleEndian, as: UInt32.self) }
        case .f16: return { x, block in storeHalf(x[0], block, 0) }
        case .bf16:
            return { x, block in block.storeBytes(of: FloatFormats.bfloat16Bits(from: x[0]).littleEndian, as: UInt16.self) }
        case .q8_0: return quantizeQ8_0
        case .q4_0: return { quantizeSymmetric($0, $1, levels: 16) }
        case .q5_0: return { quantizeSymmetric($0, $1, levels: 32) }
        case .q4_1: return { quantizeAffine($0, $1, levels: 16) }
        case .q5_1: return { quantizeAffine($0, $1, levels: 32) }
        case .q2_K: return quantizeQ2_K
        case .q3_K: return quantizeQ3_K
        case .q4_K: return { quantizeQ45_K($0, $1, hasHighBit: false) }
        case .q5_K: return { quantizeQ45_K($0, $1, hasHighBit: true) }
        case .q6_K: return quantizeQ6_K
        default: return nil
        }
    }

    @inline(__always)
    static func storeHalf(_ value: Float, _ block: UnsafeMutableRawPointer, _ offset: Int) {
        block.storeBytes(of: FloatFormats.halfBits(from: value).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// `min(maximum, trunc(value))` as a code; NaN and negative values give 0 (as numpy's
    /// `astype(uint8).clip(0, max)` does for the values that can occur).
    @inline(__always)
    static func truncatedCode(_ value: Float, maximum: Int) -> Int {
        let truncated = value.rounded(.towardZero)
        guard truncated >= 0 else { return 0 }
        return truncated >= Float(maximum) ? maximum : Int(truncated)
    }

    /// Q8_0: `d = max|x|/127`, `q = roundf(x·(1/d))` (half away from zero), `d` stored as f16.
    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for i in 0..<32 { amax = max(amax, abs(x[i])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, block, 0)
        for i in 0..<32 {
            let q = (x[i] * id).rounded(.toNearestOrAwayFromZero)
            let code: Int8 = q.isNaN ? 0 : Int8(max(-128, min(127, q)))
            block.storeBytes(of: code, toByteOffset: 2 + i, as: Int8.self)
        }
    }

    /// Q4_0 / Q5_0 (`levels` 16 / 32): `max` = the element of largest magnitude with its sign,
    /// `d = max / −(levels/2)`, `q = min(levels−1, trunc(x·(1/d) + levels/2 + 0.5))`.
    /// Layout: `d`, [Q5: `qh` u32 of fifth bits], `qs[16]` with elements 0–15 in low nibbles.
    static func quantizeSymmetric(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer, levels: Int) {
        var amax: Float = 0, signedMax: Float = 0
        for i in 0..<32 where amax < abs(x[i]) {
            amax = abs(x[i])
            signedMax = x[i]
        }
        let d = signedMax / -Float(levels / 2)
        let id: Float = d != 0 ? 1 / d : 0
        let offset = Float(levels / 2) + 0.5
        storeHalf(d, block, 0)
        packCodes(block, qsOffset: levels == 32 ? 6 : 2, qhOffset: levels == 32 ? 2 : nil) {
            truncatedCode(x[$0] * id + offset, maximum: levels - 1)
        }
    }

    /// Q4_1 / Q5_1 (`levels` 16 / 32): `d = (max − min)/(levels−1)`, `m = min`,
    /// `q = min(levels−1, trunc((x − min)·(1/d) + 0.5))`. Layout: `d`, `m`, [Q5: `qh`], `qs[16]`.
    static func quantizeAffine(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer, levels: Int) {
        var minimum = x[0], maximum = x[0]
        for i in 1..<32 {
            if x[i] < minimum { minimum = x[i] }
            if x[i] > maximum { maximum = x[i] }
        }
        let d = (maximum - minimum) / Float(levels - 1)
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, block, 0)
        storeHalf(minimum, block, 2)
        packCodes(block, qsOffset: levels == 32 ? 8 : 4, qhOffset: levels == 32 ? 4 : nil) {
            truncatedCode((x[$0] - minimum) * id + 0.5, maximum: levels - 1)
        }
    }

    /// Packs the 32 codes `code(e)`: low four bits of element j (j < 16) in the low nibble of
    /// `qs[j]`, of element j + 16 in its high nibble; for 5-bit codes bit 4 of element j goes to
    /// bit j of the u32 at `qhOffset`.
    @inline(__always)
    static func packCodes(_ block: UnsafeMutableRawPointer, qsOffset: Int, qhOffset: Int?, code: (Int) -> Int) {
        var qh: UInt32 = 0
        for j in 0..<16 {
            let low = code(j), high = code(j + 16)
            block.storeBytes(of: UInt8((low & 0xF) | (high & 0xF) << 4), toByteOffset: qsOffset + j, as: UInt8.self)
            qh |= UInt32((low >> 4) & 1) << UInt32(j) | UInt32((high >> 4) & 1) << UInt32(j + 16)
        }
        if let qhOffset { block.storeBytes(of: qh.littleEndian, toByteOffset: qhOffset, as: UInt32.self) }
    }
}
