import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class TriangularSolveTests: XCTestCase {
    /// A well-conditioned triangular matrix: random off-diagonal entries, diagonal 2…3.
    private func triangular(_ n: Int, _ triangle: MatrixTriangle, seed: UInt64) -> Matrix<Double> {
        var t: Matrix<Double> = RandomMatrices.uniform(n, n, seed: seed)
        for i in 0..<n {
            t[i, i] = 2.5 + 0.5 * t[i, i]
            for j in 0..<n where (triangle == .lower ? j > i : j < i) { t[i, j] = 0 }
        }
        return t
    }

    func testEveryVariantSolvesItsSystem() throws {
        for side in [MatrixSide.left, .right] {
            for triangle in [MatrixTriangle.upper, .lower] {
                for transpose in [false, true] {
                    let t = triangular(5, triangle, seed: 61)
                    let b: Matrix<Double> = side == .left ? RandomMatrices.uniform(5, 3, seed: 62) : RandomMatrices.uniform(3, 5, seed: 62)
                    let x = try LinearAlgebra.solveTriangular(t, b, side: side, triangle: triangle, transpose: transpose, alpha: 2)
                    let product = side == .left
                        ? RandomMatrices.naiveProduct(t, x, transposeA: transpose)
                        : RandomMatrices.naiveProduct(x, t, transposeB: transpose)
                    let twiceB = Matrix(rowCount: b.rowCount, columnCount: b.columnCount, values: b.values.map { 2 * $0 })
                    XCTAssertLessThan(product.maxAbsDifference(twiceB), 1e-13, "\(side) \(triangle) transpose=\(transpose)")
                }
            }
        }
    }

    func testOtherTriangleAndUnitDiagonalAreIgnored() throws {
        var t = triangular(4, .lower, seed: 63)
        let clean = t
        for i in 0..<4 { for j in (i + 1)..<4 { t[i, j] = 99 } }
        let b: Matrix<Float> = RandomMatrices.uniform(4, 2, seed: 64)
        let floatT = Matrix<Float>(rowCount: 4, columnCount: 4, values: t.values.map { Float($0) })
        let x = try LinearAlgebra.solveTriangular(floatT, b, triangle: .lower)
        XCTAssertLessThan(RandomMatrices.naiveProduct(clean, RandomMatrices.double(x)).maxAbsDifference(RandomMatrices.double(b)), 1e-5)

        var unit = clean
        for i in 0..<4 { unit[i, i] = 1 }
        let bd = RandomMatrices.double(b)
        let xUnit = try LinearAlgebra.solveTriangular(clean, bd, triangle: .lower, unitDiagonal: true)
        XCTAssertLessThan(RandomMatrices.naiveProduct(unit, xUnit).maxAbsDifference(bd), 1e-13)
    }

    func testSingularAndMismatchedInputsThrow() {
        var t = triangular(3, .upper, seed: 65)
        t[1, 1] = 0
        let b = Matrix<Double>(zeros: 3, 2)
        XCTAssertThrowsError(try LinearAlgebra.solveTriangular(t, b, triangle: .upper)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .singularFactor(routine: "dtrsm", diagonalIndex: 2))
        }
        XCTAssertThrowsError(try LinearAlgebra.solveTriangular(t, b, side: .right, triangle: .upper)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .shapeMismatch(operation: "dtrsm", shapes: [[3, 3], [3, 2]]))
        }
    }
}
