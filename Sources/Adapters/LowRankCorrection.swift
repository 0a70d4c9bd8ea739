import LinearAlgebra
import Tensors

/// How the error is weighted before the truncated SVD (algorithms.md §15.2).
public enum LowRankWeighting: Sendable {
    /// Plain Frobenius: LoftQ, PiSSA, LQ-LoRA, PHLoRA.
    case none
    /// `P = E · diag(v)`, then `A ← A · diag(v)⁻¹`: LQER (mean |x|) and QERA-approx (RMS).
    case diagonal([Double])
    /// `H = XᵀX [in, in]`: `L = chol(H + λI)`, `P = E · L`, then `A ← A · L⁻¹`. CLoQ = QERA-exact:
    /// the exact optimum of `‖X(E − BA)ᵀ‖_F` over rank-r `BA`. `relativeDamping` is λ / mean(diag H);
    /// when the factorization fails it grows tenfold (up to five times) and the result says so.
    case gram(Matrix<Double>, relativeDamping: Double)
    /// `P = diag(rows) · E · diag(columns)`, then `B ← diag(rows)⁻¹ B`, `A ← A diag(columns)⁻¹`:
    /// LQ-LoRA's rank-1 (row × column) weighting.
    case rankOne(rows: [Double], columns: [Double])
}

/// Where the singular values go: `balanced` (`B = U√S`, `A = √S Vᵀ`: LoftQ, PiSSA, LQ-LoRA) or
/// all on `B` (`B = U S`, `A = Vᵀ`: the LQER/QERA repositories).
public enum SingularValueSplit: String, Sendable { case balanced, allOnB }

/// Which SVD: LAPACK `gesdd`, or the seeded randomized range finder (Halko et al. 2011).
public struct SVDChoice: Sendable, Equatable {
    public enum Mode: String, Sendable { case exact, randomized }
    public var mode: Mode
    public var seed: UInt64
    public var oversampling: Int
    public var powerIterations: Int

    public init(mode: Mode, seed: UInt64 = 0, oversampling: Int = 10, powerIterations: Int = 2) {
        self.mode = mode
        self.seed = seed
        self.oversampling = oversampling
        self.powerIterations = powerIterations
    }

    /// Randomized for rank ≤ 256, exact above (the default).
    public static func automatic(rank: Int, seed: UInt64) -> SVDChoice {
        SVDChoice(mode: rank <= 256 ? .randomized : .exact, seed: seed)
    }
}

/// The result of `LowRankCorrection.fit`: `B·A ≈ E` (no LoRA scale applied yet).
public struct LowRankFactors: Sendable {
    /// `[r, in]`.
    public var loraA: Matrix<Double>
    /// `[out, r]`.
    public var loraB: Matrix<Double>
    /// The leading `r` singular values of the weighted error `P`.
    public var singularValues: [Double]
    /// `Σ_{i>r} σᵢ²` of `P` = `‖P − P_r‖²_F`, the optimum of the weighted objective (exact
    /// with the exact SVD; with the randomized SVD `‖P‖² − Σ_{i≤r} σᵢ²`).
    public var tailSquaredNorm: Double
    /// `‖P‖²_F`.
    public var weightedSquaredNorm: Double
    /// λ / mean(diag H) actually used by `.gram` (nil otherwise).
    public var relativeDamping: Double?
}

/// The one low-rank correction routine every initialisation reduces to (algorithms.md §15.2):
/// weight the error, take a rank-r truncated SVD, split the singular values, undo the weighting.
public enum LowRankCorrection {
    /// Fits `B·A` of rank `rank` to `error [out, in]` under `weighting`. Float64 throughout.
    public static func fit(error: Matrix<Double>, rank: Int, weighting: LowRankWeighting = .none,
                           split: SingularValueSplit = .balanced, svd: SVDChoice) throws -> LowRankFactors {
        let (out, inputs) = (error.rowCount, error.columnCount)
        precondition(rank >= 1 && rank <= min(out, inputs), "rank \(rank) outside 1...\(min(out, inputs))")
        var weighted: Matrix<Double>
        var cholesky: CholeskyFactorization<Double>?
        switch weighting {
        case .none:
            weighted = error
        case let .diagonal(v):
            precondition(v.count == inputs)
            weighted = error
            weighted.values.withUnsafeMutableBufferPointer { p in
                for row in 0..<out { for c in 0..<inputs { p[row * inputs + c] *= v[c] } }
            }
        case let .gram(h, relativeDamping):
            precondition(h.rowCount == inputs && h.columnCount == inputs)
            let factor = try LinearAlgebra.cholesky(Self.deadInputsRepaired(h), damping: Self.dampingSchedule(relativeDamping))
            cholesky = factor
            weighted = try LinearAlgebra.multiply(error, factor.lower)
        case let .rankOne(rows, columns):
            precondition(rows.count == out && columns.count == inputs)
            weighted = error
            weighted.values.withUnsafeMutableBufferPointer { p in
                for row in 0..<out { for c in 0..<inputs { p[row * inputs + c] *= rows[row] * columns[c] } }
            }
        }
        let total = weighted.values.reduce(0) { $0 + $1 * $1 }
        let decomposition: SingularValueDecomposition<Double>
        var tail: Double
        switch svd.mode {
        case .exact:
            let full = try LinearAlgebra.svd(weighted)
            tail = full.singularValues.dropFirst(rank).reduce(0) { $0 + $1 * $1 }
            decomposition = full.truncated(toRank: rank)
        case .randomized:
            decomposition = try LinearAlgebra.randomizedSVD(weighted, rank: rank, oversampling: svd.oversampling,
                                                            powerIterations: svd.powerIterations, seed: svd.seed)
            tail = max(0, total - decomposition.singularValues.reduce(0) { $0 + $1 * $1 })
        }
        let sigma = decomposition.singularValues
        var b = decomposition.u          // [out, r]
        var a = decomposition.vt         // [r, in]
        for k in 0..<rank {
            let (left, right) = split == .balanced ? (sigma[k].squareRoot(), sigma[k].squareRoot()) : (sigma[k], 1)
            for row in 0..<out { b[row, k] *= left }
            if right != 1 { for c in 0..<inputs { a[k, c] *= right } }
        }
        switch weighting {
        case .none: break
        case let .diagonal(v):
            for k in 0..<rank { for c in 0..<inputs { a[k, c] /= v[c] } }
        case .gram:
            // A ← A · L⁻¹, i.e. Aᵀ = L⁻ᵀ · Aᵀ: an upper-triangular solve with Lᵀ.
            let solved = try LinearAlgebra.solveTriangular(cholesky!.lower, a.transposed, side: .left,
                                                           triangle: .lower, transpose: true)
            a = solved.transposed
        case let .rankOne(rows, columns):
            for row in 0..<out { for k in 0..<rank { b[row, k] /= rows[row] } }
            for k in 0..<rank { for c in 0..<inputs { a[k, c] /= columns[c] } }
        }
        return LowRankFactors(loraA: a, loraB: b, singularValues: sigma, tailSquaredNorm: tail,
                              weightedSquaredNorm: total, relativeDamping: cholesky?.relativeDamping)
    }

    /// The unweighted fit of an error held in Float32 (W − Q as PEFT's `loftq_init` forms it, in
    /// fp32). With the randomized SVD the range finder and the small SVD run in Float32 — its
    /// passes over the `[out, in]` matrix are memory-bound, so they move half the bytes — and
    /// the factors, `‖E‖²` and the tail are formed in Float64. The exact SVD widens to Float64.
    public static func fit(error: Matrix<Float>, rank: Int, svd: SVDChoice) throws -> LowRankFactors {
        guard svd.mode == .randomized else {
            return try fit(error: LowRankProduct.widened(error), rank: rank, svd: svd)
        }
        let (out, inputs) = (error.rowCount, error.columnCount)
        precondition(rank >= 1 && rank <= min(out, inputs), "rank \(rank) outside 1...\(min(out, inputs))")
        let sketch = try LinearAlgebra.randomizedSVD(error, rank: rank, oversampling: svd.oversampling,
                                                     powerIterations: svd.powerIterations, seed: svd.seed)
        let total = LayerErrors.squaredNorm(error)
        let sigma = sketch.singularValues.map(Double.init)
        var b = LowRankProduct.widened(sketch.u), a = LowRankProduct.widened(sketch.vt)
        for k in 0..<rank {
            let root = sigma[k].squareRoot()
            for row in 0..<out { b[row, k] *= root }
            for c in 0..<inputs { a[k, c] *= root }
        }
        return LowRankFactors(loraA: a, loraB: b, singularValues: sigma,
                              tailSquaredNorm: max(0, total - sigma.reduce(0) { $0 + $1 * $1 }),
                              weightedSquaredNorm: total, relativeDamping: nil)
    }

    /// `relative`, then tenfold steps from it (from 1e−8 when it is 0), six times.
    static func dampingSchedule(_ relative: Double) -> CholeskyDamping {
        var step = max(relative, 1e-8)
        var values = [relative]
        for _ in 0..<6 { step *= 10; values.append(step) }
        return CholeskyDamping(relativeValues: values)
    }

    /// GPTQ's convention for inputs the calibration never excited (`H_jj = 0`): set `H_jj` to the
    /// mean of the diagonal (1 when everything is zero), so the factorization exists.
    static func deadInputsRepaired(_ h: Matrix<Double>) -> Matrix<Double> {
        let size = h.rowCount
        var repaired = h
        var sum = 0.0
        for i in 0..<size { sum += h[i, i] }
        let fill = size == 0 || sum <= 0 ? 1 : sum / Double(size)
        for i in 0..<size where !(h[i, i] > 0) { repaired[i, i] = fill }
        return repaired
    }
}
