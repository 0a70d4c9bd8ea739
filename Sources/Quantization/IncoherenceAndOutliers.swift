import Tensors

/// Hadamard rotation and SpQR outliers around any grid. Placeholder until it lands.
public enum IncoherenceAndOutliers {
    public static func quantize(_ weight: Matrix<Float>, name: String, spec: QuantizationSpec,
                                calibration: LayerCalibration?) throws -> any QuantizedWeight {
        throw QuantizationError.invalidParameter(spec.rotation != nil ? "rotate" : "outliers", "not implemented yet")
    }
}
