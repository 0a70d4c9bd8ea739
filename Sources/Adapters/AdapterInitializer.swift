import LinearAlgebra
import Quantization
import Tensors

/// Initialises one layer's adapter by `options.method` and measures what it bought.
///
/// Every method produces factors with `B·A ≈ target` and the LoRA scale still outside; as PEFT
/// does for PiSSA (and unlike PEFT's own LoftQ, huggingface/peft#1982) they are then divided by
/// `s` — `√s` from each factor — so that the layer's initial `s·B·A` is the fitted correction.
/// OLoRA keeps PEFT's convention (no division; the base absorbs `s·B·A`).
public enum AdapterInitializer {
    public static func initialize(_ input: LayerInitInput, options: AdapterInitOptions) throws -> LayerInitResult {
        try validate(input, options: options)
        let baseBefore = input.baseWeight
        let errorBefore = LayerErrors.residual(original: input.weight, approximation: baseBefore)
        let signal = LayerErrors.squaredNorm(input.weight)
        let outputSignal = try input.calibration.map { try LayerErrors.outputSquaredNorm(LowRankProduct.widened(input.weight), gram: $0.gram) }
        let context = LayerContext(input: input, options: options, errorBefore: errorBefore, signal: signal,
                                   outputSignal: outputSignal)
        if options.method == .auto { return try autoSelect(context) }
        return try run(options.method, context)
    }

    /// Rank bounds, calibration width and DoRA/QA-LoRA compatibility, before any work.
    static func validate(_ input: LayerInitInput, options: AdapterInitOptions) throws {
        let (out, inputs) = (input.weight.rowCount, input.weight.columnCount)
        let limit = options.method == .qaLoRA ? min(out, inputs / max(1, input.quantized?.spec.groupSize ?? 1)) : min(out, inputs)
        guard input.rank >= 1, input.rank <= limit else {
            throw AdapterError.invalidParameter("rank", "\(input.module) is [\(out), \(inputs)], so rank must be in 1...\(limit), got \(input.rank)")
        }
        if let quantized = input.quantized, quantized.rowCount != out || quantized.columnCount != inputs {
            throw AdapterError.invalidParameter("base", "\(input.module): the base weight is [\(out), \(inputs)] but the quantized model's is [\(quantized.rowCount), \(quantized.columnCount)]")
        }
        if let calibration = input.calibration, calibration.gram.rowCount != inputs {
            throw AdapterError.invalidParameter("calibration", "\(input.module) takes \(inputs) inputs but the calibration recorded \(calibration.gram.rowCount)")
        }
        if options.method.needsCalibration && input.calibration == nil {
            throw AdapterError.invalidParameter("calibration", "\(options.method.rawValue) needs calibration statistics: pass a calibration handle from `calibrate`")
        }
        if options.method.needsQuantizedModel && input.quantized == nil {
            throw AdapterError.invalidParameter("model", "\(options.method.rawValue) compensates a quantization error: pass a quantized model (from `quantize`)")
        }
        if options.method == .lqLoRA && options.activationWeighted && input.calibration == nil {
            throw AdapterError.invalidParameter("calibration", "activation-weighted lq-lora needs calibration statistics")
        }
        if options.method == .qaLoRA {
            guard let spec = input.quantized?.spec, [.int, .gptq, .hqq].contains(spec.method), spec.groupSize > 1,
                  spec.rotation == nil, spec.outliers == nil else {
                throw AdapterError.invalidParameter("model", "qa-lora folds into the zero points of a grouped INT-k base (int, gptq or hqq with groupSize > 1, no rotation or outliers)")
            }
        }
    }

    struct LayerContext {
        let input: LayerInitInput
        let options: AdapterInitOptions
        /// `W − base` before, Float64.
        let errorBefore: Matrix<Double>
        /// ‖W‖² and ‖XWᵀ‖².
        let signal: Double
        let outputSignal: Double?

        var scale: Double { LoRAScaling.scale(rank: input.rank, alpha: input.alpha, useRSLoRA: options.useRSLoRA) }
        var svd: SVDChoice {
            let automatic = SVDChoice.automatic(rank: input.rank, seed: LayerSeed.seed(options.seed, input.module))
            return SVDChoice(mode: options.svdMode ?? automatic.mode, seed: automatic.seed)
        }
        var spec: QuantizationSpec { input.quantized!.spec }

        func quantize(_ matrix: Matrix<Float>) throws -> any QuantizedWeight {
            try Quantizer.quantize(matrix, name: input.module, spec: spec, calibration: input.calibration)
        }
    }

    /// One method, measured.
    static func run(_ method: AdapterInitMethod, _ context: LayerContext) throws -> LayerInitResult {
        let input = context.input
        var outcome: MethodOutcome
        switch method {
        case .lora, .gaussian: outcome = RandomInitialization.run(method, context)
        case .pissa: outcome = try WeightDerivedInitialization.pissa(context)
        case .olora: outcome = try WeightDerivedInitialization.olora(context)
        case .loftq: outcome = try AlternatingInitialization.loftq(context)
        case .lqLoRA: outcome = try AlternatingInitialization.lqLoRA(context)
        case .lqer, .qeraApprox, .cloq: outcome = try CalibratedInitialization.scaledSVD(method, context)
        case .quailora: outcome = try CalibratedInitialization.quailora(context)
        case .qaLoRA: outcome = try QALoRAInitialization.run(context)
        case .auto: preconditionFailure("auto is resolved per candidate")
        }
        var layer = LoRALayer(module: input.module, alpha: input.alpha, loraA: outcome.loraA, loraB: outcome.loraB,
                              poolingGroupSize: outcome.poolingGroupSize)
        let newBaseWeight = outcome.newBase?.dequantized ?? input.baseWeight
        let adapter = LoRAAdapter(layers: [layer], rank: input.rank, alpha: input.alpha, useRSLoRA: context.options.useRSLoRA)
        let delta = adapter.deltaWeight(of: layer)
        if context.options.useDoRA {
            // PEFT: m = ‖W + s·B·A‖_row with W the (dequantized) base the adapter sits on.
            var adapted = newBaseWeight
            for i in adapted.values.indices { adapted.values[i] += delta.values[i] }
            layer.magnitude = RowNorms.of(adapted).map { Float($0) }
        }
        let after = LayerErrors.subtracting(LayerErrors.residual(original: input.weight, approximation: newBaseWeight), delta)
        var result = LayerInitResult(
            layer: layer, newBase: outcome.newBase, method: method,
            weightErrorBefore: LayerErrors.ratio(LayerErrors.squaredNorm(context.errorBefore), context.signal),
            weightErrorAfter: LayerErrors.ratio(LayerErrors.squaredNorm(after), context.signal),
            svd: outcome.usedSVD ? context.svd.mode : nil, relativeDamping: outcome.relativeDamping,
            iterations: outcome.iterations)
        if let calibration = input.calibration, let outputSignal = context.outputSignal {
            result.outputErrorBefore = LayerErrors.ratio(try LayerErrors.outputSquaredNorm(context.errorBefore, gram: calibration.gram), outputSignal)
            result.outputErrorAfter = LayerErrors.ratio(try LayerErrors.outputSquaredNorm(after, gram: calibration.gram), outputSignal)
            if let tail = outcome.weightedTail { result.theoreticalOutputError = LayerErrors.ratio(tail, outputSignal) }
        }
        return result
    }

    /// `auto`: every candidate, keeping the lowest output error (weight error without
    /// calibration).
    static func autoSelect(_ context: LayerContext) throws -> LayerInitResult {
        let hasCalibration = context.input.calibration != nil
        var candidates = context.options.candidates
        if candidates.isEmpty { candidates = hasCalibration ? [.lora, .loftq, .lqer, .cloq] : [.lora, .loftq] }
        var best: LayerInitResult?
        for candidate in candidates {
            let result = try run(candidate, context)
            let score = hasCalibration ? (result.outputErrorAfter ?? .infinity) : result.weightErrorAfter
            let bestScore = best.map { hasCalibration ? ($0.outputErrorAfter ?? .infinity) : $0.weightErrorAfter } ?? .infinity
            if best == nil || score < bestScore { best = result }
        }
        return best!
    }
}

/// What a method hands back before measurement: factors with the scale already divided out.
struct MethodOutcome {
    var loraA: Matrix<Float>
    var loraB: Matrix<Float>
    var newBase: NewBase?
    var usedSVD = true
    var relativeDamping: Double?
    var iterations: Int?
    var poolingGroupSize: Int?
    /// Σ_{i>r} σᵢ² of the weighted error (output-space optimum), for `.gram`.
    var weightedTail: Double?

    /// Factors with `B·A ≈ target`, divided by the LoRA scale `s` (`√s` from each).
    static func scaled(_ factors: LowRankFactors, scale: Double) -> (a: Matrix<Float>, b: Matrix<Float>) {
        let root = scale.squareRoot()
        let a = Matrix(rowCount: factors.loraA.rowCount, columnCount: factors.loraA.columnCount,
                       values: factors.loraA.values.map { Float($0 / root) })
        let b = Matrix(rowCount: factors.loraB.rowCount, columnCount: factors.loraB.columnCount,
                       values: factors.loraB.values.map { Float($0 / root) })
        return (a, b)
    }
}

/// A per-layer seed: the request's seed mixed with the module name (FNV-1a), so layers differ
/// and the same request repeats exactly.
enum LayerSeed {
    static func seed(_ seed: UInt64, _ module: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in module.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash ^ seed
    }
}
