/// One way to store a layer, with what it costs and what it loses.
public struct MixedPrecisionCandidate: Sendable, Equatable {
    public var spec: QuantizationSpec
    /// Stored bits per weight (`QuantizedWeight.bitsPerWeight`).
    public var bitsPerWeight: Double
    /// The error the plan sums, e.g. ‖W − Q‖²_F (LQ-LoRA's cost; any non-negative additive measure).
    public var error: Double

    public init(spec: QuantizationSpec, bitsPerWeight: Double, error: Double) {
        self.spec = spec
        self.bitsPerWeight = bitsPerWeight
        self.error = error
    }
}

/// A layer to plan: its parameter count and its candidate formats.
public struct MixedPrecisionLayer: Sendable, Equatable {
    public var name: String
    public var parameterCount: Int
    public var candidates: [MixedPrecisionCandidate]

    public init(name: String, parameterCount: Int, candidates: [MixedPrecisionCandidate]) {
        self.name = name
        self.parameterCount = parameterCount
        self.candidates = candidates
    }
}

/// The format chosen for one layer.
public struct MixedPrecisionChoice: Sendable, Equatable {
    public var layer: String
    /// Index into the layer's `candidates`.
    public var candidateIndex: Int
    public var spec: QuantizationSpec
    public var bitsPerWeight: Double
    public var error: Double
}

/// A plan: one choice per layer (in the input order), its summed error and its average bits.
public struct MixedPrecisionPlan: Sendable, Equatable {
    public var choices: [MixedPrecisionChoice]
    /// Σ error of the chosen candidates.
    public var predictedError: Double
    /// Σ bits / Σ parameters of the chosen candidates.
    public var achievedBitsPerWeight: Double
}

/// The LQ-LoRA memory-budgeted assignment (algorithms.md §6(b), "ILP"; HanGuo97/lq-lora
/// `models/lq_utils.py` `compute_qconfig_assignments`, `mip_solve`): choose one candidate `cᵢ`
/// per layer `i` to minimise `Σᵢ errorᵢ(cᵢ)` subject to `Σᵢ bitsᵢ(cᵢ) ≤ budget·Σᵢ nᵢ`, a
/// multiple-choice knapsack. LQ-LoRA hands it to Gurobi; we solve it exactly by branch and bound
/// (`MixedPrecisionSearch`), on integer bit counts so the budget test is exact:
///
/// - `bitsᵢ(c) = round(bitsPerWeight·nᵢ)` whole bits (exact when `bitsPerWeight` came from a
///   `storageBitCount`), budget `⌊budget·Σnᵢ·(1 + 10⁻¹²)⌋` (the slack keeps decimal budgets
///   such as 4.1 from rounding down by one bit);
/// - candidates another candidate of the layer beats on both bits and error are dropped (an
///   optimum never needs them);
/// - the bound at a node is the linear-programming relaxation of the remaining layers — each at
///   its smallest candidate plus the most error-saving-per-bit steps along the lower convex hulls,
///   the last one fractional (Sinha & Zoltners, Oper. Res. 27(3), 1979) — and a node is pruned
///   when that bound cannot beat the best plan found so far by more than a relative 10⁻¹²;
/// - the first plan is the LP solution rounded down, and layers are branched in order of how
///   much error they can save, each trying its candidates by reduced cost at the LP multiplier.
///
/// The result is optimal up to that 10⁻¹² relative tolerance on error sums. The running time is
/// not polynomial in the worst case, but the LP bound is within one layer's step of the optimum,
/// so instances of hundreds of layers and tens of candidates finish in milliseconds.
public enum MixedPrecisionPlanner {
    public static func plan(layers: [MixedPrecisionLayer], budgetBitsPerWeight: Double) throws -> MixedPrecisionPlan {
        func refuse(_ parameter: String, _ reason: String) -> QuantizationError { .invalidParameter(parameter, reason) }
        guard !layers.isEmpty else { throw refuse("candidates", "the plan needs at least one layer") }
        guard budgetBitsPerWeight.isFinite, budgetBitsPerWeight > 0 else {
            throw refuse("budgetBitsPerWeight", "must be a positive number, got \(budgetBitsPerWeight)")
        }
        var items: [[MixedPrecisionSearch.Item]] = []
        var totalParameters = 0
        for layer in layers {
            guard layer.parameterCount > 0 else {
                throw refuse("candidates", "layer \(layer.name) has \(layer.parameterCount) parameters")
            }
            guard !layer.candidates.isEmpty else { throw refuse("candidates", "layer \(layer.name) has no candidates") }
            totalParameters += layer.parameterCount
            items.append(try layer.candidates.enumerated().map { index, candidate in
                guard candidate.bitsPerWeight.isFinite, candidate.bitsPerWeight >= 0,
                      candidate.error.isFinite, candidate.error >= 0 else {
                    throw refuse("candidates", "layer \(layer.name) candidate \(index) needs finite, non-negative bitsPerWeight and error (got \(candidate.bitsPerWeight), \(candidate.error))")
                }
                return MixedPrecisionSearch.Item(bits: Int((candidate.bitsPerWeight * Double(layer.parameterCount)).rounded()),
                                                 error: candidate.error, index: index)
            })
        }
        let budgetBits = Int((budgetBitsPerWeight * Double(totalParameters) * (1 + 1e-12)).rounded(.down))
        let minimumBits = items.reduce(0) { $0 + $1.map(\.bits).min()! }
        guard minimumBits <= budgetBits else {
            let needed = Double(minimumBits) / Double(totalParameters)
            throw refuse("budgetBitsPerWeight", "infeasible: the smallest candidates of every layer already need \(needed) bits per weight, above the budget of \(budgetBitsPerWeight)")
        }
        let chosen = MixedPrecisionSearch(layers: items, budgetBits: budgetBits).solve()
        var choices: [MixedPrecisionChoice] = []
        var errorSum = 0.0, bitSum = 0
        for (layer, index) in zip(layers, chosen) {
            let candidate = layer.candidates[index]
            choices.append(MixedPrecisionChoice(layer: layer.name, candidateIndex: index, spec: candidate.spec,
                                                bitsPerWeight: candidate.bitsPerWeight, error: candidate.error))
            errorSum += candidate.error
            bitSum += Int((candidate.bitsPerWeight * Double(layer.parameterCount)).rounded())
        }
        return MixedPrecisionPlan(choices: choices, predictedError: errorSum,
                                  achievedBitsPerWeight: Double(bitSum) / Double(totalParameters))
    }
}
