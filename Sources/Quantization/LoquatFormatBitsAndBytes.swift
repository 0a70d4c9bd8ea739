import Tensors

/// Loquat codec of `BitsAndBytesFourBitWeight` (nf4, fp4): family `bnb4`, the tensors bnb itself
/// keeps, under bnb's names.
///
/// | part | tensor | content |
/// | --- | --- | --- |
/// | `weight` | U8 `[⌈n/2⌉]` | packed codes, first element in the high nibble |
/// | `quant_map` | F32 `[16]` | the code table |
/// | `absmax` | F32 `[blocks]`, or U8 `[blocks]` with double quantization | per-block scales |
/// | `nested_absmax` | F32 `[⌈blocks/256⌉]` | double quantization only |
/// | `nested_quant_map` | F32 `[256]` | double quantization only |
/// | `nested_offset` | F32 `[1]` | double quantization only (a tensor, so it stays bit-exact) |
///
/// integers `blockSize` (and `nestedBlockSize`); string `quantType` (`nf4`, `fp4`).
extension BitsAndBytesFourBitWeight: LoquatEncodable {
    public static let loquatFamily = "bnb4"

    public func loquatRecord() throws -> LoquatRecord {
        var record = LoquatRecord(family: Self.loquatFamily, rowCount: rowCount, columnCount: columnCount, spec: spec)
        record.integers["blockSize"] = blockSize
        record.strings["quantType"] = quantType.rawValue
        record.tensors["weight"] = LoquatFormat.bytesTensor("weight", packedCodes)
        record.tensors["quant_map"] = LoquatFormat.floatTensor("quant_map", quantMap)
        switch absmax {
        case let .float32(values):
            record.tensors["absmax"] = LoquatFormat.floatTensor("absmax", values)
        case let .doubleQuantized(nested):
            record.integers["nestedBlockSize"] = nested.nestedBlockSize
            record.tensors["absmax"] = LoquatFormat.bytesTensor("absmax", nested.quantizedAbsmax)
            record.tensors["nested_absmax"] = LoquatFormat.floatTensor("nested_absmax", nested.nestedAbsmax)
            record.tensors["nested_quant_map"] = LoquatFormat.floatTensor("nested_quant_map", nested.nestedQuantMap)
            record.tensors["nested_offset"] = LoquatFormat.floatTensor("nested_offset", [nested.offset])
        }
        return record
    }

    /// The initialisers check every count; their errors become `malformed`.
    public init(loquatRecord record: LoquatRecord) throws {
        guard let quantType = record.strings["quantType"].flatMap(BitsAndBytesQuantType.init(rawValue:)) else {
            throw LoquatFormatError.malformed("bnb4 record: quantType is missing or not nf4/fp4")
        }
        let blockSize = try record.integer("blockSize")
        guard blockSize > 0 else { throw LoquatFormatError.malformed("bnb4 record: block size \(blockSize)") }
        let absmaxTensor = try record.tensor("absmax")
        let absmax: BitsAndBytesAbsmax
        do {
            if absmaxTensor.dtype == .u8 {
                let offset = try LoquatFormat.floats(of: record.tensor("nested_offset"), count: 1)[0]
                absmax = .doubleQuantized(try BitsAndBytesNestedAbsmax(
                    quantizedAbsmax: LoquatFormat.bytes(of: absmaxTensor),
                    nestedAbsmax: LoquatFormat.floats(of: record.tensor("nested_absmax")), offset: offset,
                    nestedQuantMap: LoquatFormat.floats(of: record.tensor("nested_quant_map"), count: 256),
                    nestedBlockSize: record.integer("nestedBlockSize")))
            } else {
                absmax = .float32(try LoquatFormat.floats(of: absmaxTensor))
            }
            try self.init(rowCount: record.rowCount, columnCount: record.columnCount, quantType: quantType, blockSize: blockSize,
                          packedCodes: LoquatFormat.bytes(of: record.tensor("weight")), absmax: absmax,
                          quantMap: LoquatFormat.floats(of: record.tensor("quant_map"), count: 16))
        } catch let error as QuantizationError {
            throw LoquatFormatError.malformed("bnb4 record: \(error)")
        }
    }
}
