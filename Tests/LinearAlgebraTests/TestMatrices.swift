import LinearAlgebra
import Tensors
import TestSupport

/// Matrices with known structure, built from the routines already checked elsewhere (QR).
enum TestMatrices {
    /// `[rows, columns]` with orthonormal columns (`rows ≥ columns`): the Q of a random matrix.
    static func orthonormalColumns(_ rows: Int, _ columns: Int, seed: UInt64) throws -> Matrix<Double> {
        try LinearAlgebra.qr(RandomMatrices.uniform(rows, columns, seed: seed) as Matrix<Double>).q
    }

    /// `A = U · diag(σ) · Vᵀ` `[m, n]` with the given singular values and random orthonormal factors.
    static func withSingularValues(_ sigma: [Double], _ m: Int, _ n: Int, seed: UInt64) throws -> Matrix<Double> {
        let u = try orthonormalColumns(m, sigma.count, seed: seed)
        var v = try orthonormalColumns(n, sigma.count, seed: seed + 1)
        for row in 0..<n {
            for column in 0..<sigma.count { v[row, column] *= sigma[column] }
        }
        return try LinearAlgebra.multiply(u, v, transposeB: true)
    }

    /// A symmetric positive definite `[n, n]` matrix `BᵀB + n·I`.
    static func positiveDefinite(_ n: Int, seed: UInt64) throws -> Matrix<Double> {
        let b: Matrix<Double> = RandomMatrices.uniform(n, n, seed: seed)
        var a = try LinearAlgebra.multiply(b, b, transposeA: true)
        for i in 0..<n { a[i, i] += Double(n) }
        return a
    }

    /// `‖X − Y‖_F / ‖Y‖_F`.
    static func relativeError<Scalar: BinaryFloatingPoint & Sendable>(_ x: Matrix<Scalar>, _ y: Matrix<Scalar>) -> Double {
        var difference = 0.0
        for index in x.values.indices {
            let d = Double(x.values[index]) - Double(y.values[index])
            difference += d * d
        }
        return difference.squareRoot() / y.frobeniusNorm
    }
}
