import Tensors

extension LinearAlgebra {
    /// Truncated SVD of rank `rank` by randomized range finding (Halko, Martinsson & Tropp,
    /// "Finding structure with randomness", SIAM Review 2011, Algorithms 4.4 and 5.1).
    ///
    /// With `ℓ = min(rank + oversampling, min(m, n))` and a Gaussian test matrix `Ω` `[n, ℓ]`:
    /// 1. `Q = orth(A·Ω)`;
    /// 2. `powerIterations` times: `Q = orth(A · orth(Aᵀ·Q))` — re-orthonormalizing between the
    ///    products keeps the small singular directions from being lost to rounding;
    /// 3. `B = Qᵀ·A` `[ℓ, n]`, exact SVD `B = Ũ·S·Vᵀ`, and `U = Q·Ũ`;
    /// 4. keep the leading `rank` triplets.
    ///
    /// Shapes: `A` `[m, n]` → `U` `[m, rank]`, `S` `[rank]` descending, `Vᵀ` `[rank, n]`.
    /// `Ω` comes from `SeededRandomGenerator(seed:)`, so the same seed, input, BLAS core and
    /// thread count give bit-identical output.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func randomizedSVD<Scalar: BLASScalar>(_ a: Matrix<Scalar>, rank: Int, oversampling: Int = 10,
                                                         powerIterations: Int = 2,
                                                         seed: UInt64) throws -> SingularValueDecomposition<Scalar> {
        let operation = "randomizedSVD"
        let smallerSide = min(a.rowCount, a.columnCount)
        guard rank >= 1, rank <= smallerSide else {
            throw LinearAlgebraError.invalidArgument(operation: operation,
                                                     reason: "rank \(rank) outside 1...\(smallerSide) for shape \(a.shape)")
        }
        guard oversampling >= 0, powerIterations >= 0 else {
            throw LinearAlgebraError.invalidArgument(
                operation: operation,
                reason: "oversampling \(oversampling) and power iterations \(powerIterations) must be non-negative")
        }
        try a.requireFinite(operation)
        let sampleCount = min(rank + oversampling, smallerSide)
        var generator = SeededRandomGenerator(seed: seed)
        let omega: Matrix<Scalar> = generator.gaussianMatrix(rowCount: a.columnCount, columnCount: sampleCount)

        var q = try orthonormalColumns(multiply(a, omega))                              // [m, ℓ]
        for _ in 0..<powerIterations {
            let z = try orthonormalColumns(multiply(a, q, transposeA: true))             // [n, ℓ]
            q = try orthonormalColumns(multiply(a, z))                                   // [m, ℓ]
        }
        let b = try multiply(q, a, transposeA: true)                                     // [ℓ, n]
        let small = try svd(b)                                                           // Ũ [ℓ, ℓ]
        let u = try multiply(q, small.u)                                                 // [m, ℓ]
        return SingularValueDecomposition(u: u, singularValues: small.singularValues, vt: small.vt)
            .truncated(toRank: rank)
    }
}
