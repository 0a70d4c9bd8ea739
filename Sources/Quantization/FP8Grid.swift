import Tensors

/// fp8 (E4M3/E5M2). Placeholder until the family lands: `isImplemented` is false and `quantize`
/// refuses, so the daemon reports the method as unavailable instead of guessing.
public enum FP8Grid {
    public static let isImplemented = false

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        throw QuantizationError.invalidParameter("method", "\(spec.method.rawValue) is not implemented yet")
    }
}
