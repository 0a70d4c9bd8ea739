import Tensors

/// How outlier values are stored.
public enum OutlierValueFormat: String, Sendable, Equatable, Codable {
    /// IEEE binary16, as SpQR stores them; chosen when every value is a normal f16 (or zero).
    case float16
    /// Float32, for values an f16 would overflow or hold with less than 11 significant bits.
    case float32

    public var bitCount: Int { self == .float16 ? 16 : 32 }
}

/// Weights kept in high precision beside a grid, as a compressed sparse row (CSR) matrix of
/// shape `[rowCount, columnCount]` (SpQR, arXiv 2306.03078, §4; Vahe1994/SpQR stores them the
/// same way):
///
/// - `rowOffsets` (`rowCount + 1` unsigned 32-bit): row `r`'s outliers are entries
///   `rowOffsets[r] ..< rowOffsets[r+1]`;
/// - `columnIndices` (32-bit each), strictly increasing within a row;
/// - `values`, one per outlier, exactly representable in `valueFormat` (16 or 32 bits).
///
/// `storageBitCount = 32·(rowCount + 1) + (32 + valueBits)·count`: 48 bits per f16 outlier
/// plus the row pointers, the upper end of SpQR's "≈32–48 bits per outlier" (algorithms.md
/// §10.2(e)); SpQR's 16-bit column indices would only fit rows shorter than 65,536.
public struct SparseOutliers: Sendable, Equatable {
    public let rowCount: Int
    public let columnCount: Int
    public let rowOffsets: [UInt32]
    public let columnIndices: [UInt32]
    public let values: [Float]
    public let valueFormat: OutlierValueFormat

    /// Checks the CSR invariants and that every value is exactly representable.
    public init(rowCount: Int, columnCount: Int, rowOffsets: [UInt32], columnIndices: [UInt32],
                values: [Float], valueFormat: OutlierValueFormat) throws {
        func refuse(_ reason: String) -> QuantizationError { .invalidParameter("outliers", reason) }
        guard rowCount >= 0, columnCount >= 0, rowOffsets.count == rowCount + 1, rowOffsets.first == 0,
              Int(rowOffsets.last!) == columnIndices.count, values.count == columnIndices.count else {
            throw refuse("CSR arrays do not describe \(columnIndices.count) outliers in \(rowCount) rows")
        }
        for row in 0..<rowCount {
            guard rowOffsets[row] <= rowOffsets[row + 1] else { throw refuse("row offsets decrease at row \(row)") }
            var previous = -1
            for entry in Int(rowOffsets[row])..<Int(rowOffsets[row + 1]) {
                let column = Int(columnIndices[entry])
                guard column > previous, column < columnCount else {
                    throw refuse("column \(column) out of order or outside 0..<\(columnCount) in row \(row)")
                }
                previous = column
            }
        }
        guard values.allSatisfy({ $0.isFinite && Self.stored($0, as: valueFormat) == $0 }) else {
            throw refuse("a value is not exactly representable as \(valueFormat.rawValue)")
        }
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.rowOffsets = rowOffsets
        self.columnIndices = columnIndices
        self.values = values
        self.valueFormat = valueFormat
    }

    /// The outliers of `weight` at the flat row-major `positions` (sorted ascending, distinct),
    /// rounded to the narrowest format that keeps them (see `OutlierValueFormat`).
    public init(keeping positions: [Int], of weight: Matrix<Float>) {
        let original = positions.map { weight.values[$0] }
        let format: OutlierValueFormat = original.allSatisfy(Self.fitsFloat16) ? .float16 : .float32
        var offsets = [UInt32](repeating: 0, count: weight.rowCount + 1)
        for position in positions { offsets[position / weight.columnCount + 1] += 1 }
        for row in 0..<weight.rowCount { offsets[row + 1] += offsets[row] }
        // The positions are sorted, so entries come out row by row with increasing columns.
        try! self.init(rowCount: weight.rowCount, columnCount: weight.columnCount, rowOffsets: offsets,
                       columnIndices: positions.map { UInt32($0 % weight.columnCount) },
                       values: original.map { Self.stored($0, as: format) }, valueFormat: format)
    }

    public var count: Int { values.count }

    public var storageBitCount: Int { 32 * (rowCount + 1) + (32 + valueFormat.bitCount) * count }

    /// Flat row-major positions of the outliers, ascending.
    public var positions: [Int] {
        var result: [Int] = []
        result.reserveCapacity(count)
        for row in 0..<rowCount {
            for entry in Int(rowOffsets[row])..<Int(rowOffsets[row + 1]) {
                result.append(row * columnCount + Int(columnIndices[entry]))
            }
        }
        return result
    }

    /// Writes the outlier values over `matrix` (same shape) at their positions.
    public func overwrite(_ matrix: inout Matrix<Float>) {
        precondition(matrix.rowCount == rowCount && matrix.columnCount == columnCount)
        for (entry, position) in positions.enumerated() { matrix.values[position] = values[entry] }
    }

    /// `value` rounded to `format` and back.
    public static func stored(_ value: Float, as format: OutlierValueFormat) -> Float {
        format == .float16 ? Float(Float16(value)) : value
    }

    /// Whether `value` is zero or a normal binary16 after rounding (|x| in [2⁻¹⁴, 65504]), so
    /// f16 keeps its full 11-bit significand.
    static func fitsFloat16(_ value: Float) -> Bool {
        let rounded = Float16(value)
        return value == 0 || (rounded.isFinite && rounded.isNormal)
    }
}
