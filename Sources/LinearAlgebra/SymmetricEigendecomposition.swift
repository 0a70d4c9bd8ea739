import Tensors

/// Order of eigenvalues in a `SymmetricEigendecomposition`.
public enum EigenvalueOrder: Sendable, Equatable {
    /// Smallest first, as LAPACK, `numpy.linalg.eigh` and `torch.linalg.eigh` return them.
    case ascending
    /// Largest first (principal directions first).
    case descending
}

/// `A = V · diag(λ) · Vᵀ` for a real symmetric `[n, n]` matrix `A`.
public struct SymmetricEigendecomposition<Scalar: BLASScalar>: Sendable {
    /// `λ`, `n` values in the requested order.
    public let eigenvalues: [Scalar]
    /// `V`, `[n, n]`, orthonormal; column `j` is the unit eigenvector of `eigenvalues[j]`
    /// (numpy/torch convention). Signs are LAPACK's.
    public let eigenvectors: Matrix<Scalar>
}

extension LinearAlgebra {
    /// Eigendecomposition of a real symmetric `[n, n]` matrix: `A·v_j = λ_j·v_j`.
    ///
    /// Only the lower triangle of `A` (row-major) is read. Eigenvalues come in `order`
    /// (ascending by default). LAPACK `ssyevd`/`dsyevd` (tridiagonal divide and conquer).
    public static func symmetricEigen<Scalar: BLASScalar>(_ a: Matrix<Scalar>, order: EigenvalueOrder = .ascending)
        throws -> SymmetricEigendecomposition<Scalar> {
        let kernels = Scalar.blasKernels
        let routine = kernels.routine("syevd")
        try a.requireSquare(routine)
        try a.requireFinite(routine)
        let size = a.rowCount
        guard size > 0 else { return SymmetricEigendecomposition(eigenvalues: [], eigenvectors: Matrix(zeros: 0, 0)) }
        let n = try blasDimension(size, routine)
        var work = a.values
        var eigenvalues = [Scalar](repeating: 0, count: size)
        // The row-major buffer is Aᵀ column-major, so LAPACK's upper triangle ("U") is our lower
        // triangle. On return the buffer holds the eigenvectors as column-major columns, which
        // read row-major are rows: row j is the eigenvector of eigenvalues[j] (ascending).
        let info = work.withUnsafeMutableBufferPointer { buffer in
            eigenvalues.withUnsafeMutableBufferPointer { values in
                kernels.syevd(lapackColumnMajor, lapackFlag("V"), lapackFlag("U"), n, buffer.baseAddress, n,
                              values.baseAddress)
            }
        }
        try checkLAPACK(info, routine: routine)
        if order == .descending {
            eigenvalues.reverse()
            work.withUnsafeMutableBufferPointer { buffer in
                for row in 0..<(size / 2) {
                    let other = size - 1 - row
                    for column in 0..<size { buffer.swapAt(row * size + column, other * size + column) }
                }
            }
        }
        let rowsAreVectors = Matrix(rowCount: size, columnCount: size, values: work)
        return SymmetricEigendecomposition(eigenvalues: eigenvalues, eigenvectors: try rowsAreVectors.blasTransposed())
    }
}
