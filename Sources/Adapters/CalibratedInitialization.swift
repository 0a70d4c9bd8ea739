import LinearAlgebra
import Quantization
import Tensors

/// Initialisations that weight the quantization error by calibration statistics of the layer's
/// inputs (algorithms.md §3–5). `Q` is kept; only A and B are chosen.
enum CalibratedInitialization {
    /// - `lqer` (L²QER, ChengZhang-98/lqer `lqer_act.py`): `S = diag(a)`, `a` = mean |x| per input
    ///   channel, clamped to ≥ 1e−4 and normalised by `√(min·max)`. The reference takes the
    ///   running maximum of per-batch means; `calibrate` keeps the mean over all tokens.
    /// - `qera-approx` (QERA, arXiv 2410.06040): `S = diag(RMS)`.
    /// - `cloq` (= QERA-exact; CLoQ arXiv 2501.18475): `L = chol(H + λI)`; the rank-r SVD of `E·L`
    ///   mapped back by `L⁻¹` is the exact optimum of `‖X(E − B·A)ᵀ‖`, and its value is the tail
    ///   `Σ_{i>r} σᵢ²` of that SVD.
    /// Balanced split in all three (the repositories put every σ on B; the product is the same).
    static func scaledSVD(_ method: AdapterInitMethod, _ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let calibration = context.input.calibration!
        let weighting: LowRankWeighting
        switch method {
        case .lqer: weighting = .diagonal(normalizedScale(calibration.meanAbsolute, floor: 1e-4))
        case .qeraApprox: weighting = .diagonal(normalizedScale(calibration.rootMeanSquare))
        default: weighting = .gram(calibration.gram, relativeDamping: context.options.relativeDamping)
        }
        let factors = try LowRankCorrection.fit(error: context.errorBefore, rank: context.input.rank, weighting: weighting,
                                                svd: context.svd)
        let (a, b) = MethodOutcome.scaled(factors, scale: context.scale)
        var outcome = MethodOutcome(loraA: a, loraB: b, relativeDamping: factors.relativeDamping)
        if method == .cloq { outcome.weightedTail = factors.tailSquaredNorm }
        return outcome
    }

    /// QuAILoRA (arXiv 2410.14713; no public code — algorithms.md §5(b)): alternating least squares
    /// on `f(A, B) = tr((E − BA) H' (E − BA)ᵀ)`, `H' = H + λ·mean(diag H)·I`, from the plain SVD of E:
    /// `B ← E H' Aᵀ (A H' Aᵀ)⁻¹`, then `A ← (BᵀB)⁻¹ Bᵀ E` (H' cancels). Each step cannot increase f;
    /// the limit is the CLoQ optimum. The result is re-balanced (`B = Q_B U √S`, `A = √S Vᵀ`).
    static func quailora(_ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let input = context.input
        let e = context.errorBefore
        let h = dampedGram(input.calibration!.gram, relativeDamping: context.options.relativeDamping)
        let start = try LowRankCorrection.fit(error: e, rank: input.rank, svd: context.svd)
        var a = start.loraA, b = start.loraB
        let iterations = context.options.iterationCount(for: .quailora)
        for _ in 0..<iterations {
            let ah = try LinearAlgebra.multiply(a, h)                                   // [r, in]
            let eha = try LinearAlgebra.multiply(e, ah, transposeB: true)                // [out, r]
            let gram = try LinearAlgebra.multiply(ah, a, transposeB: true)               // [r, r]
            b = try solveSymmetricPositive(gram, eha.transposed).transposed               // B·G = E H' Aᵀ
            let btb = try LinearAlgebra.multiply(b, b, transposeA: true)                 // [r, r]
            let bte = try LinearAlgebra.multiply(b, e, transposeA: true)                 // [r, in]
            a = try solveSymmetricPositive(btb, bte)
        }
        let balanced = try balance(a: a, b: b)
        let factors = LowRankFactors(loraA: balanced.a, loraB: balanced.b, singularValues: [], tailSquaredNorm: 0,
                                     weightedSquaredNorm: 0, relativeDamping: context.options.relativeDamping)
        let (scaledA, scaledB) = MethodOutcome.scaled(factors, scale: context.scale)
        return MethodOutcome(loraA: scaledA, loraB: scaledB, relativeDamping: context.options.relativeDamping,
                             iterations: iterations)
    }

    /// `H + λ·mean(diag H)·I` with dead inputs repaired as for the Cholesky path.
    static func dampedGram(_ h: Matrix<Double>, relativeDamping: Double) -> Matrix<Double> {
        var damped = LowRankCorrection.deadInputsRepaired(h)
        let size = damped.rowCount
        var trace = 0.0
        for i in 0..<size { trace += damped[i, i] }
        let lambda = relativeDamping * trace / Double(max(1, size))
        for i in 0..<size { damped[i, i] += lambda }
        return damped
    }

    /// X with `G·X = R` for a small symmetric positive definite `G` (Cholesky, damped if needed).
    static func solveSymmetricPositive(_ g: Matrix<Double>, _ r: Matrix<Double>) throws -> Matrix<Double> {
        let factor = try LinearAlgebra.cholesky(g, damping: .growing(from: 1e-12))
        let y = try LinearAlgebra.solveTriangular(factor.lower, r, side: .left, triangle: .lower)
        return try LinearAlgebra.solveTriangular(factor.lower, y, side: .left, triangle: .lower, transpose: true)
    }

    /// The same product `B·A` with the singular values split evenly: `B = Q_B·Rᴮ`,
    /// `Rᴮ·A = U S Vᵀ`, `B ← Q_B U √S`, `A ← √S Vᵀ`.
    static func balance(a: Matrix<Double>, b: Matrix<Double>) throws -> (a: Matrix<Double>, b: Matrix<Double>) {
        let qr = try LinearAlgebra.qr(b)
        let small = try LinearAlgebra.svd(try LinearAlgebra.multiply(qr.r, a))
        var left = try LinearAlgebra.multiply(qr.q, small.u)
        var right = small.vt
        for k in 0..<small.singularValues.count {
            let root = small.singularValues[k].squareRoot()
            for row in 0..<left.rowCount { left[row, k] *= root }
            for c in 0..<right.columnCount { right[k, c] *= root }
        }
        return (right, left)
    }

    /// A per-channel scale clamped to `floor` (or 1e−8 × its maximum) and normalised by
    /// `√(min·max)` (LQER's normalisation; any positive factor gives the same adapter).
    static func normalizedScale(_ values: [Double], floor: Double? = nil) -> [Double] {
        let largest = values.max() ?? 0
        let lower = floor ?? max(largest * 1e-8, .leastNormalMagnitude)
        let clamped = values.map { max($0.isFinite ? $0 : lower, lower) }
        let norm = ((clamped.min() ?? 1) * (clamped.max() ?? 1)).squareRoot()
        return norm > 0 ? clamped.map { $0 / norm } : clamped
    }
}
