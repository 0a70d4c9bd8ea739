import LinearAlgebra
import Tensors

/// How `AdapterCombination.combine` joins adapters (PEFT `add_weighted_adapter`'s
/// `combination_type`, algorithms.md §13, with the exact ΔW-level semantics of the merge issue).
public enum AdapterCombinationMethod: String, CaseIterable, Sendable {
    /// Exact `Σ_t w_t s_t B_t A_t` by concatenation; rank `Σ r_t` (not PEFT's factor-wise linear).
    case linear
    /// PEFT's `cat`: the same concatenation and the same ΔW as `linear`.
    case cat
    /// The exact weighted sum, then a truncated SVD.
    case svd
    /// TIES on the ΔW_t (trim, elect sign, disjoint mean), then a truncated SVD.
    case ties
    /// DARE drop-and-rescale on the ΔW_t, weighted sum, then a truncated SVD.
    case dareLinear = "dare_linear"
    /// DARE drop-and-rescale, then TIES' sign election and disjoint mean, then a truncated SVD.
    case dareTies = "dare_ties"

    /// Sparsifies, so needs a density.
    public var needsDensity: Bool { [.ties, .dareLinear, .dareTies].contains(self) }
    /// Draws DARE masks.
    public var isRandom: Bool { self == .dareLinear || self == .dareTies }
}

/// One source of a combination and its weight `w_t`.
public struct WeightedAdapter: Sendable {
    public var adapter: LoRAAdapter
    public var weight: Double
    public init(adapter: LoRAAdapter, weight: Double) {
        self.adapter = adapter
        self.weight = weight
    }
}

/// What one combined layer became.
public struct CombinedLayerReport: Sendable {
    public var module: String
    public var rank: Int
    /// `‖ΔW_target − ΔW_new‖_F / ‖ΔW_target‖_F` with the stored (Float32) factors, where the target
    /// is the exact weighted sum (`svd`) or the TIES/DARE-processed ΔW; nil for `linear`/`cat`
    /// (exact by construction); 0 when the target is zero.
    public var truncationError: Double?
    /// The density applied (ties and DARE), nil otherwise.
    public var density: Double?
}

/// Combines LoRA adapters into one (algorithms.md §13; PEFT `LoraModel.add_weighted_adapter`).
///
/// Each source contributes `ΔW_t = s_t · B_t · A_t` `[out, in]` with its own scale `s_t` (rsLoRA,
/// rank and alpha patterns) and QA-LoRA layers expanded to the dense input; a module a source does
/// not adapt counts as zero for it. The result has scale 1 on every layer (`alpha = r`, no rsLoRA,
/// `rank_pattern`/`alpha_pattern` for layers whose rank differs from the adapter's `r` = the largest
/// layer rank), as mergekit and PEFT PR #3449 write it; target modules are the union.
///
/// - `linear`, `cat`: `A* = [λ_1 A_1; …; λ_T A_T]` `[Σr_t, in]`, `B* = [B_1 … B_T]` `[out, Σr_t]`,
///   `λ_t = w_t s_t`, so `B*A* = Σ_t λ_t B_t A_t` with no cross terms.
/// - `svd`, `ties`, `dare_linear`, `dare_ties`: the target `ΔW*` (`Σ_t w_t ΔW_t`, or
///   `combineDeltas`' TIES/DARE rule), then `LowRankCorrection.fit` at `rank` (default: the
///   largest source rank of the module; at most `min(out, in)`), balanced split `B = U√S`,
///   `A = √S Vᵀ`. Exact whenever `rank ≥ rank(ΔW*)`, e.g. `r_1 + r_2` for two adapters.
/// - DARE masks come from `dropMask(module, t, out, in)` (row-major, `true` = kept) when given,
///   else from `SeededRandomGenerator` seeded with `seed` mixed with the module name and `t`
///   (`t` = the source's index in `sources`); with density 1 no mask is drawn (PEFT's `prune`).
/// - `rank` applies to the SVD-refactorized methods only; `linear`/`cat` keep `Σ r_t`. `density`,
///   when given, must be in (0, 1] for every method; `majoritySign` is `total` or `frequency`.
/// - Layers come out in order of first appearance over the sources; the adapter's `initMethod` is
///   `combined-<method>`, its `baseModelNameOrPath` the first source's.
public enum AdapterCombination {
    public static func combine(_ sources: [WeightedAdapter], method: AdapterCombinationMethod, rank: Int? = nil,
                               density: Double? = nil, seed: UInt64 = 0, majoritySign: String = "total",
                               svd: SVDChoice.Mode = .exact,
                               dropMask: ((_ module: String, _ sourceIndex: Int, _ rowCount: Int, _ columnCount: Int) -> [Bool])? = nil)
        throws -> (adapter: LoRAAdapter, layers: [CombinedLayerReport]) {
        let sign = try validate(sources, method: method, rank: rank, density: density, majoritySign: majoritySign)
        var layers: [LoRALayer] = []
        var reports: [CombinedLayerReport] = []
        for module in unionOfModules(sources) {
            let present = try presentLayers(sources, module: module)
            let (out, inputs) = (present[0].layer.outputWidth, present[0].layer.inputWidth)
            if method == .linear || method == .cat {
                let layer = concatenated(module: module, present, out: out, inputs: inputs)
                layers.append(layer)
                reports.append(CombinedLayerReport(module: module, rank: layer.rank, truncationError: nil, density: nil))
                continue
            }
            let deltas = present.map { $0.layer.deltaWeight64(scale: $0.scale) }
            var masks: [[Bool]]?
            if method.isRandom, let d = density, d < 1 {
                masks = try present.map { entry in
                    let mask = dropMask?(module, entry.index, out, inputs)
                        ?? TaskArithmetic.bernoulliMask(count: out * inputs, density: d, seed: sourceSeed(seed, module, entry.index))
                    guard mask.count == out * inputs else {
                        throw AdapterError.invalidParameter("dropMask", "\(module), source \(entry.index): \(mask.count) entries for [\(out), \(inputs)]")
                    }
                    return mask
                }
            }
            let target = try combineDeltas(deltas, weights: present.map(\.weight), method: method, density: density,
                                           majoritySign: sign.rawValue, masks: masks)
            let r = min(rank ?? present.map(\.layer.rank).max()!, min(out, inputs))
            let (layer, error) = try refactorized(target, module: module, rank: r,
                                                  svd: SVDChoice(mode: svd, seed: LayerSeed.seed(seed, module)))
            layers.append(layer)
            reports.append(CombinedLayerReport(module: module, rank: r, truncationError: error,
                                               density: method.needsDensity ? density : nil))
        }
        let maxRank = layers.map(\.rank).max() ?? 1
        var rankPattern: [String: Int] = [:], alphaPattern: [String: Double] = [:]
        for layer in layers where layer.rank != maxRank {
            rankPattern[layer.module] = layer.rank
            alphaPattern[layer.module] = Double(layer.rank)
        }
        let targets = Set(sources.flatMap(\.adapter.targetModules)).union(LoRAAdapter.leafNames(layers.map(\.module)))
        let adapter = LoRAAdapter(layers: layers, rank: maxRank, alpha: Double(maxRank), useRSLoRA: false, useDoRA: false,
                                  rankPattern: rankPattern, alphaPattern: alphaPattern, targetModules: targets.sorted(),
                                  baseModelNameOrPath: sources.first?.adapter.baseModelNameOrPath,
                                  initMethod: "combined-" + method.rawValue)
        return (adapter, reports)
    }

    /// The ΔW-level rule of `method` on the source deltas `ΔW_t` (same shape) with weights `w_t`:
    /// `Σ w_t ΔW_t` for linear/cat/svd; TIES, DARE-linear or DARE-TIES per `TaskArithmetic`.
    /// `masks[t]` (row-major, `true` = kept) are DARE's Bernoulli draws; when nil they come from
    /// `SeededRandomGenerator(seed ^ t·φ)`.
    public static func combineDeltas(_ deltas: [Matrix<Double>], weights: [Double], method: AdapterCombinationMethod,
                                     density: Double?, majoritySign: String = "total", masks: [[Bool]]? = nil,
                                     seed: UInt64 = 0) throws -> Matrix<Double> {
        guard !deltas.isEmpty, deltas.count == weights.count else {
            throw AdapterError.invalidParameter("adapters", "\(deltas.count) deltas and \(weights.count) weights")
        }
        guard deltas.allSatisfy({ $0.shape == deltas[0].shape }) else {
            throw AdapterError.invalidParameter("adapters", "deltas of shapes \(deltas.map(\.shape)) cannot be combined")
        }
        guard let sign = MajoritySignMethod(rawValue: majoritySign) else {
            throw AdapterError.invalidParameter("majoritySign", "must be total or frequency, got \(majoritySign)")
        }
        guard method.needsDensity else { return TaskArithmetic.weightedSum(deltas, weights: weights) }
        let d = try checkedDensity(density, method: method)
        if let masks, masks.count != deltas.count || zip(masks, deltas).contains(where: { $0.count != $1.values.count }) {
            throw AdapterError.invalidParameter("dropMask", "one mask of \(deltas[0].values.count) entries per delta expected")
        }
        switch method {
        case .ties:
            let trimmed = deltas.map { TaskArithmetic.magnitudePruned($0, density: d) }
            return TaskArithmetic.disjointMerge(trimmed, weights: weights, majoritySign: sign)
        default:
            let dropped = deltas.enumerated().map { t, delta in
                TaskArithmetic.randomPruned(delta, density: d, mask: masks?[t] ?? (d >= 1 ? [Bool](repeating: true, count: delta.values.count)
                    : TaskArithmetic.bernoulliMask(count: delta.values.count, density: d, seed: seed ^ (UInt64(t) &* 0x9E37_79B9_7F4A_7C15))))
            }
            return method == .dareLinear ? TaskArithmetic.weightedSum(dropped, weights: weights)
                : TaskArithmetic.disjointMerge(dropped, weights: weights, majoritySign: sign)
        }
    }

    // MARK: - Pieces

    struct Present {
        let index: Int
        let layer: LoRALayer
        let scale: Double
        let weight: Double
    }

    static func validate(_ sources: [WeightedAdapter], method: AdapterCombinationMethod, rank: Int?, density: Double?,
                         majoritySign: String) throws -> MajoritySignMethod {
        guard !sources.isEmpty else { throw AdapterError.invalidParameter("adapters", "at least one adapter is needed") }
        if sources.contains(where: { $0.adapter.useDoRA || $0.adapter.layers.contains { $0.magnitude != nil } }) {
            throw AdapterError.invalidParameter("adapters", "DoRA magnitudes have no defined combination")
        }
        if let bad = sources.firstIndex(where: { !$0.weight.isFinite }) {
            throw AdapterError.invalidParameter("weights", "weight of adapter \(bad) is \(sources[bad].weight)")
        }
        if let rank, rank < 1 { throw AdapterError.invalidParameter("rank", "must be at least 1, got \(rank)") }
        if method.needsDensity || density != nil { _ = try checkedDensity(density, method: method) }
        guard let sign = MajoritySignMethod(rawValue: majoritySign) else {
            throw AdapterError.invalidParameter("majoritySign", "must be total or frequency, got \(majoritySign)")
        }
        return sign
    }

    static func checkedDensity(_ density: Double?, method: AdapterCombinationMethod) throws -> Double {
        guard let density, density > 0, density <= 1 else {
            throw AdapterError.invalidParameter("density", "\(method.rawValue) needs a density in (0, 1], got \(density.map { "\($0)" } ?? "none")")
        }
        return density
    }

    /// Modules in order of first appearance (source 0's layers first).
    static func unionOfModules(_ sources: [WeightedAdapter]) -> [String] {
        var seen = Set<String>(), ordered: [String] = []
        for source in sources { for layer in source.adapter.layers where seen.insert(layer.module).inserted { ordered.append(layer.module) } }
        return ordered
    }

    /// The sources that adapt `module`, with their scales; all must agree on `[out, in]`.
    static func presentLayers(_ sources: [WeightedAdapter], module: String) throws -> [Present] {
        let present = sources.enumerated().compactMap { index, source in
            source.adapter.layer(module: module).map {
                Present(index: index, layer: $0, scale: source.adapter.scale(of: $0), weight: source.weight)
            }
        }
        let shapes = present.map { [$0.layer.outputWidth, $0.layer.inputWidth] }
        guard shapes.allSatisfy({ $0 == shapes[0] }) else {
            throw AdapterError.invalidParameter("adapters", "module \(module) has shapes \(shapes.map { "[\($0[0]), \($0[1])]" }.joined(separator: ", ")) in the sources")
        }
        return present
    }

    /// `A* = [λ_t A_t]` stacked by rows, `B* = [B_t]` side by side, `λ_t = w_t s_t`; alpha = rank.
    static func concatenated(module: String, _ present: [Present], out: Int, inputs: Int) -> LoRALayer {
        let total = present.reduce(0) { $0 + $1.layer.rank }
        var a = Matrix<Float>(zeros: total, inputs), b = Matrix<Float>(zeros: out, total)
        var offset = 0
        for entry in present {
            let r = entry.layer.rank
            let scaled = entry.layer.denseLoraA64(times: entry.weight * entry.scale)
            for i in 0..<(r * inputs) { a.values[offset * inputs + i] = Float(scaled.values[i]) }
            entry.layer.loraB.values.withUnsafeBufferPointer { source in
                b.values.withUnsafeMutableBufferPointer { destination in
                    for row in 0..<out { for k in 0..<r { destination[row * total + offset + k] = source[row * r + k] } }
                }
            }
            offset += r
        }
        return LoRALayer(module: module, alpha: Double(total), loraA: a, loraB: b)
    }

    /// Rank-`rank` factors of `target` (scale 1) and `‖target − B·A‖_F / ‖target‖_F` measured with
    /// the Float32 factors.
    static func refactorized(_ target: Matrix<Double>, module: String, rank: Int, svd: SVDChoice) throws -> (LoRALayer, Double) {
        let factors = try LowRankCorrection.fit(error: target, rank: rank, split: .balanced, svd: svd)
        let a = LowRankProduct.narrowed(factors.loraA), b = LowRankProduct.narrowed(factors.loraB)
        var residual = target
        try LinearAlgebra.multiplyAccumulate(LowRankProduct.widened(b), LowRankProduct.widened(a), into: &residual, alpha: -1, beta: 1)
        let error = LayerErrors.ratio(LayerErrors.squaredNorm(residual), LayerErrors.squaredNorm(target))
        return (LoRALayer(module: module, alpha: Double(rank), loraA: a, loraB: b), error)
    }

    /// DARE's per-module, per-source seed.
    static func sourceSeed(_ seed: UInt64, _ module: String, _ source: Int) -> UInt64 {
        LayerSeed.seed(seed, module) ^ (UInt64(source) &* 0x9E37_79B9_7F4A_7C15)
    }
}
