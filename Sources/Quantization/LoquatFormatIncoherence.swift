import Tensors

/// Loquat codecs of the wrappers `IncoherenceAndOutliers` builds around a grid.
///
/// `RotatedWeight`, family `hadamard`: integer `seed` (the 64-bit seed's bit pattern), string
/// `kind` (`hadamard`), child `inner`; the signs and block size follow from the seed and the
/// width, so nothing else is stored (as `RotatedWeight.storageBitCount` counts).
extension RotatedWeight: LoquatEncodable {
    public static let loquatFamily = "hadamard"

    public func loquatRecord() throws -> LoquatRecord {
        LoquatRecord(family: Self.loquatFamily, rowCount: rowCount, columnCount: columnCount, spec: spec,
                     integers: ["seed": Int(Int64(bitPattern: rotation.seed))], strings: ["kind": "hadamard"],
                     children: ["inner": try LoquatFormat.encode(inner)])
    }

    public init(loquatRecord record: LoquatRecord) throws {
        guard record.strings["kind"] == "hadamard" else { throw LoquatFormatError.malformed("hadamard record: kind is not hadamard") }
        let inner = try LoquatFormat.decode(try record.child("inner"))
        guard inner.columnCount == record.columnCount, inner.rowCount == record.rowCount, record.columnCount > 0 else {
            throw LoquatFormatError.malformed("hadamard record: the inner weight is \(inner.rowCount)×\(inner.columnCount), the record \(record.rowCount)×\(record.columnCount)")
        }
        let seed = UInt64(bitPattern: Int64(try record.integer("seed")))
        self.init(inner: inner, rotation: HadamardRotation(width: record.columnCount, seed: seed), spec: record.spec)
    }
}

/// `OutlierWeight`, family `outliers`: the CSR as tensors `rowOffsets` and `columnIndices`
/// (I32 holding the unsigned 32-bit values' bit patterns) and `values` (F32, each exactly
/// representable in `valueFormat`), string `valueFormat`, child `inner` (the grid).
extension OutlierWeight: LoquatEncodable {
    public static let loquatFamily = "outliers"

    public func loquatRecord() throws -> LoquatRecord {
        LoquatRecord(family: Self.loquatFamily, rowCount: rowCount, columnCount: columnCount, spec: spec,
                     tensors: ["rowOffsets": LoquatFormat.int32Tensor("rowOffsets", outliers.rowOffsets.map { Int32(bitPattern: $0) }),
                               "columnIndices": LoquatFormat.int32Tensor("columnIndices", outliers.columnIndices.map { Int32(bitPattern: $0) }),
                               "values": LoquatFormat.floatTensor("values", outliers.values)],
                     strings: ["valueFormat": outliers.valueFormat.rawValue], children: ["inner": try LoquatFormat.encode(inner)])
    }

    /// `SparseOutliers` checks the CSR invariants; its errors become `malformed`.
    public init(loquatRecord record: LoquatRecord) throws {
        guard let format = record.strings["valueFormat"].flatMap(OutlierValueFormat.init(rawValue:)) else {
            throw LoquatFormatError.malformed("outliers record: valueFormat is missing or unknown")
        }
        let inner = try LoquatFormat.decode(try record.child("inner"))
        guard inner.rowCount == record.rowCount, inner.columnCount == record.columnCount else {
            throw LoquatFormatError.malformed("outliers record: the inner weight is \(inner.rowCount)×\(inner.columnCount), the record \(record.rowCount)×\(record.columnCount)")
        }
        do {
            let outliers = try SparseOutliers(
                rowCount: record.rowCount, columnCount: record.columnCount,
                rowOffsets: try LoquatFormat.int32s(of: record.tensor("rowOffsets"), count: record.rowCount + 1).map { UInt32(bitPattern: $0) },
                columnIndices: try LoquatFormat.int32s(of: record.tensor("columnIndices")).map { UInt32(bitPattern: $0) },
                values: try LoquatFormat.floats(of: record.tensor("values")), valueFormat: format)
            self.init(inner: inner, outliers: outliers, spec: record.spec)
        } catch let error as QuantizationError {
            throw LoquatFormatError.malformed("outliers record: \(error)")
        }
    }
}
