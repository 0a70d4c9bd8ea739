import Tensors

/// A quantized weight matrix `[rowCount = out, columnCount = in]`: whatever a family stores
/// (codes, scales, zero points, codebooks), able to reproduce its dequantized matrix exactly.
/// Families add their own concrete types; exporters downcast to the ones their format holds.
public protocol QuantizedWeight: Sendable {
    var rowCount: Int { get }
    var columnCount: Int { get }
    var spec: QuantizationSpec { get }
    /// Every bit stored for this matrix: codes, scales, zero points, per-tensor codebooks and
    /// constants, outlier indices and values. `bitsPerWeight` divides it by the element count.
    var storageBitCount: Int { get }
    /// The dequantized matrix in the original (unrotated) weight space, Float32.
    func dequantized() -> Matrix<Float>
}

extension QuantizedWeight {
    public var elementCount: Int { rowCount * columnCount }
    public var bitsPerWeight: Double { elementCount == 0 ? 0 : Double(storageBitCount) / Double(elementCount) }
}

/// Errors of quantization; the server maps `invalidParameter` and `nonFiniteWeight` to -32602.
public enum QuantizationError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidParameter(String, String)
    /// A NaN or ±Inf weight, with where it is.
    case nonFiniteWeight(layer: String, row: Int, column: Int)
    /// The method needs calibration statistics (e.g. GPTQ's Hessian).
    case missingCalibration(method: String, reason: String)
    case unsupportedShape(layer: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidParameter(param, reason): return "\(param): \(reason)"
        case let .nonFiniteWeight(layer, row, column): return "layer \(layer) has a non-finite weight at [\(row), \(column)]"
        case let .missingCalibration(method, reason): return "\(method) needs calibration: \(reason)"
        case let .unsupportedShape(layer, reason): return "layer \(layer): \(reason)"
        }
    }

    /// The parameter a client should fix, for -32602's `data.param`.
    public var parameter: String? {
        switch self {
        case let .invalidParameter(param, _): return param
        case .nonFiniteWeight: return "model"
        case .missingCalibration: return "calibration"
        case .unsupportedShape: return "groupSize"
        }
    }
}
