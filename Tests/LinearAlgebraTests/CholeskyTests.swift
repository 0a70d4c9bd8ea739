import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class CholeskyTests: XCTestCase {
    func testLowerTimesTransposeIsA() throws {
        let a = try TestMatrices.positiveDefinite(7, seed: 51)
        let factorization = try LinearAlgebra.cholesky(a)
        let l = factorization.lower
        XCTAssertEqual(factorization.relativeDamping, 0)
        XCTAssertEqual(factorization.addedDiagonal, 0)
        for i in 0..<7 {
            XCTAssertGreaterThan(l[i, i], 0)
            for j in (i + 1)..<7 { XCTAssertEqual(l[i, j], 0, "zeros above the diagonal") }
        }
        XCTAssertLessThan(RandomMatrices.naiveProduct(l, l, transposeB: true).maxAbsDifference(a), 1e-12)
        let u = factorization.upper
        XCTAssertLessThan(RandomMatrices.naiveProduct(u, u, transposeA: true).maxAbsDifference(a), 1e-12)
    }

    func testFloatFactorization() throws {
        let exact = try TestMatrices.positiveDefinite(5, seed: 52)
        let a = Matrix<Float>(rowCount: 5, columnCount: 5, values: exact.values.map { Float($0) })
        let l = try LinearAlgebra.cholesky(a).lower
        XCTAssertLessThan(RandomMatrices.naiveProduct(l, l, transposeB: true).maxAbsDifference(RandomMatrices.double(a)), 1e-5)
    }

    func testDampingRescuesASingularPSDMatrixAndIsReported() throws {
        // Rank 2: the second pivot is exactly 1 − 1·1 = 0, so undamped Cholesky must fail.
        let a = Matrix<Double>(rowCount: 3, columnCount: 3, values: [1, 1, 0, 1, 1, 0, 0, 0, 2])
        XCTAssertThrowsError(try LinearAlgebra.cholesky(a))
        let factorization = try LinearAlgebra.cholesky(a, damping: CholeskyDamping(relativeValues: [0, 0.01, 0.1]))
        XCTAssertEqual(factorization.relativeDamping, 0.01)
        let meanDiagonal = 4.0 / 3.0
        XCTAssertEqual(factorization.addedDiagonal, 0.01 * meanDiagonal, accuracy: 1e-15)
        var damped = a
        for i in 0..<3 { damped[i, i] += factorization.addedDiagonal }
        let l = factorization.lower
        XCTAssertLessThan(RandomMatrices.naiveProduct(l, l, transposeB: true).maxAbsDifference(damped), 1e-14)
        XCTAssertEqual(CholeskyDamping.growing(from: 0.01, factor: 10, attempts: 3).relativeValues.count, 3)
        XCTAssertEqual(try LinearAlgebra.cholesky(a, damping: .growing(from: 1e-4, factor: 10, attempts: 3)).relativeDamping, 1e-4)
    }

    func testIndefiniteMatrixThrowsWithoutDamping() {
        let a = Matrix<Double>(rowCount: 2, columnCount: 2, values: [1, 2, 2, 1])
        XCTAssertThrowsError(try LinearAlgebra.cholesky(a)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .notPositiveDefinite(routine: "dpotrf", leadingMinor: 2, damping: 0))
        }
        // Damping of every attempt too small (eigenvalue −1 needs δ > 1, mean diag is 1).
        XCTAssertThrowsError(try LinearAlgebra.cholesky(a, damping: .fixed(0.5))) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .notPositiveDefinite(routine: "dpotrf", leadingMinor: 2, damping: 0.5))
        }
        XCTAssertThrowsError(try LinearAlgebra.cholesky(Matrix<Float>(zeros: 2, 3))) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .notSquare(operation: "spotrf", shape: [2, 3]))
        }
    }

    func testCholeskyInverse() throws {
        let a = try TestMatrices.positiveDefinite(6, seed: 53)
        let inverse = try LinearAlgebra.cholesky(a).inverse()
        XCTAssertEqual(inverse, inverse.transposed, "both triangles filled")
        XCTAssertLessThan(RandomMatrices.naiveProduct(a, inverse).maxAbsDifference(.identity(6)), 1e-12)
    }

    func testCholeskyInverseOfSingularFactorThrows() {
        let l = Matrix<Double>(rowCount: 2, columnCount: 2, values: [1, 0, 3, 0])
        XCTAssertThrowsError(try LinearAlgebra.choleskyInverse(lowerFactor: l)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .singularFactor(routine: "dpotri", diagonalIndex: 2))
        }
    }
}
