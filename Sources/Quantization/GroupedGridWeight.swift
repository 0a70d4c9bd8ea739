import Tensors

/// What a code means before scaling: `level(code)` in `x̂ = scale · (level(code) − zeroPoint)`.
public enum GridLevels: Sendable, Equatable {
    /// Uniform integer grid: `level(c) = c` for unsigned codes `c ∈ 0…2^bits − 1`.
    case integer
    /// NormalFloat codebook (LoftQ `create_normal_map`), `2^bits` sorted Float32 values in
    /// [−1, 1]; stored with the tensor (it is not a format constant).
    case codebook([Float])
    /// The FP8 encoding itself: `level(c)` decodes byte `c` (formats.md §1.2); a format constant.
    case fp8(FP8Format)

    /// `level(c)` for every byte value `c` (256 entries; codes never exceed the grid's range).
    public var table: [Float] {
        switch self {
        case .integer: return (0..<256).map { Float($0) }
        case let .codebook(values): return (0..<256).map { $0 < values.count ? values[$0] : 0 }
        case let .fp8(format): return FP8Encoding.decodeTable(format)
        }
    }
}

/// The zero points of a grid, one per group, in code units.
public enum GridZeroPoints: Sendable, Equatable {
    /// No zero point (codebook and FP8 grids): `x̂ = scale · level(code)`.
    case none
    /// Symmetric INT-k with offset codes: the constant `2^(bits−1)`, implied by `bits`, not stored.
    case midpoint
    /// Asymmetric INT-k (GPTQ `find_params`): integers in `0…2^bits − 1`, stored in `bits` bits.
    case integer([Float])
    /// HQQ: a float zero per group, rounded to FP16 and stored in 16 bits (HQQ's `meta["zero"]`).
    case float16([Float])
}

/// One stored form for every grid-quantized family (int, nf, fp8, hqq, gptq).
///
/// `W [rowCount = out, columnCount = in]` is cut into groups of `groupSize` consecutive input
/// columns of one row (`spec.groupSize == 0` means one group per row, `groupSize = columnCount`).
/// Element `(r, c)` of group `g = group(c)` dequantizes to
///
///     x̂[r, c] = scales[r·groupCount + g] · (level(codes[r·columnCount + c]) − zero[r·groupCount + g])
///
/// with `group(c) = c / groupSize`, or `groupIndex[c]` when GPTQ's act-order stored a `g_idx`.
///
/// Storage convention (`storageBitCount`): codes `bits` each (unpacked `UInt8` in memory);
/// scales `scaleBitCount` each — 16 for int/hqq/gptq-int, whose scales are rounded to FP16 before
/// any code is chosen (as GPTQ and HQQ exports store them), 32 for nf and fp8 (bitsandbytes and
/// LoftQ keep an fp32 absmax; FP8 per-channel scales of ~1e-5 would underflow FP16); zero points
/// per `GridZeroPoints`; an nf codebook `2^bits · 32` bits once; `g_idx` 32 bits per column.
public struct GroupedGridWeight: QuantizedWeight {
    public let rowCount: Int
    public let columnCount: Int
    public let spec: QuantizationSpec
    /// Elements per group along a row (`columnCount` when per-channel).
    public let groupSize: Int
    /// `[rowCount, columnCount]` row-major codes in the original column order.
    public let codes: [UInt8]
    /// `[rowCount, groupCount]` row-major scales.
    public let scales: [Float]
    public let zeroPoints: GridZeroPoints
    public let levels: GridLevels
    /// GPTQ `g_idx`: the group of each original input column, when not `c / groupSize`.
    public let groupIndex: [Int32]?
    /// Bits stored per scale (16 or 32; see the type's storage convention).
    public let scaleBitCount: Int
    /// Bits per code.
    public let bits: Int

    public init(rowCount: Int, columnCount: Int, spec: QuantizationSpec, bits: Int, groupSize: Int,
                codes: [UInt8], scales: [Float], zeroPoints: GridZeroPoints, levels: GridLevels,
                groupIndex: [Int32]? = nil, scaleBitCount: Int) {
        precondition(groupSize > 0 || columnCount == 0, "groupSize must be positive")
        precondition(codes.count == rowCount * columnCount, "codes do not fill \(rowCount)×\(columnCount)")
        let groupCount = groupSize > 0 ? columnCount / groupSize : 0
        precondition(scales.count == rowCount * groupCount, "one scale per group expected")
        precondition(groupIndex.map { $0.count == columnCount } ?? true, "g_idx needs one entry per column")
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.spec = spec
        self.bits = bits
        self.groupSize = groupSize
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.levels = levels
        self.groupIndex = groupIndex
        self.scaleBitCount = scaleBitCount
    }

    /// Groups per row.
    public var groupCount: Int { groupSize > 0 ? columnCount / groupSize : 0 }

    /// The zero point of every group (`[rowCount, groupCount]`), in code units.
    public var zeroPointValues: [Float] {
        switch zeroPoints {
        case .none: return [Float](repeating: 0, count: scales.count)
        case .midpoint: return [Float](repeating: Float(1 << (bits - 1)), count: scales.count)
        case let .integer(values), let .float16(values): return values
        }
    }

    public var storageBitCount: Int {
        let groups = rowCount * groupCount
        var total = rowCount * columnCount * bits + groups * scaleBitCount
        switch zeroPoints {
        case .none, .midpoint: break
        case .integer: total += groups * bits
        case .float16: total += groups * 16
        }
        if case let .codebook(values) = levels { total += values.count * 32 }
        if groupIndex != nil { total += columnCount * 32 }
        return total
    }

    /// The group of input column `column`.
    @inlinable
    public func group(ofColumn column: Int) -> Int {
        if let groupIndex { return Int(groupIndex[column]) }
        return column / groupSize
    }

    /// Fast path: rows in parallel, a 256-entry level table, unsafe buffers.
    public func dequantized() -> Matrix<Float> {
        var result = Matrix<Float>(zeros: rowCount, columnCount)
        let table = levels.table
        let zeros = zeroPointValues
        let (columns, groups, size) = (columnCount, groupCount, groupSize)
        let groupIndex = self.groupIndex
        codes.withUnsafeBufferPointer { codes in
            scales.withUnsafeBufferPointer { scales in
                zeros.withUnsafeBufferPointer { zeros in
                    table.withUnsafeBufferPointer { table in
                        result.values.withUnsafeMutableBufferPointer { output in
                            let out = UncheckedSendable(output)
                            Parallel.forEachChunk(rowCount, minimumChunk: max(1, 16_384 / max(1, columns))) { rows in
                                for row in rows {
                                    let codeRow = codes.baseAddress! + row * columns
                                    let outRow = out.value.baseAddress! + row * columns
                                    let groupBase = row * groups
                                    if let groupIndex {
                                        for column in 0..<columns {
                                            let g = groupBase + Int(groupIndex[column])
                                            outRow[column] = scales[g] * (table[Int(codeRow[column])] - zeros[g])
                                        }
                                        continue
                                    }
                                    for g in 0..<groups {
                                        let scale = scales[groupBase + g], zero = zeros[groupBase + g]
                                        let start = g * size
                                        for column in start..<(start + size) {
                                            outRow[column] = scale * (table[Int(codeRow[column])] - zero)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// Scalar reference of `dequantized()`: the formula element by element.
    public func dequantizedReference() -> Matrix<Float> {
        var result = Matrix<Float>(zeros: rowCount, columnCount)
        let table = levels.table
        let zeros = zeroPointValues
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                let g = row * groupCount + group(ofColumn: column)
                result[row, column] = scales[g] * (table[Int(codes[row * columnCount + column])] - zeros[g])
            }
        }
        return result
    }
}
