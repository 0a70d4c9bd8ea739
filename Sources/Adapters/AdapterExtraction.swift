import LinearAlgebra
import Tensors

/// How `AdapterExtraction.extract` picks a layer's rank.
public enum RankRule: Sendable, Equatable {
    /// Exactly `r` (mergekit `--max-rank`).
    case fixed(Int)
    /// The smallest `r` with `Σ_{i≤r} σᵢ² / Σ σᵢ² ≥ τ`, `τ ∈ (0, 1]` (PHLoRA's energy retention).
    case energy(Double)
    /// The smallest `r` with `‖ΔW − (ΔW)_r‖_F / ‖ΔW‖_F = √(Σ_{i>r} σᵢ² / Σ σᵢ²) ≤ ε`, `ε ∈ [0, 1)`.
    case relativeError(Double)
}

/// One extracted layer and what it keeps of the fine-tuning delta.
public struct ExtractedLayer: Sendable {
    /// Scale 1: `alpha = rank`, `ΔW ≈ B·A`.
    public var layer: LoRALayer
    public var rank: Int
    /// `Σ_{i≤r} σᵢ² / Σ σᵢ²` (with the randomized SVD the denominator is `‖ΔW‖²_F`, the same sum).
    public var energyRetained: Double
    /// `‖ΔW − B·A‖_F / ‖ΔW‖_F` with the stored Float32 factors (0 for a zero delta).
    public var relativeError: Double
    /// The whole spectrum of ΔW with the exact SVD; the leading `rank` values with the randomized one.
    public var singularValues: [Double]
}

/// Post-hoc LoRA extraction from a fine-tuned checkpoint (PHLoRA, Vasani et al., arXiv 2509.10971;
/// arcee-ai/mergekit `extract_lora.py`; algorithms.md §11).
///
/// Per module, `ΔW = W_ft − W_base` `[out, in]` in Float64, `U S Vᵀ = SVD(ΔW)` and, as mergekit's
/// default `distribute_scale`, `B = U_r √S_r` `[out, r]`, `A = √S_r V_rᵀ` `[r, in]`: the best rank-r
/// approximation in Frobenius norm (Eckart–Young), `‖ΔW − B·A‖²_F = Σ_{i>r} σᵢ²`. The layer has
/// `alpha = r`, so its scale is 1 (mergekit writes `lora_alpha = r` and matching patterns).
/// The energy and relative-error rules need the whole spectrum, so they always use the exact SVD
/// (LAPACK `gesdd`); a fixed rank may use the seeded randomized SVD.
public enum AdapterExtraction {
    public static func extract(module: String, base: Matrix<Float>, finetuned: Matrix<Float>, rule: RankRule,
                               maxRank: Int?, svd: SVDChoice.Mode, seed: UInt64) throws -> ExtractedLayer {
        guard base.shape == finetuned.shape else {
            throw AdapterError.invalidParameter("finetuned", "\(module): base is \(base.shape) but the fine-tuned weight is \(finetuned.shape)")
        }
        let (out, inputs) = (base.rowCount, base.columnCount)
        let limit = min(out, inputs)
        guard limit > 0 else { throw AdapterError.invalidParameter("base", "\(module) is empty (\(base.shape))") }
        if let maxRank, maxRank < 1 {
            throw AdapterError.invalidParameter("maxRank", "\(module): must be at least 1, got \(maxRank)")
        }
        switch rule {
        case let .fixed(r) where r < 1 || r > limit:
            throw AdapterError.invalidParameter("rank", "\(module) is [\(out), \(inputs)], so rank must be in 1...\(limit), got \(r)")
        case let .energy(tau) where !(tau > 0 && tau <= 1):
            throw AdapterError.invalidParameter("energy", "\(module): the energy to keep must be in (0, 1], got \(tau)")
        case let .relativeError(epsilon) where !(epsilon >= 0 && epsilon < 1):
            throw AdapterError.invalidParameter("relativeError", "\(module): the relative error must be in [0, 1), got \(epsilon)")
        default: break
        }
        if case let .fixed(r) = rule, svd == .randomized {
            return try extractRandomized(module: module, base: base, finetuned: finetuned, rank: min(r, maxRank ?? r), seed: seed)
        }
        let delta = LayerErrors.residual(original: finetuned, approximation: base)
        let total = LayerErrors.squaredNorm(delta)
        var decomposition: SingularValueDecomposition<Double>
        var spectrum: [Double]
        let rank: Int
        let randomized = !isSpectral(rule) && svd == .randomized
        if case let .fixed(r) = rule, randomized {
            rank = min(r, maxRank ?? r)
            decomposition = try LinearAlgebra.randomizedSVD(delta, rank: rank, seed: LayerSeed.seed(seed, module))
            spectrum = decomposition.singularValues
        } else {
            let full = try LinearAlgebra.svd(delta)
            spectrum = full.singularValues
            rank = min(selectedRank(rule, spectrum: spectrum), maxRank ?? limit)
            decomposition = full.truncated(toRank: rank)
        }
        var a = decomposition.vt, b = decomposition.u
        for k in 0..<rank {
            let root = decomposition.singularValues[k].squareRoot()
            for c in 0..<inputs { a[k, c] *= root }
            for row in 0..<out { b[row, k] *= root }
        }
        let layer = LoRALayer(module: module, alpha: Double(rank), loraA: LowRankProduct.narrowed(a), loraB: LowRankProduct.narrowed(b))
        var residual = delta
        try LinearAlgebra.multiplyAccumulate(LowRankProduct.widened(layer.loraB), LowRankProduct.widened(layer.loraA),
                                             into: &residual, alpha: -1, beta: 1)
        let kept = spectrum.prefix(rank).reduce(0) { $0 + $1 * $1 }
        let denominator = randomized ? total : spectrum.reduce(0) { $0 + $1 * $1 }
        return ExtractedLayer(layer: layer, rank: rank, energyRetained: denominator == 0 ? 1 : min(kept / denominator, 1),
                              relativeError: LayerErrors.ratio(LayerErrors.squaredNorm(residual), total),
                              singularValues: spectrum)
    }

    /// A fixed rank with the randomized SVD: ΔW in Float32 (`W_ft − W_base` of two nearby Float32
    /// values is exact, Sterbenz), the Float32 range finder of `LowRankCorrection.fit`, factors and
    /// norms in Float64, and the residual of the stored factors by one sgemm.
    static func extractRandomized(module: String, base: Matrix<Float>, finetuned: Matrix<Float>, rank: Int,
                                  seed: UInt64) throws -> ExtractedLayer {
        let delta = LayerErrors.residualFloat(original: finetuned, approximation: base)
        let factors = try LowRankCorrection.fit(error: delta, rank: rank, svd: SVDChoice(mode: .randomized, seed: LayerSeed.seed(seed, module)))
        let layer = LoRALayer(module: module, alpha: Double(rank), loraA: LowRankProduct.narrowed(factors.loraA),
                              loraB: LowRankProduct.narrowed(factors.loraB))
        var residual = delta
        try LinearAlgebra.multiplyAccumulate(layer.loraB, layer.loraA, into: &residual, alpha: -1, beta: 1)
        let total = factors.weightedSquaredNorm
        let kept = factors.singularValues.reduce(0) { $0 + $1 * $1 }
        return ExtractedLayer(layer: layer, rank: rank, energyRetained: total == 0 ? 1 : min(kept / total, 1),
                              relativeError: LayerErrors.ratio(LayerErrors.squaredNorm(residual), total),
                              singularValues: factors.singularValues)
    }

    /// Ranks per module under a parameter budget: greedy by the marginal reduction of the squared
    /// error per parameter, `σ_{r+1}² / cost` (cost = `out + in` per rank). Each module's gains are
    /// non-increasing, so this solves the fractional relaxation of the knapsack exactly and the
    /// integer one up to the budget left over at the end (less than one rank's cost). Starting from rank 0
    /// everywhere, it repeatedly adds one rank to the module with the largest next gain that still
    /// fits in the remaining budget (ties: earlier module first); modules whose next rank does not
    /// fit, whose spectrum is used up, or whose next σ is 0 drop out. Every module appears in the
    /// result, possibly with rank 0 (not adapted).
    public static func allocateGlobally(spectra: [(module: String, singularValues: [Double], parameterCostPerRank: Int)],
                                        parameterBudget: Int) -> [String: Int] {
        var ranks = [Int](repeating: 0, count: spectra.count)
        var remaining = max(parameterBudget, 0)
        var heap = GainHeap()
        func push(_ index: Int) {
            let entry = spectra[index], r = ranks[index]
            guard r < entry.singularValues.count, entry.parameterCostPerRank > 0, entry.singularValues[r] > 0 else { return }
            let sigma = entry.singularValues[r]
            heap.push((gain: sigma * sigma / Double(entry.parameterCostPerRank), index: index))
        }
        for index in spectra.indices { push(index) }
        while let top = heap.pop() {
            let cost = spectra[top.index].parameterCostPerRank
            guard cost <= remaining else { continue }
            remaining -= cost
            ranks[top.index] += 1
            push(top.index)
        }
        var result: [String: Int] = [:]
        for (index, entry) in spectra.enumerated() { result[entry.module, default: 0] += ranks[index] }
        return result
    }

    /// The rank a spectral rule asks for (at least 1; `fixed` as given).
    static func selectedRank(_ rule: RankRule, spectrum: [Double]) -> Int {
        let squares = spectrum.map { $0 * $0 }
        let total = squares.reduce(0, +)
        guard total > 0 else { if case let .fixed(r) = rule { return r } else { return 1 } }
        switch rule {
        case let .fixed(r): return r
        case let .energy(tau):
            var kept = 0.0
            for (i, square) in squares.enumerated() {
                kept += square
                if kept >= tau * total { return i + 1 }
            }
            return squares.count
        case let .relativeError(epsilon):
            // Tails summed from the smallest value up (no cancellation): tail[r] = Σ_{i≥r} σᵢ².
            var tail = 0.0
            var rank = squares.count
            for r in stride(from: squares.count - 1, through: 1, by: -1) {
                tail += squares[r]
                guard (tail / total).squareRoot() <= epsilon else { break }
                rank = r
            }
            return rank
        }
    }

    static func isSpectral(_ rule: RankRule) -> Bool {
        if case .fixed = rule { return false }
        return true
    }
}

/// A binary max-heap of `(gain, index)`, larger gain first, then smaller index.
struct GainHeap {
    private var items: [(gain: Double, index: Int)] = []

    private static func before(_ a: (gain: Double, index: Int), _ b: (gain: Double, index: Int)) -> Bool {
        a.gain > b.gain || (a.gain == b.gain && a.index < b.index)
    }

    mutating func push(_ item: (gain: Double, index: Int)) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (gain: Double, index: Int)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var parent = 0
        while true {
            let (left, right) = (2 * parent + 1, 2 * parent + 2)
            var best = parent
            if left < items.count && Self.before(items[left], items[best]) { best = left }
            if right < items.count && Self.before(items[right], items[best]) { best = right }
            if best == parent { return first }
            items.swapAt(parent, best)
            parent = best
        }
    }
}
