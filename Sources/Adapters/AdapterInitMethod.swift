import Quantization
import Tensors

/// The initialisations `initAdapter` runs (algorithms.md §2–8, 12).
public enum AdapterInitMethod: String, CaseIterable, Sendable {
    /// PEFT's default: Kaiming-uniform A, zero B.
    case lora
    /// PEFT `init_lora_weights="gaussian"`: A ~ N(0, 1/r), zero B.
    case gaussian
    /// Principal singular components of W into the adapter, the residual into the base (QPiSSA
    /// re-quantizes it).
    case pissa
    /// Thin QR of W (OLoRA).
    case olora
    /// Alternating quantize + truncated SVD (LoftQ).
    case loftq
    /// SVD of the error scaled by the mean |x| per input channel (L²QER).
    case lqer
    /// SVD of the error scaled by the RMS per input channel (QERA-approx).
    case qeraApprox = "qera-approx"
    /// Exact optimum of ‖X(W − Q − sBA)ᵀ‖ by damped Cholesky of XᵀX (CLoQ = QERA-exact).
    case cloq
    /// Alternating least squares on the calibrated objective (QuAILoRA).
    case quailora
    /// Iterative low-rank + quantized decomposition (LQ-LoRA).
    case lqLoRA = "lq-lora"
    /// Group-pooled adapter that folds into INT-k zero points (QA-LoRA).
    case qaLoRA = "qa-lora"
    /// Per layer, the best of several candidates.
    case auto

    /// Needs a calibration handle (`calibrate`).
    public var needsCalibration: Bool { [.lqer, .qeraApprox, .cloq, .quailora].contains(self) }
    /// Compensates a quantization error, so needs a quantized model.
    public var needsQuantizedModel: Bool { [.loftq, .lqer, .qeraApprox, .cloq, .quailora, .lqLoRA, .qaLoRA, .auto].contains(self) }
    /// Replaces the base weights (a new model handle is returned).
    public var changesBase: Bool { [.pissa, .olora, .loftq, .lqLoRA].contains(self) }
    /// PEFT `init_lora_weights` for the config.
    public var peftInitName: String {
        switch self {
        case .lora: return "true"
        case .gaussian, .pissa, .olora, .loftq: return rawValue
        default: return rawValue
        }
    }
}

/// Everything an initialisation needs besides the layer.
public struct AdapterInitOptions: Sendable {
    public var method: AdapterInitMethod
    public var useRSLoRA: Bool
    public var useDoRA: Bool
    /// Rounds of the alternating methods (loftq 5, pissa 1, lq-lora 10, quailora 10 by default).
    public var iterations: Int?
    public var svdMode: SVDChoice.Mode?
    public var seed: UInt64
    /// λ / mean(diag H) for the calibrated methods.
    public var relativeDamping: Double
    /// `auto`'s candidates.
    public var candidates: [AdapterInitMethod]
    /// lq-lora: weight the decomposition by the input RMS per channel (needs calibration).
    public var activationWeighted: Bool

    public init(method: AdapterInitMethod, useRSLoRA: Bool = false, useDoRA: Bool = false, iterations: Int? = nil,
                svdMode: SVDChoice.Mode? = nil, seed: UInt64 = 0, relativeDamping: Double = 0.01,
                candidates: [AdapterInitMethod]? = nil, activationWeighted: Bool = false) {
        self.method = method
        self.useRSLoRA = useRSLoRA
        self.useDoRA = useDoRA
        self.iterations = iterations
        self.svdMode = svdMode
        self.seed = seed
        self.relativeDamping = relativeDamping
        self.candidates = candidates ?? []
        self.activationWeighted = activationWeighted
    }

    public func iterationCount(for method: AdapterInitMethod) -> Int {
        if let iterations { return iterations }
        switch method {
        case .loftq: return 5
        case .lqLoRA, .quailora: return 10
        default: return 1
        }
    }
}

/// One layer to initialise: the full-precision weight, the current base (quantized or not) and
/// optional calibration statistics of the layer's inputs.
public struct LayerInitInput: Sendable {
    public var module: String
    /// Full-precision `W [out, in]`.
    public var weight: Matrix<Float>
    /// The quantized base, if the model is quantized.
    public var quantized: (any QuantizedWeight)?
    public var calibration: LayerCalibration?
    public var rank: Int
    public var alpha: Double

    public init(module: String, weight: Matrix<Float>, quantized: (any QuantizedWeight)?, calibration: LayerCalibration?,
                rank: Int, alpha: Double) {
        self.module = module
        self.weight = weight
        self.quantized = quantized
        self.calibration = calibration
        self.rank = rank
        self.alpha = alpha
    }

    /// The base the layer currently computes with: `dequant(Q)`, or W itself.
    public var baseWeight: Matrix<Float> { quantized?.dequantized() ?? weight }
}

/// A replacement base weight.
public enum NewBase: Sendable {
    case quantized(any QuantizedWeight)
    case fullPrecision(Matrix<Float>)

    public var dequantized: Matrix<Float> {
        switch self {
        case let .quantized(weight): return weight.dequantized()
        case let .fullPrecision(matrix): return matrix
        }
    }
}

/// What initialising one layer produced and what it bought.
public struct LayerInitResult: Sendable {
    public var layer: LoRALayer
    public var newBase: NewBase?
    /// The method that made it (for `auto`, the winner).
    public var method: AdapterInitMethod
    /// ‖W − base‖ / ‖W‖ before, and ‖W − base' − ΔW‖ / ‖W‖ after.
    public var weightErrorBefore: Double
    public var weightErrorAfter: Double
    /// ‖X(W − base)ᵀ‖ / ‖XWᵀ‖ before and after, on the calibration inputs.
    public var outputErrorBefore: Double?
    public var outputErrorAfter: Double?
    /// The SVD used (nil for methods without one).
    public var svd: SVDChoice.Mode?
    public var relativeDamping: Double?
    public var iterations: Int?
    /// For `.gram` methods: √(tail of the weighted SVD) / ‖XWᵀ‖ under the damped Gram matrix.
    public var theoreticalOutputError: Double?
}

/// Errors with the parameter a client should fix.
public enum AdapterError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidParameter(String, String)

    public var description: String {
        switch self { case let .invalidParameter(param, reason): return "\(param): \(reason)" }
    }

    public var parameter: String {
        switch self { case let .invalidParameter(param, _): return param }
    }
}
