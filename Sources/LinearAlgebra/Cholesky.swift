import Tensors

/// The damping tried before a Cholesky factorization: `A + λ·mean(diag(A))·I` for each relative
/// `λ` in turn until one factorizes (GPTQ's `percdamp`; Frantar et al., "GPTQ", ICLR 2023).
public struct CholeskyDamping: Sendable, Equatable {
    /// The relative dampings `λ`, tried in order; each finite and ≥ 0.
    public let relativeValues: [Double]

    public init(relativeValues: [Double]) {
        precondition(!relativeValues.isEmpty && relativeValues.allSatisfy { $0.isFinite && $0 >= 0 },
                     "dampings must be a non-empty list of finite non-negative numbers")
        self.relativeValues = relativeValues
    }

    /// No damping, one attempt.
    public static let none = CholeskyDamping(relativeValues: [0])

    /// One attempt with relative damping `λ`.
    public static func fixed(_ relative: Double) -> CholeskyDamping { CholeskyDamping(relativeValues: [relative]) }

    /// `λ, λ·g, λ·g², …` for `attempts` attempts (growth factor `g`).
    public static func growing(from relative: Double, factor: Double = 10, attempts: Int = 5) -> CholeskyDamping {
        precondition(attempts >= 1 && factor >= 1)
        var values = [relative]
        while values.count < attempts { values.append(values[values.count - 1] * factor) }
        return CholeskyDamping(relativeValues: values)
    }
}

/// `A + δ·I = L · Lᵀ` with `δ = λ·mean(diag(A))`.
public struct CholeskyFactorization<Scalar: BLASScalar>: Sendable {
    /// `L`, `[n, n]`, lower triangular with a positive diagonal; zeros above the diagonal.
    public let lower: Matrix<Scalar>
    /// The relative damping `λ` that succeeded (0 when none was needed).
    public let relativeDamping: Double
    /// The absolute amount `δ = λ·mean(diag(A))` added to the diagonal.
    public let addedDiagonal: Double

    /// `U = Lᵀ`, upper triangular, with `A + δ·I = Uᵀ · U` (`torch.linalg.cholesky(…, upper=True)`).
    public var upper: Matrix<Scalar> { lower.transposed }

    /// `(A + δ·I)⁻¹`, full symmetric, from the factor (LAPACK `?potri`).
    public func inverse() throws -> Matrix<Scalar> { try LinearAlgebra.choleskyInverse(lowerFactor: lower) }
}

extension LinearAlgebra {
    /// Cholesky factorization `A + λ·mean(diag(A))·I = L · Lᵀ` of a symmetric `[n, n]` matrix,
    /// trying the relative dampings `λ` of `damping` in order.
    ///
    /// Only the lower triangle of `A` (row-major) is read. Throws `notPositiveDefinite` (naming
    /// the last damping tried) when no damping works. LAPACK `spotrf`/`dpotrf`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func cholesky<Scalar: BLASScalar>(_ a: Matrix<Scalar>, damping: CholeskyDamping = .none)
        throws -> CholeskyFactorization<Scalar> {
        let kernels = Scalar.blasKernels
        let routine = kernels.routine("potrf")
        try a.requireSquare(routine)
        try a.requireFinite(routine)
        let size = a.rowCount
        let n = try blasDimension(size, routine)
        var diagonalSum = 0.0
        for index in 0..<size { diagonalSum += Double(a[index, index]) }
        let meanDiagonal = size > 0 ? diagonalSum / Double(size) : 0
        guard size > 0 else { return CholeskyFactorization(lower: a, relativeDamping: 0, addedDiagonal: 0) }
        var failedMinor = 0
        for relative in damping.relativeValues {
            var work = a
            let added = relative * meanDiagonal
            for index in 0..<size { work[index, index] += Scalar(added) }
            // The row-major buffer is Aᵀ column-major = A (symmetric). LAPACK's "U" factor
            // A = UᵀU in column-major order reads, row-major, as L = Uᵀ with A = L·Lᵀ; it reads
            // and writes only that triangle, our lower one.
            let info = work.values.withUnsafeMutableBufferPointer { buffer in
                kernels.potrf(lapackColumnMajor, lapackFlag("U"), n, buffer.baseAddress, n)
            }
            if info > 0 { failedMinor = Int(info); continue }
            try checkLAPACK(info, routine: routine)
            work.values.withUnsafeMutableBufferPointer { buffer in
                for row in 0..<size {
                    for column in (row + 1)..<size { buffer[row * size + column] = 0 }
                }
            }
            return CholeskyFactorization(lower: work, relativeDamping: relative, addedDiagonal: added)
        }
        throw LinearAlgebraError.notPositiveDefinite(routine: routine, leadingMinor: failedMinor,
                                                     damping: damping.relativeValues[damping.relativeValues.count - 1])
    }

    /// `A⁻¹` from the lower Cholesky factor `L` of `A = L·Lᵀ` (as `torch.cholesky_inverse`).
    ///
    /// Shapes: `L` `[n, n]`, only its lower triangle read; the result is `[n, n]`, symmetric
    /// with both triangles filled. A zero on the diagonal of `L` throws `singularFactor`.
    /// LAPACK `spotri`/`dpotri`.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public static func choleskyInverse<Scalar: BLASScalar>(lowerFactor l: Matrix<Scalar>) throws -> Matrix<Scalar> {
        let kernels = Scalar.blasKernels
        let routine = kernels.routine("potri")
        try l.requireSquare(routine)
        try l.requireFinite(routine)
        let size = l.rowCount
        guard size > 0 else { return l }
        let n = try blasDimension(size, routine)
        var work = l.values
        work.withUnsafeMutableBufferPointer { buffer in
            for row in 0..<size {
                for column in (row + 1)..<size { buffer[row * size + column] = 0 }
            }
        }
        // Row-major L is column-major U = Lᵀ, the "U" factor LAPACK expects; the inverse comes
        // back in LAPACK's upper triangle, our lower one, and is mirrored to the other.
        let info = work.withUnsafeMutableBufferPointer { buffer in
            kernels.potri(lapackColumnMajor, lapackFlag("U"), n, buffer.baseAddress, n)
        }
        if info > 0 { throw LinearAlgebraError.singularFactor(routine: routine, diagonalIndex: Int(info)) }
        try checkLAPACK(info, routine: routine)
        work.withUnsafeMutableBufferPointer { buffer in mirrorLowerToUpper(buffer, size: size) }
        return Matrix(rowCount: size, columnCount: size, values: work)
    }
}
