import Tensors

/// hqq. Placeholder until the family lands: `isImplemented` is false and `quantize`
/// refuses, so the daemon reports the method as unavailable instead of guessing.
public enum HalfQuadraticQuantizer {
    public static let isImplemented = false

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        throw QuantizationError.invalidParameter("method", "\(spec.method.rawValue) is not implemented yet")
    }
}
