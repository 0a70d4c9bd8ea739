internal import CBLAS
import Tensors

// Internal helpers shared by the BLAS/LAPACK wrappers: integer narrowing, `info` checks,
// input validation, and the few O(n²) copies (transpose, symmetric mirror) around O(n³) calls.

/// `value` as the 32-bit integer BLAS/LAPACK take, or `invalidArgument` when it does not fit.
func blasDimension(_ value: Int, _ operation: String) throws -> Int32 {
    guard value >= 0, value <= Int(Int32.max) else {
        throw LinearAlgebraError.invalidArgument(operation: operation,
                                                 reason: "dimension \(value) exceeds the 32-bit range of BLAS/LAPACK")
    }
    return Int32(value)
}

/// Leading dimension for a row-major matrix of `columnCount` columns (BLAS wants ≥ 1).
func leadingDimension(_ columnCount: Int, _ operation: String) throws -> Int32 {
    try blasDimension(max(1, columnCount), operation)
}

/// Turns LAPACK's `info` into an error naming the routine; 0 passes.
func checkLAPACK(_ info: LAPACKInt, routine: String) throws {
    guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: routine, info: Int(info)) }
}

let lapackColumnMajor = Int32(LAPACK_COL_MAJOR)

/// The ASCII code LAPACK expects for a job/uplo character.
func lapackFlag(_ character: Unicode.Scalar) -> CChar { CChar(truncatingIfNeeded: character.value) }

func cblasTranspose(_ transpose: Bool) -> CBLAS_TRANSPOSE { transpose ? CblasTrans : CblasNoTrans }

extension Matrix where Scalar: BLASScalar {
    func requireSquare(_ operation: String) throws {
        guard rowCount == columnCount else { throw LinearAlgebraError.notSquare(operation: operation, shape: shape) }
    }

    func requireFinite(_ operation: String) throws {
        let finite = values.withUnsafeBufferPointer { buffer in buffer.allSatisfy { $0.isFinite } }
        guard finite else { throw LinearAlgebraError.nonFiniteInput(operation: operation) }
    }

    /// The transpose through OpenBLAS `?omatcopy` (blocked, unlike an element loop).
    func blasTransposed() throws -> Matrix {
        var result = Matrix(zeros: columnCount, rowCount)
        guard rowCount > 0, columnCount > 0 else { return result }
        let kernels = Scalar.blasKernels
        let operation = kernels.routine("omatcopy")
        let rows = try blasDimension(rowCount, operation), columns = try blasDimension(columnCount, operation)
        values.withUnsafeBufferPointer { source in
            result.values.withUnsafeMutableBufferPointer { destination in
                kernels.omatcopy(CblasRowMajor, CblasTrans, rows, columns, 1, source.baseAddress, columns,
                                 destination.baseAddress, rows)
            }
        }
        return result
    }
}

/// Copies the lower triangle of a row-major `size × size` buffer onto its upper triangle.
func mirrorLowerToUpper<Scalar>(_ buffer: UnsafeMutableBufferPointer<Scalar>, size: Int) {
    for row in 0..<size {
        for column in (row + 1)..<size { buffer[row * size + column] = buffer[column * size + row] }
    }
}

/// Copies the upper triangle of a row-major `size × size` buffer onto its lower triangle.
func mirrorUpperToLower<Scalar>(_ buffer: UnsafeMutableBufferPointer<Scalar>, size: Int) {
    for row in 0..<size {
        for column in 0..<row { buffer[row * size + column] = buffer[column * size + row] }
    }
}

/// LAPACKE's `lapack_int` (a C macro, so not imported): 32-bit in Debian's LP64 build.
typealias LAPACKInt = Int32
