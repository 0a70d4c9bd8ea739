import Tensors

/// Reads one Linear's tensors in the bitsandbytes 4-bit checkpoint layout (the inverse of
/// `BitsAndBytesExport.tensors`, and what transformers saves): the packed `weight`, its
/// `absmax`/`quant_map`, the nested statistics when present, and the quant-state JSON.
public enum BitsAndBytesImport {
    /// The weight stored under `prefix` (`<prefix>.weight…`), looked up by tensor name, and the
    /// original dtype its quant state records. Shapes and sizes are checked against each other.
    public static func weight(prefix: String, tensor: (String) -> Tensor?) throws -> (weight: BitsAndBytesFourBitWeight, originalDType: String) {
        let key = prefix.isEmpty ? "weight" : prefix + ".weight"
        func refuse(_ reason: String) -> QuantizationError { .invalidParameter("quant_state", "\(key): \(reason)") }
        func require(_ name: String, _ dtype: DType) throws -> Tensor {
            guard let found = tensor(name) else { throw refuse("missing tensor \(name)") }
            guard found.dtype == dtype else { throw refuse("\(name) is \(found.dtype.rawValue), expected \(dtype.rawValue)") }
            return found
        }
        let stateTensor = try BitsAndBytesQuantType.allCases.compactMap { tensor(key + ".quant_state.bitsandbytes__" + $0.rawValue) }
            .first.map { try require($0.name, .u8) }
        guard let stateTensor else { throw refuse("missing the quant_state.bitsandbytes__nf4|fp4 tensor") }
        let state = try BitsAndBytesQuantState(json: String(decoding: stateTensor.storage.bytes, as: UTF8.self))
        guard state.shape.count == 2 else { throw refuse("shape \(state.shape) is not a matrix") }
        guard stateTensor.name.hasSuffix(state.quantType.rawValue) else { throw refuse("the quant_state key and quant_type disagree") }
        let packed = Array(try require(key, .u8).storage.bytes)
        let quantMap = try require(key + ".quant_map", .f32).decodedFloat32()
        let absmax: BitsAndBytesAbsmax
        if let offset = state.nestedOffset, let nestedBlockSize = state.nestedBlockSize {
            absmax = .doubleQuantized(try BitsAndBytesNestedAbsmax(
                quantizedAbsmax: Array(try require(key + ".absmax", .u8).storage.bytes),
                nestedAbsmax: try require(key + ".nested_absmax", .f32).decodedFloat32(), offset: offset,
                nestedQuantMap: try require(key + ".nested_quant_map", .f32).decodedFloat32(), nestedBlockSize: nestedBlockSize))
        } else {
            absmax = .float32(try require(key + ".absmax", .f32).decodedFloat32())
        }
        let weight = try BitsAndBytesFourBitWeight(rowCount: state.shape[0], columnCount: state.shape[1], quantType: state.quantType,
                                                   blockSize: state.blockSize, packedCodes: packed, absmax: absmax, quantMap: quantMap)
        return (weight, state.dtype)
    }
}
