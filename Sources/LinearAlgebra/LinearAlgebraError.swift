/// Failures of the linear-algebra routines. Routine names are the BLAS/LAPACK names with
/// their precision prefix (`sgesdd`, `dpotrf`), so a report points at the exact call.
public enum LinearAlgebraError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Operand shapes do not fit together, e.g. `sgemm` of `[2, 3]` by `[4, 5]`.
    case shapeMismatch(operation: String, shapes: [[Int]])
    /// The operation needs a square matrix.
    case notSquare(operation: String, shape: [Int])
    /// A parameter is out of range (a rank larger than the matrix, a dimension beyond the
    /// 32-bit integers of BLAS/LAPACK, …).
    case invalidArgument(operation: String, reason: String)
    /// The input holds NaN or ±∞, which LAPACK would reject or propagate silently.
    case nonFiniteInput(operation: String)
    /// `?potrf` found the leading minor of order `leadingMinor` not positive definite, even
    /// after adding `damping · mean(diag(A)) · I` (the last damping tried).
    case notPositiveDefinite(routine: String, leadingMinor: Int, damping: Double)
    /// A triangular factor has an exact zero on its diagonal at 1-based `diagonalIndex`.
    case singularFactor(routine: String, diagonalIndex: Int)
    /// Any other nonzero LAPACK `info`: negative means argument `-info` was illegal,
    /// positive means the algorithm did not converge (see the routine's documentation).
    case lapackFailure(routine: String, info: Int)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, shapes):
            return "\(operation): incompatible shapes \(shapes.map { "\($0)" }.joined(separator: ", "))"
        case let .notSquare(operation, shape):
            return "\(operation): needs a square matrix, got shape \(shape)"
        case let .invalidArgument(operation, reason):
            return "\(operation): \(reason)"
        case let .nonFiniteInput(operation):
            return "\(operation): input contains NaN or infinity"
        case let .notPositiveDefinite(routine, minor, damping):
            return "\(routine): leading minor of order \(minor) is not positive definite (relative damping \(damping))"
        case let .singularFactor(routine, index):
            return "\(routine): triangular factor is singular (zero diagonal element \(index))"
        case let .lapackFailure(routine, info):
            let meaning = info < 0 ? "argument \(-info) had an illegal value" : "did not converge"
            return "\(routine) failed with info = \(info) (\(meaning))"
        }
    }
}
