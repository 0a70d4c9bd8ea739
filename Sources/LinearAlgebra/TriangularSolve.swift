internal import CBLAS
import Tensors

/// Which side of the unknown a matrix multiplies.
public enum MatrixSide: Sendable, Equatable {
    /// `op(T) · X = α·B`.
    case left
    /// `X · op(T) = α·B`.
    case right
}

/// Which triangle of a square matrix holds the data.
public enum MatrixTriangle: Sendable, Equatable {
    case upper, lower
}

extension LinearAlgebra {
    /// Solves `op(T) · X = α·B` (`side: .left`) or `X · op(T) = α·B` (`side: .right`) for `X`,
    /// where `T` `[n, n]` is triangular and `op(T)` is `T` or `Tᵀ`.
    ///
    /// Only the named `triangle` of `T` is read; with `unitDiagonal` its diagonal is taken as 1.
    /// Shapes: `B` and `X` are `[n, r]` on the left, `[r, n]` on the right. An exact zero on the
    /// diagonal throws `singularFactor` (BLAS would divide by it). BLAS `strsm`/`dtrsm`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func solveTriangular<Scalar: BLASScalar>(_ t: Matrix<Scalar>, _ b: Matrix<Scalar>,
                                                           side: MatrixSide = .left, triangle: MatrixTriangle,
                                                           transpose: Bool = false, unitDiagonal: Bool = false,
                                                           alpha: Scalar = 1) throws -> Matrix<Scalar> {
        let kernels = Scalar.blasKernels
        let routine = kernels.routine("trsm")
        try t.requireSquare(routine)
        let size = t.rowCount
        guard (side == .left ? b.rowCount : b.columnCount) == size else {
            throw LinearAlgebraError.shapeMismatch(operation: routine, shapes: [t.shape, b.shape])
        }
        if !unitDiagonal, let zero = (0..<size).first(where: { t[$0, $0] == 0 }) {
            throw LinearAlgebraError.singularFactor(routine: routine, diagonalIndex: zero + 1)
        }
        var x = b
        guard b.rowCount > 0, b.columnCount > 0 else { return x }
        let m = try blasDimension(b.rowCount, routine), n = try blasDimension(b.columnCount, routine)
        let ldt = try leadingDimension(size, routine), ldb = try leadingDimension(b.columnCount, routine)
        t.values.withUnsafeBufferPointer { tBuffer in
            x.values.withUnsafeMutableBufferPointer { xBuffer in
                kernels.trsm(CblasRowMajor, side == .left ? CblasLeft : CblasRight,
                             triangle == .upper ? CblasUpper : CblasLower, cblasTranspose(transpose),
                             unitDiagonal ? CblasUnit : CblasNonUnit, m, n, alpha, tBuffer.baseAddress, ldt,
                             xBuffer.baseAddress, ldb)
            }
        }
        return x
    }
}
