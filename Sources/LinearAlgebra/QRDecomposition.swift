import Tensors

/// A thin QR decomposition `A = Q · R` of an `[m, n]` matrix, `k = min(m, n)`.
public struct QRDecomposition<Scalar: BLASScalar>: Sendable {
    /// `Q`, `[m, k]`, orthonormal columns.
    public let q: Matrix<Scalar>
    /// `R`, `[k, n]`, upper triangular (zeros below the diagonal). Diagonal signs are LAPACK's
    /// (not normalized to be positive).
    public let r: Matrix<Scalar>
}

extension LinearAlgebra {
    /// Thin QR `A = Q · R` by Householder reflections: `Q` `[m, k]`, `R` `[k, n]`, `k = min(m, n)`.
    ///
    /// LAPACK `?geqrf` (the factorization) then `?orgqr` (forming the first `k` columns of `Q`);
    /// Golub & Van Loan, "Matrix Computations", §5.2.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func qr<Scalar: BLASScalar>(_ a: Matrix<Scalar>) throws -> QRDecomposition<Scalar> {
        let kernels = Scalar.blasKernels
        let (m, n) = (a.rowCount, a.columnCount)
        let k = min(m, n)
        guard k > 0 else { return QRDecomposition(q: Matrix(zeros: m, 0), r: Matrix(zeros: 0, n)) }
        try a.requireFinite(kernels.routine("geqrf"))
        let m32 = try blasDimension(m, kernels.routine("geqrf")), n32 = try blasDimension(n, kernels.routine("geqrf"))
        let k32 = try blasDimension(k, kernels.routine("geqrf"))
        // LAPACK is column-major, and QR of A is not a factorization of the transpose, so we
        // pass the row-major transpose: its buffer is A in column-major order, lda = m.
        // Column-major element (i, j) then lives at i + j·m.
        var work = try a.blasTransposed().values
        var tau = [Scalar](repeating: 0, count: k)
        let factorInfo = work.withUnsafeMutableBufferPointer { buffer in
            tau.withUnsafeMutableBufferPointer { tauBuffer in
                kernels.geqrf(lapackColumnMajor, m32, n32, buffer.baseAddress, m32, tauBuffer.baseAddress)
            }
        }
        try checkLAPACK(factorInfo, routine: kernels.routine("geqrf"))
        // R is the upper triangle of the first k rows of the column-major result.
        var r = Matrix<Scalar>(zeros: k, n)
        for row in 0..<k {
            for column in row..<n { r[row, column] = work[row + column * m] }
        }
        let formInfo = work.withUnsafeMutableBufferPointer { buffer in
            tau.withUnsafeBufferPointer { tauBuffer in
                kernels.orgqr(lapackColumnMajor, m32, k32, k32, buffer.baseAddress, m32, tauBuffer.baseAddress)
            }
        }
        try checkLAPACK(formInfo, routine: kernels.routine("orgqr"))
        // The first k·m entries are Q column-major, i.e. Qᵀ [k, m] row-major; transpose back.
        let qTransposed = Matrix(rowCount: k, columnCount: m, values: Array(work.prefix(k * m)))
        return QRDecomposition(q: try qTransposed.blasTransposed(), r: r)
    }

    /// An orthonormal basis of the column space of `Y` `[m, l]` (the thin `Q` of its QR),
    /// `[m, min(m, l)]`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func orthonormalColumns<Scalar: BLASScalar>(_ y: Matrix<Scalar>) throws -> Matrix<Scalar> {
        try qr(y).q
    }
}
