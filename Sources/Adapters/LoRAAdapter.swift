import Tensors

/// PEFT's LoRA scale `s`: `α / r`, or `α / √r` with rsLoRA (Kalajdzievski, arXiv 2312.03732;
/// PEFT `LoraLayer.update_layer`).
public enum LoRAScaling {
    public static func scale(rank: Int, alpha: Double, useRSLoRA: Bool) -> Double {
        precondition(rank > 0)
        return useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }
}

/// One adapted linear layer, in PEFT's orientation: `ΔW = s · B · A` with
/// `loraA [r, in]` and `loraB [out, r]`, so the layer computes `x·Wᵀ + s·(x·Aᵀ)·Bᵀ`.
///
/// - DoRA (Liu et al., arXiv 2402.09353; PEFT `DoraLinearLayer`): `magnitude [out]` rescales each
///   output row, `W' = diag(m / ‖W + ΔW‖_row) · (W + ΔW)`.
/// - QA-LoRA (Xu et al., arXiv 2309.14717): `loraA` is `[r, in / poolingGroupSize]` and acts on
///   the input averaged over each group of `poolingGroupSize` channels (the reference repo's
///   `AvgPool1d`), so `ΔW[o, i] = s · (B·A)[o, i / L] / L` is constant inside each group.
public struct LoRALayer: Sendable, Equatable {
    /// The module path, PEFT style: `model.layers.0.self_attn.q_proj` (the weight is
    /// `<module>.weight`).
    public let module: String
    public var alpha: Double
    public var loraA: Matrix<Float>
    public var loraB: Matrix<Float>
    public var magnitude: [Float]?
    public var poolingGroupSize: Int?

    public init(module: String, alpha: Double, loraA: Matrix<Float>, loraB: Matrix<Float>,
                magnitude: [Float]? = nil, poolingGroupSize: Int? = nil) {
        precondition(loraA.rowCount == loraB.columnCount, "A is [r, in] and B is [out, r]")
        self.module = module
        self.alpha = alpha
        self.loraA = loraA
        self.loraB = loraB
        self.magnitude = magnitude
        self.poolingGroupSize = poolingGroupSize
    }

    public var rank: Int { loraA.rowCount }
    public var outputWidth: Int { loraB.rowCount }
    /// Width of the base weight's input (A's width times the pooling group for QA-LoRA).
    public var inputWidth: Int { loraA.columnCount * (poolingGroupSize ?? 1) }
    public var weightName: String { module + ".weight" }

    /// `A` on the dense input: itself, or for QA-LoRA `A_dense[k, i] = A[k, i / L] / L`, so that
    /// `s · B · A_dense` is the layer's ΔW with no pooling.
    public var denseLoraA: Matrix<Float> {
        guard let group = poolingGroupSize, group > 1 else { return loraA }
        var dense = Matrix<Float>(zeros: rank, inputWidth)
        for k in 0..<rank { for i in 0..<inputWidth { dense[k, i] = loraA[k, i / group] / Float(group) } }
        return dense
    }
}

/// A LoRA adapter: its layers plus the PEFT `LoraConfig` fields that decide how they apply.
public struct LoRAAdapter: Sendable {
    public var layers: [LoRALayer]
    /// `r` and `lora_alpha` of the config; layers may differ through the patterns.
    public var rank: Int
    public var alpha: Double
    public var useRSLoRA: Bool
    public var useDoRA: Bool
    /// PEFT `rank_pattern` / `alpha_pattern`: key → value, matched as `(.*\.)?(key)$`.
    public var rankPattern: [String: Int]
    public var alphaPattern: [String: Double]
    /// Leaf module names adapted (`q_proj`, …), PEFT `target_modules`.
    public var targetModules: [String]
    public var baseModelNameOrPath: String?
    /// PEFT `init_lora_weights` vocabulary where one exists (`true`, `gaussian`, `pissa`, …) or
    /// our method name.
    public var initMethod: String
    /// PEFT `modules_to_save`: whole tensors (Hugging Face names, e.g. `model.norm.weight`) that
    /// replace the base's (extraction of a fine-tune whose embeddings or norms changed).
    public var modulesToSave: [Tensor] = []

    public init(layers: [LoRALayer], rank: Int, alpha: Double, useRSLoRA: Bool = false, useDoRA: Bool = false,
                rankPattern: [String: Int] = [:], alphaPattern: [String: Double] = [:],
                targetModules: [String]? = nil, baseModelNameOrPath: String? = nil, initMethod: String = "lora") {
        self.layers = layers
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.useDoRA = useDoRA
        self.rankPattern = rankPattern
        self.alphaPattern = alphaPattern
        self.targetModules = targetModules ?? LoRAAdapter.leafNames(layers.map(\.module))
        self.baseModelNameOrPath = baseModelNameOrPath
        self.initMethod = initMethod
    }

    /// Sorted distinct last components of module paths.
    public static func leafNames(_ modules: [String]) -> [String] {
        Array(Set(modules.map { String($0.split(separator: ".").last ?? Substring($0)) })).sorted()
    }

    public func layer(module: String) -> LoRALayer? { layers.first { $0.module == module } }

    /// `s` of one layer, from its own rank and alpha.
    public func scale(of layer: LoRALayer) -> Double {
        LoRAScaling.scale(rank: layer.rank, alpha: layer.alpha, useRSLoRA: useRSLoRA)
    }

    /// `ΔW = s · B · A` `[out, in]` in Float32 (expanded over the pooling groups for QA-LoRA),
    /// computed in Float64.
    public func deltaWeight(of layer: LoRALayer) -> Matrix<Float> {
        LowRankProduct.delta(loraB: layer.loraB, loraA: layer.loraA, scale: scale(of: layer),
                             poolingGroupSize: layer.poolingGroupSize)
    }

    /// What the layer computes with the adapter applied to base weight `W`: `W + ΔW`, or for
    /// DoRA `diag(m / ‖W + ΔW‖_row) · (W + ΔW)` (PEFT `DoraLinearVariant.merge_safe`).
    public func adaptedWeight(base: Matrix<Float>, layer: LoRALayer) -> Matrix<Float> {
        precondition(base.rowCount == layer.outputWidth && base.columnCount == layer.inputWidth)
        let delta = deltaWeight(of: layer)
        var result = base
        for index in result.values.indices { result.values[index] += delta.values[index] }
        guard let magnitude = layer.magnitude else { return result }
        let norms = RowNorms.of(result)
        for row in 0..<result.rowCount {
            let factor = norms[row] == 0 ? 0 : Double(magnitude[row]) / norms[row]
            for column in 0..<result.columnCount {
                result[row, column] = Float(Double(result[row, column]) * factor)
            }
        }
        return result
    }
}

/// Euclidean norm of each row of `[out, in]`, accumulated in Float64 (DoRA's `‖·‖_row`).
public enum RowNorms {
    public static func of(_ matrix: Matrix<Float>) -> [Double] {
        (0..<matrix.rowCount).map { row in
            var sum = 0.0
            for value in matrix.row(row) { sum += Double(value) * Double(value) }
            return sum.squareRoot()
        }
    }
}
