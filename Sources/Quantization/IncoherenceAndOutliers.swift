import Tensors

/// Hadamard rotation and SpQR outliers around any grid (algorithms.md §10), in this order:
///
/// 1. `rotate: "hadamard"`: `W' = W·Rᵀ` (`HadamardRotation`, seed from the spec); a calibration's
///    Gram matrix becomes `R·H·Rᵀ`, the Hessian of the rotated inputs, for GPTQ.
/// 2. `outliers`: chosen in the rotated basis, where the rotation has already spread most of
///    them (`OutlierExtraction`), and stored there; rotating first means the outliers are the
///    ones the rotation could not remove, and each costs its bits only once.
/// 3. The family's grid (`Quantizer.quantizeOnGrid`) on what is left, with the spec's
///    `rotation` and `outliers` cleared.
///
/// Result: `RotatedWeight(inner: OutlierWeight(inner: grid))`, with either layer absent when
/// not requested; `dequantized()` always returns W-space values.
public enum IncoherenceAndOutliers {
    /// The grid step, given the (possibly rotated) matrix and calibration.
    public typealias Grid = (Matrix<Float>, LayerCalibration?) throws -> any QuantizedWeight

    public static func quantize(_ weight: Matrix<Float>, name: String, spec: QuantizationSpec,
                                calibration: LayerCalibration?) throws -> any QuantizedWeight {
        let gridSpec = innerSpec(spec, keepingOutliers: false)
        return try quantize(weight, spec: spec, calibration: calibration) { matrix, calibration in
            try Quantizer.quantizeOnGrid(matrix, name: name, spec: gridSpec, calibration: calibration)
        }
    }

    /// The same with an explicit grid step (tests bind a small local grid here).
    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec, calibration: LayerCalibration?,
                                grid: Grid) throws -> any QuantizedWeight {
        var matrix = weight
        var calibration = calibration
        var rotation: HadamardRotation?
        if let rotationSpec = spec.rotation {
            let hadamard = HadamardRotation(width: weight.columnCount, seed: rotationSpec.seed)
            matrix = hadamard.rotated(weight)
            calibration = calibration.map(hadamard.rotatedCalibration)
            rotation = hadamard
        }
        var quantized: any QuantizedWeight
        if let outliers = spec.outliers {
            let rotatedCalibration = calibration
            quantized = try OutlierExtraction.quantize(matrix, outliers: outliers, spec: innerSpec(spec, keepingOutliers: true)) {
                try grid($0, rotatedCalibration)
            }
        } else {
            quantized = try grid(matrix, calibration)
        }
        if let rotation {
            quantized = RotatedWeight(inner: quantized, rotation: rotation, spec: spec)
        }
        return quantized
    }

    /// `spec` without `rotation`, and without `outliers` unless kept.
    static func innerSpec(_ spec: QuantizationSpec, keepingOutliers: Bool) -> QuantizationSpec {
        var inner = spec
        inner.rotation = nil
        if !keepingOutliers { inner.outliers = nil }
        return inner
    }
}
