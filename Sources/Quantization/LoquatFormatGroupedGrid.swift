import Tensors

/// Loquat codec of `GroupedGridWeight` (int, nf, fp8, hqq, gptq): family `grid`.
///
/// | part | tensor | content |
/// | --- | --- | --- |
/// | `codes` | U8 `[⌈rows·columns·bits/8⌉]` | codes packed LSB first (`LoquatFormat.packCodes`) |
/// | `scales` | F32 `[rows·groups]` | per-group scales, bit for bit |
/// | `zeros` | F32 `[rows·groups]` | zero points, when `zeroPoints` is `integer` or `float16` |
/// | `codebook` | F32 `[2^bits]` | NormalFloat levels, when `levels` is `codebook` |
/// | `groupIndex` | I32 `[columns]` | GPTQ act-order `g_idx`, when present |
///
/// integers `bits`, `groupSize`, `scaleBitCount`; strings `levels` (`integer`, `codebook`,
/// `fp8`), `fp8Format`, `zeroPoints` (`none`, `midpoint`, `integer`, `float16`).
extension GroupedGridWeight: LoquatEncodable {
    public static let loquatFamily = "grid"

    public func loquatRecord() throws -> LoquatRecord {
        var record = LoquatRecord(family: Self.loquatFamily, rowCount: rowCount, columnCount: columnCount, spec: spec)
        record.integers = ["bits": bits, "groupSize": groupSize, "scaleBitCount": scaleBitCount]
        record.tensors["codes"] = LoquatFormat.bytesTensor("codes", LoquatFormat.packCodes(codes, bits: bits))
        record.tensors["scales"] = LoquatFormat.floatTensor("scales", scales)
        switch zeroPoints {
        case .none: record.strings["zeroPoints"] = "none"
        case .midpoint: record.strings["zeroPoints"] = "midpoint"
        case let .integer(values):
            record.strings["zeroPoints"] = "integer"
            record.tensors["zeros"] = LoquatFormat.floatTensor("zeros", values)
        case let .float16(values):
            record.strings["zeroPoints"] = "float16"
            record.tensors["zeros"] = LoquatFormat.floatTensor("zeros", values)
        }
        switch levels {
        case .integer: record.strings["levels"] = "integer"
        case let .codebook(values):
            record.strings["levels"] = "codebook"
            record.tensors["codebook"] = LoquatFormat.floatTensor("codebook", values)
        case let .fp8(format):
            record.strings["levels"] = "fp8"
            record.strings["fp8Format"] = format.rawValue
        }
        if let groupIndex { record.tensors["groupIndex"] = LoquatFormat.int32Tensor("groupIndex", groupIndex) }
        return record
    }

    /// Every count and index is checked before the weight is built, so a damaged file is an
    /// error, never an out-of-bounds read.
    public init(loquatRecord record: LoquatRecord) throws {
        let (rows, columns) = (record.rowCount, record.columnCount)
        let bits = try record.integer("bits"), groupSize = try record.integer("groupSize")
        let scaleBitCount = try record.integer("scaleBitCount")
        guard rows >= 0, columns > 0, (1...8).contains(bits), groupSize > 0, columns % groupSize == 0 else {
            throw LoquatFormatError.malformed("grid record: \(rows)×\(columns) with bits \(bits) and group size \(groupSize) is not a valid layout")
        }
        let groupCount = rows * (columns / groupSize)
        let codes = try LoquatFormat.unpackCodes(LoquatFormat.bytes(of: record.tensor("codes")), bits: bits, count: rows * columns)
        let scales = try LoquatFormat.floats(of: record.tensor("scales"), count: groupCount)
        let zeroPoints: GridZeroPoints
        switch record.strings["zeroPoints"] {
        case "none": zeroPoints = .none
        case "midpoint": zeroPoints = .midpoint
        case "integer": zeroPoints = .integer(try LoquatFormat.floats(of: record.tensor("zeros"), count: groupCount))
        case "float16": zeroPoints = .float16(try LoquatFormat.floats(of: record.tensor("zeros"), count: groupCount))
        case let other: throw LoquatFormatError.malformed("grid record: unknown zeroPoints \(other ?? "(missing)")")
        }
        let levels: GridLevels
        switch record.strings["levels"] {
        case "integer": levels = .integer
        case "codebook":
            let values = try LoquatFormat.floats(of: record.tensor("codebook"))
            guard values.count == 1 << bits else {
                throw LoquatFormatError.malformed("grid record: a \(bits)-bit codebook needs \(1 << bits) levels, has \(values.count)")
            }
            levels = .codebook(values)
        case "fp8":
            guard let format = record.strings["fp8Format"].flatMap(FP8Format.init(rawValue:)) else {
                throw LoquatFormatError.malformed("grid record: fp8 levels without a valid fp8Format")
            }
            levels = .fp8(format)
        case let other: throw LoquatFormatError.malformed("grid record: unknown levels \(other ?? "(missing)")")
        }
        var groupIndex: [Int32]?
        if let tensor = record.tensors["groupIndex"] {
            let indices = try LoquatFormat.int32s(of: tensor, count: columns)
            guard indices.allSatisfy({ $0 >= 0 && Int($0) < columns / groupSize }) else {
                throw LoquatFormatError.malformed("grid record: a g_idx entry is outside 0..<\(columns / groupSize)")
            }
            groupIndex = indices
        }
        self.init(rowCount: rows, columnCount: columns, spec: record.spec, bits: bits, groupSize: groupSize,
                  codes: codes, scales: scales, zeroPoints: zeroPoints, levels: levels, groupIndex: groupIndex,
                  scaleBitCount: scaleBitCount)
    }
}
