import Tensors

/// A thin singular value decomposition `A = U · diag(S) · Vᵀ` of an `[m, n]` matrix, with
/// `k = min(m, n)` (or fewer, after truncation) singular triplets.
public struct SingularValueDecomposition<Scalar: BLASScalar>: Sendable {
    /// `U`, `[m, k]`, orthonormal columns (left singular vectors).
    public let u: Matrix<Scalar>
    /// `S`, `k` values, descending and non-negative.
    public let singularValues: [Scalar]
    /// `Vᵀ`, `[k, n]`, orthonormal rows (right singular vectors), as `torch.linalg.svd`'s `Vh`.
    public let vt: Matrix<Scalar>

    public init(u: Matrix<Scalar>, singularValues: [Scalar], vt: Matrix<Scalar>) {
        precondition(u.columnCount == singularValues.count && vt.rowCount == singularValues.count,
                     "U \(u.shape), S [\(singularValues.count)] and Vᵀ \(vt.shape) disagree on k")
        self.u = u
        self.singularValues = singularValues
        self.vt = vt
    }

    /// Number of singular triplets kept, `k`.
    public var rank: Int { singularValues.count }

    /// The leading `rank` triplets (the best rank-`rank` approximation, Eckart–Young).
    public func truncated(toRank rank: Int) -> SingularValueDecomposition {
        precondition(rank >= 0 && rank <= self.rank, "rank \(rank) outside 0...\(self.rank)")
        var uValues = [Scalar](repeating: 0, count: u.rowCount * rank)
        for row in 0..<u.rowCount {
            for column in 0..<rank { uValues[row * rank + column] = u[row, column] }
        }
        return SingularValueDecomposition(
            u: Matrix(rowCount: u.rowCount, columnCount: rank, values: uValues),
            singularValues: Array(singularValues.prefix(rank)),
            vt: Matrix(rowCount: rank, columnCount: vt.columnCount, values: Array(vt.values.prefix(rank * vt.columnCount))))
    }

    /// `U · diag(S) · Vᵀ`, `[m, n]`.
    public func reconstructed() throws -> Matrix<Scalar> {
        var scaledU = u
        for row in 0..<u.rowCount {
            for column in 0..<rank { scaledU[row, column] *= singularValues[column] }
        }
        return try LinearAlgebra.multiply(scaledU, vt)
    }
}

extension LinearAlgebra {
    /// Thin SVD `A = U · diag(S) · Vᵀ` of an `[m, n]` matrix: `U` `[m, k]`, `S` `[k]` descending,
    /// `Vᵀ` `[k, n]`, `k = min(m, n)`.
    ///
    /// LAPACK `sgesdd`/`dgesdd` (divide and conquer, Gu & Eisenstat 1995); if it does not
    /// converge, `?gesvd` (QR iteration) is tried before throwing `lapackFailure`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func svd<Scalar: BLASScalar>(_ a: Matrix<Scalar>) throws -> SingularValueDecomposition<Scalar> {
        let kernels = Scalar.blasKernels
        try a.requireFinite(kernels.routine("gesdd"))
        let (m, n) = (a.rowCount, a.columnCount)
        let k = min(m, n)
        guard k > 0 else {
            return SingularValueDecomposition(u: Matrix(zeros: m, 0), singularValues: [], vt: Matrix(zeros: 0, n))
        }
        // LAPACK sees the row-major [m, n] buffer as the column-major [n, m] matrix Aᵀ. For
        // Aᵀ = U'·S·V'ᵀ we have A = V'·S·U'ᵀ, and the column-major buffers LAPACK returns are,
        // read row-major, exactly what we want: its Vᵀ output ([k, m] column-major) is our U
        // ([m, k] row-major), and its U output ([n, k] column-major) is our Vᵀ ([k, n] row-major).
        let rows = try blasDimension(n, kernels.routine("gesdd")), columns = try blasDimension(m, kernels.routine("gesdd"))
        let kk = try blasDimension(k, kernels.routine("gesdd"))
        var work = a.values
        var s = [Scalar](repeating: 0, count: k)
        var u = [Scalar](repeating: 0, count: m * k)
        var vt = [Scalar](repeating: 0, count: k * n)
        var info = work.withUnsafeMutableBufferPointer { aBuffer in
            s.withUnsafeMutableBufferPointer { sBuffer in
                vt.withUnsafeMutableBufferPointer { lapackU in
                    u.withUnsafeMutableBufferPointer { lapackVT in
                        kernels.gesdd(lapackColumnMajor, lapackFlag("S"), rows, columns, aBuffer.baseAddress, rows,
                                      sBuffer.baseAddress, lapackU.baseAddress, rows, lapackVT.baseAddress, kk)
                    }
                }
            }
        }
        var routine = kernels.routine("gesdd")
        if info > 0 {
            // Divide and conquer did not converge: fall back to QR iteration on a fresh copy.
            routine = kernels.routine("gesvd")
            work = a.values
            var superb = [Scalar](repeating: 0, count: max(1, k - 1))
            info = work.withUnsafeMutableBufferPointer { aBuffer in
                s.withUnsafeMutableBufferPointer { sBuffer in
                    vt.withUnsafeMutableBufferPointer { lapackU in
                        u.withUnsafeMutableBufferPointer { lapackVT in
                            superb.withUnsafeMutableBufferPointer { superbBuffer in
                                kernels.gesvd(lapackColumnMajor, lapackFlag("S"), lapackFlag("S"), rows, columns,
                                              aBuffer.baseAddress, rows, sBuffer.baseAddress, lapackU.baseAddress, rows,
                                              lapackVT.baseAddress, kk, superbBuffer.baseAddress)
                            }
                        }
                    }
                }
            }
        }
        try checkLAPACK(info, routine: routine)
        return SingularValueDecomposition(u: Matrix(rowCount: m, columnCount: k, values: u), singularValues: s,
                                          vt: Matrix(rowCount: k, columnCount: n, values: vt))
    }
}
