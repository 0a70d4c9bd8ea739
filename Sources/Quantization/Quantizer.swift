import Tensors

/// Calibration statistics a quantizer may use (from `calibrate`): the fp64 Gram matrix
/// `H = XᵀX [in, in]` of the layer's inputs and the per-input-channel mean |x| and RMS.
public struct LayerCalibration: Sendable {
    public let gram: Matrix<Double>
    public let tokenCount: Int
    public let meanAbsolute: [Double]
    public let rootMeanSquare: [Double]

    public init(gram: Matrix<Double>, tokenCount: Int, meanAbsolute: [Double], rootMeanSquare: [Double]) {
        self.gram = gram
        self.tokenCount = tokenCount
        self.meanAbsolute = meanAbsolute
        self.rootMeanSquare = rootMeanSquare
    }
}

/// The one entry point: validates, checks for non-finite weights, applies the optional
/// rotation and outlier extraction around the family's grid, and returns the stored form.
public enum Quantizer {
    /// Families that are implemented; each family file sets its own flag.
    public static var implementedMethods: [QuantizationMethod] {
        QuantizationMethod.allCases.filter(isImplemented)
    }

    public static func isImplemented(_ method: QuantizationMethod) -> Bool {
        switch method {
        case .nf4, .fp4: return BitsAndBytesFourBit.isImplemented
        case .nf: return NormalFloatGrid.isImplemented
        case .int: return IntegerGrid.isImplemented
        case .fp8: return FP8Grid.isImplemented
        case .hqq: return HalfQuadraticQuantizer.isImplemented
        case .gptq: return GPTQQuantizer.isImplemented
        }
    }

    /// Quantizes `weight [out, in]` of layer `name` per `spec`. `calibration` is required by
    /// GPTQ and ignored by the calibration-free methods.
    public static func quantize(_ weight: Matrix<Float>, name: String, spec: QuantizationSpec,
                                calibration: LayerCalibration? = nil) throws -> any QuantizedWeight {
        try spec.validate(columnCount: weight.columnCount)
        guard isImplemented(spec.method) else {
            throw QuantizationError.invalidParameter("method", "\(spec.method.rawValue) is not implemented yet")
        }
        try NonFiniteCheck.requireFinite(weight, layer: name)
        if spec.rotation != nil || spec.outliers != nil {
            return try IncoherenceAndOutliers.quantize(weight, name: name, spec: spec, calibration: calibration)
        }
        return try quantizeOnGrid(weight, name: name, spec: spec, calibration: calibration)
    }

    /// The family's grid alone, without rotation or outliers.
    public static func quantizeOnGrid(_ weight: Matrix<Float>, name: String, spec: QuantizationSpec,
                                      calibration: LayerCalibration?) throws -> any QuantizedWeight {
        switch spec.method {
        case .nf4, .fp4: return try BitsAndBytesFourBit.quantize(weight, spec: spec)
        case .nf: return try NormalFloatGrid.quantize(weight, spec: spec)
        case .int: return try IntegerGrid.quantize(weight, spec: spec)
        case .fp8: return try FP8Grid.quantize(weight, spec: spec)
        case .hqq: return try HalfQuadraticQuantizer.quantize(weight, spec: spec)
        case .gptq:
            guard let calibration else {
                throw QuantizationError.missingCalibration(method: "gptq", reason: "pass a calibration handle from `calibrate` (GPTQ needs the layer's input Hessian)")
            }
            return try GPTQQuantizer.quantize(weight, spec: spec, calibration: calibration)
        }
    }
}

/// NaN/Inf weights are refused with their position, before any work.
public enum NonFiniteCheck {
    public static func requireFinite(_ weight: Matrix<Float>, layer: String) throws {
        if let index = weight.values.firstIndex(where: { !$0.isFinite }) {
            throw QuantizationError.nonFiniteWeight(layer: layer, row: index / max(1, weight.columnCount),
                                                    column: index % max(1, weight.columnCount))
        }
    }
}
