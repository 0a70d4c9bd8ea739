import LinearAlgebra
import Tensors

/// How TIES elects the sign of each entry (PEFT `calculate_majority_sign_mask`).
public enum MajoritySignMethod: String, CaseIterable, Sendable {
    /// `γ = sign(Σ_t τ_t)`.
    case total
    /// `γ = sign(Σ_t sign(τ_t))`.
    case frequency
}

/// The task-arithmetic rules of PEFT's `peft.utils.merge_utils` (algorithms.md §13), on task
/// tensors `τ_t` of one shape `[out, in]` in Float64, with weights `ω_t`:
///
/// - trim (`magnitude_based_pruning`): keep the `k = ⌊density · numel⌋` entries of largest `|τ|`;
/// - DARE (`random_pruning`, Yu et al., arXiv 2311.03099): keep each entry with probability
///   `density` (a Bernoulli mask) and divide the kept ones by `density`;
/// - TIES (Yadav et al., arXiv 2306.01708): on the unweighted trimmed tensors elect
///   `γ = +1 if s ≥ 0 else −1` with `s = Σ_t τ_t` ("total") or `Σ_t sign τ_t` ("frequency"), mask
///   `μ_t = [sign τ_t = γ]` (a zero never matches), and take the disjoint mean
///   `Σ_t μ_t ω_t τ_t / max(Σ_t μ_t, 1)`.
///
/// Like PEFT's `prune`, a density ≥ 1 leaves a tensor untouched (no mask, no rescale).
/// Accumulators are `[out·in]` Float64 buffers; no stack of all tensors is built.
public enum TaskArithmetic {
    /// `Σ_t ω_t τ_t` (`task_arithmetic`).
    public static func weightedSum(_ tensors: [Matrix<Double>], weights: [Double]) -> Matrix<Double> {
        precondition(!tensors.isEmpty && tensors.count == weights.count)
        let shape = tensors[0].shape
        var sum = [Double](repeating: 0, count: tensors[0].values.count)
        sum.withUnsafeMutableBufferPointer { s in
            for (tensor, weight) in zip(tensors, weights) {
                precondition(tensor.shape == shape)
                tensor.values.withUnsafeBufferPointer { t in for i in 0..<t.count { s[i] += weight * t[i] } }
            }
        }
        return Matrix(rowCount: shape[0], columnCount: shape[1], values: sum)
    }

    /// PEFT `prune(τ, density, "magnitude")`: the `k = ⌊density · numel⌋` entries of largest `|τ|`
    /// kept, the others zero. At the cut, equal magnitudes are kept lowest flat index first (torch's
    /// `topk` leaves that choice open). `density ≥ 1` returns `τ`.
    public static func magnitudePruned(_ tensor: Matrix<Double>, density: Double) -> Matrix<Double> {
        precondition(density >= 0)
        let count = tensor.values.count
        if density >= 1 || count == 0 { return tensor }
        let keep = Int((density * Double(count)).rounded(.towardZero))
        var result = Matrix<Double>(zeros: tensor.rowCount, tensor.columnCount)
        guard keep > 0 else { return result }
        var magnitudes = tensor.values.map { abs($0) }
        let threshold = magnitudes.withUnsafeMutableBufferPointer { kthLargest($0, keep) }
        tensor.values.withUnsafeBufferPointer { t in
            result.values.withUnsafeMutableBufferPointer { r in
                var above = 0
                for i in 0..<count where abs(t[i]) > threshold { r[i] = t[i]; above += 1 }
                var remaining = keep - above
                var i = 0
                while remaining > 0 && i < count {
                    if abs(t[i]) == threshold { r[i] = t[i]; remaining -= 1 }
                    i += 1
                }
            }
        }
        return result
    }

    /// PEFT `prune(τ, density, "random", rescale=True)` with a given mask: `τ · mask / density`.
    public static func randomPruned(_ tensor: Matrix<Double>, density: Double, mask: [Bool]) -> Matrix<Double> {
        precondition(density > 0 && mask.count == tensor.values.count)
        if density >= 1 { return tensor }
        var result = tensor
        result.values.withUnsafeMutableBufferPointer { r in
            mask.withUnsafeBufferPointer { m in
                for i in 0..<r.count { r[i] = m[i] ? r[i] / density : 0 }
            }
        }
        return result
    }

    /// A Bernoulli(`density`) keep-mask of `count` entries: entry `i` is kept when the `i`-th
    /// uniform of `SeededRandomGenerator(seed)` is below `density`.
    public static func bernoulliMask(count: Int, density: Double, seed: UInt64) -> [Bool] {
        var generator = SeededRandomGenerator(seed: seed)
        return (0..<count).map { _ in generator.nextUniform() < density }
    }

    /// Sign election and disjoint mean (PEFT `calculate_majority_sign_mask` + `disjoint_merge`) of
    /// already trimmed or DARE-processed tensors.
    public static func disjointMerge(_ tensors: [Matrix<Double>], weights: [Double],
                                     majoritySign: MajoritySignMethod) -> Matrix<Double> {
        precondition(!tensors.isEmpty && tensors.count == weights.count)
        let (rows, columns) = (tensors[0].rowCount, tensors[0].columnCount)
        let count = rows * columns
        var election = [Double](repeating: 0, count: count)
        var numerator = [Double](repeating: 0, count: count)
        var matches = [Double](repeating: 0, count: count)
        election.withUnsafeMutableBufferPointer { e in
            for tensor in tensors {
                precondition(tensor.values.count == count)
                tensor.values.withUnsafeBufferPointer { t in
                    switch majoritySign {
                    case .total: for i in 0..<count { e[i] += t[i] }
                    case .frequency: for i in 0..<count { e[i] += t[i] > 0 ? 1 : (t[i] < 0 ? -1 : 0) }
                    }
                }
            }
        }
        election.withUnsafeBufferPointer { e in
            numerator.withUnsafeMutableBufferPointer { n in
                matches.withUnsafeMutableBufferPointer { m in
                    for (tensor, weight) in zip(tensors, weights) {
                        tensor.values.withUnsafeBufferPointer { t in
                            for i in 0..<count {
                                let agrees = e[i] >= 0 ? t[i] > 0 : t[i] < 0
                                if agrees { n[i] += weight * t[i]; m[i] += 1 }
                            }
                        }
                    }
                    for i in 0..<count { n[i] /= max(m[i], 1) }
                }
            }
        }
        return Matrix(rowCount: rows, columnCount: columns, values: numerator)
    }

    /// The `k`-th largest value (`1 ≤ k ≤ count`) by three-way quickselect with a median-of-three
    /// pivot (Hoare 1961; Bentley & McIlroy 1993); reorders `values`. Expected O(count).
    static func kthLargest(_ values: UnsafeMutableBufferPointer<Double>, _ k: Int) -> Double {
        precondition(k >= 1 && k <= values.count)
        var (low, high) = (0, values.count - 1)
        let target = k - 1
        while low < high {
            let (a, b, c) = (values[low], values[(low + high) / 2], values[high])
            let pivot = max(min(a, b), min(max(a, b), c))
            // Descending: [low, lt) > pivot, [lt, i) == pivot, (gt, high] < pivot.
            var (lt, i, gt) = (low, low, high)
            while i <= gt {
                if values[i] > pivot { values.swapAt(lt, i); lt += 1; i += 1 }
                else if values[i] < pivot { values.swapAt(i, gt); gt -= 1 }
                else { i += 1 }
            }
            if target < lt { high = lt - 1 } else if target > gt { low = gt + 1 } else { return pivot }
        }
        return values[low]
    }
}
