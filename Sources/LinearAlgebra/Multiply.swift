internal import CBLAS
import Tensors

// General matrix–matrix and matrix–vector products (BLAS level 3 `?gemm`, level 2 `?gemv`),
// called in CBLAS row-major mode so no operand is copied or transposed.

extension LinearAlgebra {
    /// `C = α · op(A) · op(B)`, where `op(X)` is `X` or `Xᵀ`.
    ///
    /// Shapes: `op(A)` is `[m, k]` and `op(B)` is `[k, n]`; the result is `[m, n]`.
    /// BLAS `sgemm`/`dgemm` (Dongarra et al., "A set of level 3 BLAS", 1990).
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func multiply<Scalar: BLASScalar>(_ a: Matrix<Scalar>, _ b: Matrix<Scalar>,
                                                    transposeA: Bool = false, transposeB: Bool = false,
                                                    alpha: Scalar = 1) throws -> Matrix<Scalar> {
        var c = Matrix<Scalar>(zeros: transposeA ? a.columnCount : a.rowCount,
                               transposeB ? b.rowCount : b.columnCount)
        try multiplyAccumulate(a, b, into: &c, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: 0)
        return c
    }

    /// `C ← α · op(A) · op(B) + β · C`, in place.
    ///
    /// Shapes: `op(A)` `[m, k]`, `op(B)` `[k, n]`, `C` `[m, n]`. With `β = 0` the old contents of
    /// `C` are not read (so NaNs in it do not propagate). BLAS `sgemm`/`dgemm`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func multiplyAccumulate<Scalar: BLASScalar>(_ a: Matrix<Scalar>, _ b: Matrix<Scalar>,
                                                              into c: inout Matrix<Scalar>,
                                                              transposeA: Bool = false, transposeB: Bool = false,
                                                              alpha: Scalar = 1, beta: Scalar = 1) throws {
        let kernels = Scalar.blasKernels
        let operation = kernels.routine("gemm")
        let (m, k) = transposeA ? (a.columnCount, a.rowCount) : (a.rowCount, a.columnCount)
        let (kB, n) = transposeB ? (b.columnCount, b.rowCount) : (b.rowCount, b.columnCount)
        guard k == kB, c.rowCount == m, c.columnCount == n else {
            throw LinearAlgebraError.shapeMismatch(operation: operation, shapes: [a.shape, b.shape, c.shape])
        }
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // Empty inner dimension: the product is zero, only the β-scaling remains.
            for index in c.values.indices { c.values[index] = beta == 0 ? 0 : beta * c.values[index] }
            return
        }
        let (m32, n32, k32) = (try blasDimension(m, operation), try blasDimension(n, operation), try blasDimension(k, operation))
        let lda = try leadingDimension(a.columnCount, operation), ldb = try leadingDimension(b.columnCount, operation)
        let ldc = try leadingDimension(n, operation)
        a.values.withUnsafeBufferPointer { aBuffer in
            b.values.withUnsafeBufferPointer { bBuffer in
                c.values.withUnsafeMutableBufferPointer { cBuffer in
                    kernels.gemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB), m32, n32, k32,
                                 alpha, aBuffer.baseAddress, lda, bBuffer.baseAddress, ldb, beta, cBuffer.baseAddress, ldc)
                }
            }
        }
    }

    /// `y = α · op(A) · x`.
    ///
    /// Shapes: `A` `[m, n]`; without transpose `x` has `n` entries and `y` has `m`, with
    /// transpose `x` has `m` and `y` has `n`. BLAS `sgemv`/`dgemv`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func multiply<Scalar: BLASScalar>(_ a: Matrix<Scalar>, vector x: [Scalar], transpose: Bool = false,
                                                    alpha: Scalar = 1) throws -> [Scalar] {
        var y = [Scalar](repeating: 0, count: transpose ? a.columnCount : a.rowCount)
        try multiplyAccumulate(a, vector: x, into: &y, transpose: transpose, alpha: alpha, beta: 0)
        return y
    }

    /// `y ← α · op(A) · x + β · y`, in place. Shapes as in `multiply(_:vector:transpose:alpha:)`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func multiplyAccumulate<Scalar: BLASScalar>(_ a: Matrix<Scalar>, vector x: [Scalar],
                                                              into y: inout [Scalar], transpose: Bool = false,
                                                              alpha: Scalar = 1, beta: Scalar = 1) throws {
        let kernels = Scalar.blasKernels
        let operation = kernels.routine("gemv")
        let (inputCount, outputCount) = transpose ? (a.rowCount, a.columnCount) : (a.columnCount, a.rowCount)
        guard x.count == inputCount, y.count == outputCount else {
            throw LinearAlgebraError.shapeMismatch(operation: operation, shapes: [a.shape, [x.count], [y.count]])
        }
        guard outputCount > 0 else { return }
        guard inputCount > 0 else {
            for index in y.indices { y[index] = beta == 0 ? 0 : beta * y[index] }
            return
        }
        let m = try blasDimension(a.rowCount, operation), n = try blasDimension(a.columnCount, operation)
        let lda = try leadingDimension(a.columnCount, operation)
        a.values.withUnsafeBufferPointer { aBuffer in
            x.withUnsafeBufferPointer { xBuffer in
                y.withUnsafeMutableBufferPointer { yBuffer in
                    kernels.gemv(CblasRowMajor, cblasTranspose(transpose), m, n, alpha, aBuffer.baseAddress, lda,
                                 xBuffer.baseAddress, 1, beta, yBuffer.baseAddress, 1)
                }
            }
        }
    }
}
