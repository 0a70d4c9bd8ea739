import Tensors

/// nf4 and fp4, bit-identical to bitsandbytes 0.50.2 on the CPU (algorithms.md §1, formats.md §4.1).
///
/// The weight `[out, in]` is flattened row-major into `w[0..<n]`; block `k` is
/// `w[k·B ..< min(n, (k+1)·B)]` with `B = spec.groupSize` (default 64), so blocks may straddle
/// rows. Per block `absmax_k = max |w_i|` and `code_i = q(w_i · (1/absmax_k))` with the codebook's
/// midpoint rule (`BitsAndBytesCodebook`); two codes per byte, the first in the high nibble.
/// What is matched is bnb's PyTorch backend, which bnb runs for `quantize_4bit` on a CPU
/// (`bitsandbytes/backends/default/ops.py`); CUDA differs on zero blocks (its bytes, not values):
/// - the reciprocal uses `max(absmax, 1e-38)`, so a zero block gets the code of 0.0 (NF4 7,
///   FP4 0) and keeps `absmax = 0`;
/// - a ragged last block divides by `max(absmax, 1e-38)` instead of multiplying by its
///   reciprocal, and stores that clamped absmax (1e-38 for an all-zero ragged block);
/// - an odd element count is padded with the code of 0.0.
/// With `spec.doubleQuant` the absmax vector is double-quantized as `BitsAndBytesDynamicMap` says.
public enum BitsAndBytesFourBit {
    public static let isImplemented = true

    /// Quantizes `weight` per `spec` (`.nf4` or `.fp4`; `groupSize` a power of two in 32…4096,
    /// checked by `spec.validate()`).
    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        try quantizeFourBit(weight, spec: spec)
    }

    /// The concrete form of `quantize`. `torchThreadCount` only matters with double quantization
    /// and more than 32768 blocks (see `BitsAndBytesNestedAbsmax.init(quantizing:torchThreadCount:)`).
    public static func quantizeFourBit(_ weight: Matrix<Float>, spec: QuantizationSpec,
                                       torchThreadCount: Int = 1) throws -> BitsAndBytesFourBitWeight {
        try spec.validate(columnCount: weight.columnCount)
        guard let quantType = BitsAndBytesQuantType(method: spec.method) else {
            throw QuantizationError.invalidParameter("method", "bitsandbytes 4-bit takes nf4 or fp4, got \(spec.method.rawValue)")
        }
        guard weight.values.count > 0 else {
            throw QuantizationError.invalidParameter("shape", "an empty \(weight.rowCount)×\(weight.columnCount) matrix has nothing to quantize")
        }
        let codebook = BitsAndBytesCodebook.of(quantType)
        let (packed, absmax) = weight.values.withUnsafeBufferPointer {
            BitsAndBytesKernels.quantize($0, blockSize: spec.groupSize, codebook: codebook)
        }
        let statistics: BitsAndBytesAbsmax = spec.doubleQuant
            ? .doubleQuantized(BitsAndBytesNestedAbsmax(quantizing: absmax, torchThreadCount: torchThreadCount))
            : .float32(absmax)
        return try BitsAndBytesFourBitWeight(rowCount: weight.rowCount, columnCount: weight.columnCount,
                                             quantType: quantType, blockSize: spec.groupSize,
                                             packedCodes: packed, absmax: statistics, quantMap: codebook.values)
    }
}

/// The per-block scales as bnb stores them.
public enum BitsAndBytesAbsmax: Sendable, Equatable {
    /// One float32 absmax per block (`weight.absmax` F32).
    case float32([Float])
    /// Double quantization (`compress_statistics=True`).
    case doubleQuantized(BitsAndBytesNestedAbsmax)
}

/// Double-quantized absmax: `absmax_i ≈ nestedQuantMap[quantizedAbsmax_i] · nestedAbsmax[i / 256] + offset`.
public struct BitsAndBytesNestedAbsmax: Sendable, Equatable {
    /// `qabsmax`, one code per first-level block (`weight.absmax` U8 in a checkpoint).
    public let quantizedAbsmax: [UInt8]
    /// `absmax2`, one float32 per `nestedBlockSize` first-level blocks (`weight.nested_absmax`).
    public let nestedAbsmax: [Float]
    /// The float32 mean of the first-level absmax subtracted before quantizing (`nested_offset`).
    public let offset: Float
    /// The 256-entry signed dynamic map (`weight.nested_quant_map`).
    public let nestedQuantMap: [Float]
    public let nestedBlockSize: Int

    public init(quantizedAbsmax: [UInt8], nestedAbsmax: [Float], offset: Float,
                nestedQuantMap: [Float] = BitsAndBytesDynamicMap.signed,
                nestedBlockSize: Int = BitsAndBytesDynamicMap.nestedBlockSize) throws {
        guard nestedQuantMap.count == 256, nestedBlockSize > 0,
              nestedAbsmax.count == (quantizedAbsmax.count + nestedBlockSize - 1) / nestedBlockSize else {
            throw QuantizationError.invalidParameter("doubleQuant", "\(quantizedAbsmax.count) codes need \((quantizedAbsmax.count + max(1, nestedBlockSize) - 1) / max(1, nestedBlockSize)) nested absmax values and a 256-entry map")
        }
        self.quantizedAbsmax = quantizedAbsmax
        self.nestedAbsmax = nestedAbsmax
        self.offset = offset
        self.nestedQuantMap = nestedQuantMap
        self.nestedBlockSize = nestedBlockSize
    }

    /// bnb's double quantization of a first-level absmax vector: `offset = torch.mean(absmax)`,
    /// then the 8-bit blockwise CPU quantizer on `absmax − offset` (float32) in blocks of 256.
    /// `torchThreadCount`: the torch threads of the bnb run to match (it decides the last bit of
    /// the offset above 32768 blocks); 1 is Loquat's fixed convention.
    public init(quantizing absmax: [Float], torchThreadCount: Int = 1) {
        let offset = absmax.withUnsafeBufferPointer { BitsAndBytesDynamicMap.torchMean($0, torchThreadCount: torchThreadCount) }
        let centered = absmax.map { $0 - offset }
        let (codes, nested) = BitsAndBytesDynamicMap.quantizeBlockwise(centered)
        // Sizes hold by construction.
        try! self.init(quantizedAbsmax: codes, nestedAbsmax: nested, offset: offset)
    }

    /// The float32 absmax bnb's `dequantize_4bit` rebuilds: `map[q] · absmax2` then `+ offset`.
    public func dequantizedAbsmax() -> [Float] {
        BitsAndBytesDynamicMap.dequantizeBlockwise(quantizedAbsmax, absmax: nestedAbsmax, map: nestedQuantMap,
                                                   blockSize: nestedBlockSize).map { $0 + offset }
    }
}

/// A matrix in bitsandbytes' 4-bit storage: exactly the tensors bnb keeps for it.
public struct BitsAndBytesFourBitWeight: QuantizedWeight, Equatable {
    public let rowCount: Int
    public let columnCount: Int
    public let quantType: BitsAndBytesQuantType
    /// Elements per block of the flattened matrix (bnb `blocksize`).
    public let blockSize: Int
    /// `(n + 1) / 2` bytes, element `2j` in the high nibble of byte `j`, element `2j+1` in the low.
    public let packedCodes: [UInt8]
    public let absmax: BitsAndBytesAbsmax
    /// The 16-entry code table (`weight.quant_map`).
    public let quantMap: [Float]

    public init(rowCount: Int, columnCount: Int, quantType: BitsAndBytesQuantType, blockSize: Int,
                packedCodes: [UInt8], absmax: BitsAndBytesAbsmax, quantMap: [Float]? = nil) throws {
        let count = rowCount * columnCount
        let blockCount = (count + max(1, blockSize) - 1) / max(1, blockSize)
        let absmaxCount: Int
        switch absmax {
        case let .float32(values): absmaxCount = values.count
        case let .doubleQuantized(nested): absmaxCount = nested.quantizedAbsmax.count
        }
        guard (32...4096).contains(blockSize), blockSize & (blockSize - 1) == 0 else {
            throw QuantizationError.invalidParameter("groupSize", "bitsandbytes block sizes are powers of two from 32 to 4096, got \(blockSize)")
        }
        guard rowCount >= 0, columnCount >= 0, packedCodes.count == (count + 1) / 2, absmaxCount == blockCount,
              (quantMap?.count ?? 16) == 16 else {
            throw QuantizationError.invalidParameter("shape", "\(rowCount)×\(columnCount) in blocks of \(blockSize) needs \((count + 1) / 2) packed bytes and \(blockCount) absmax values, got \(packedCodes.count) and \(absmaxCount)")
        }
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.quantType = quantType
        self.blockSize = blockSize
        self.packedCodes = packedCodes
        self.absmax = absmax
        self.quantMap = quantMap ?? BitsAndBytesCodebook.of(quantType).values
    }

    public var spec: QuantizationSpec {
        QuantizationSpec(method: quantType == .nf4 ? .nf4 : .fp4, bits: 4, groupSize: blockSize, doubleQuant: isDoubleQuantized)
    }

    public var isDoubleQuantized: Bool {
        if case .doubleQuantized = absmax { return true }
        return false
    }

    public var blockCount: Int { (elementCount + blockSize - 1) / blockSize }

    /// The float32 per-block scales the 4-bit dequantization multiplies by.
    public func floatAbsmax() -> [Float] {
        switch absmax {
        case let .float32(values): return values
        case let .doubleQuantized(nested): return nested.dequantizedAbsmax()
        }
    }

    /// Codes (packed bytes, pad nibble included) + per-block statistics + codebooks:
    /// `8·⌈n/2⌉ + 32·blocks + 16·32` bits, or with double quantization
    /// `8·⌈n/2⌉ + 8·blocks + 32·⌈blocks/256⌉ + 32 (offset) + 16·32 + 256·32`.
    public var storageBitCount: Int {
        let codeBits = 8 * packedCodes.count + 32 * quantMap.count
        switch absmax {
        case let .float32(values):
            return codeBits + 32 * values.count
        case let .doubleQuantized(nested):
            return codeBits + 8 * nested.quantizedAbsmax.count + 32 * nested.nestedAbsmax.count + 32 + 32 * nested.nestedQuantMap.count
        }
    }

    /// `quantMap[code_i] · absmax[i / blockSize]` in float32, as bnb's `dequantize_4bit` (PyTorch
    /// backend) computes it; reshaped `[rowCount, columnCount]`.
    public func dequantized() -> Matrix<Float> {
        // Every element is written by the kernel, so the output is not zero-filled first.
        let values = [Float](unsafeUninitializedCapacity: elementCount) { output, initializedCount in
            HugePages.advise(output)
            dequantize(into: output)
            initializedCount = elementCount
        }
        return Matrix(rowCount: rowCount, columnCount: columnCount, values: values)
    }

    /// `dequantized()` written into caller memory of exactly `elementCount` floats, row-major.
    public func dequantize(into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count == elementCount, "output holds \(output.count) floats, the matrix \(elementCount)")
        let scales = floatAbsmax()
        packedCodes.withUnsafeBufferPointer { packed in
            scales.withUnsafeBufferPointer { absmax in
                BitsAndBytesKernels.dequantize(packed: packed, absmax: absmax, quantMap: quantMap, blockSize: blockSize, into: output)
            }
        }
    }
}
