import Tensors

/// gptq. Placeholder until the family lands: `isImplemented` is false and `quantize` refuses.
public enum GPTQQuantizer {
    public static let isImplemented = false

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec, calibration: LayerCalibration) throws -> any QuantizedWeight {
        throw QuantizationError.invalidParameter("method", "gptq is not implemented yet")
    }
}
