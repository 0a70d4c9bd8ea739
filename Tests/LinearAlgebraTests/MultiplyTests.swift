import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class MultiplyTests: XCTestCase {
    /// Operands `A`, `B` stored so that `op(A)` is `[m, k]` and `op(B)` is `[k, n]`.
    private func operands<Scalar: BinaryFloatingPoint & Sendable>(_ m: Int, _ k: Int, _ n: Int, transposeA: Bool,
                                                                  transposeB: Bool) -> (Matrix<Scalar>, Matrix<Scalar>) {
        let a: Matrix<Scalar> = transposeA ? RandomMatrices.uniform(k, m, seed: 1) : RandomMatrices.uniform(m, k, seed: 1)
        let b: Matrix<Scalar> = transposeB ? RandomMatrices.uniform(n, k, seed: 2) : RandomMatrices.uniform(k, n, seed: 2)
        return (a, b)
    }

    func testFloatGemmMatchesTripleLoopForEveryTranspose() throws {
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let (a, b): (Matrix<Float>, Matrix<Float>) = operands(7, 13, 5, transposeA: transposeA, transposeB: transposeB)
                let c = try LinearAlgebra.multiply(a, b, transposeA: transposeA, transposeB: transposeB)
                let expected = RandomMatrices.naiveProduct(a, b, transposeA: transposeA, transposeB: transposeB)
                XCTAssertEqual(c.shape, [7, 5])
                // 13 products of magnitude ≤ 1, each rounded to Float32: a few ulps of 13.
                XCTAssertLessThan(RandomMatrices.double(c).maxAbsDifference(expected), 1e-5, "tA=\(transposeA) tB=\(transposeB)")
            }
        }
    }

    func testDoubleGemmMatchesTripleLoopForEveryTranspose() throws {
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let (a, b): (Matrix<Double>, Matrix<Double>) = operands(6, 11, 9, transposeA: transposeA, transposeB: transposeB)
                let c = try LinearAlgebra.multiply(a, b, transposeA: transposeA, transposeB: transposeB)
                let expected = RandomMatrices.naiveProduct(a, b, transposeA: transposeA, transposeB: transposeB)
                XCTAssertLessThan(c.maxAbsDifference(expected), 1e-13, "tA=\(transposeA) tB=\(transposeB)")
            }
        }
    }

    func testMultiplyAccumulateScalesBothTerms() throws {
        let a: Matrix<Double> = RandomMatrices.uniform(4, 3, seed: 3)
        let b: Matrix<Double> = RandomMatrices.uniform(3, 2, seed: 4)
        let c0: Matrix<Double> = RandomMatrices.uniform(4, 2, seed: 5)
        var c = c0
        try LinearAlgebra.multiplyAccumulate(a, b, into: &c, alpha: 2, beta: -0.5)
        let product = RandomMatrices.naiveProduct(a, b)
        for i in 0..<4 {
            for j in 0..<2 { XCTAssertEqual(c[i, j], 2 * product[i, j] - 0.5 * c0[i, j], accuracy: 1e-13) }
        }
    }

    func testGemvMatchesTripleLoopBothWays() throws {
        let a: Matrix<Float> = RandomMatrices.uniform(5, 8, seed: 6)
        let x: Matrix<Float> = RandomMatrices.uniform(8, 1, seed: 7)
        let xt: Matrix<Float> = RandomMatrices.uniform(5, 1, seed: 8)
        let y = try LinearAlgebra.multiply(a, vector: x.values)
        let yt = try LinearAlgebra.multiply(a, vector: xt.values, transpose: true)
        let expected = RandomMatrices.naiveProduct(a, x)
        let expectedT = RandomMatrices.naiveProduct(a, xt, transposeA: true)
        XCTAssertEqual(y.count, 5)
        XCTAssertEqual(yt.count, 8)
        for i in 0..<5 { XCTAssertEqual(Double(y[i]), expected.values[i], accuracy: 1e-5) }
        for i in 0..<8 { XCTAssertEqual(Double(yt[i]), expectedT.values[i], accuracy: 1e-5) }

        var accumulated = [Float](repeating: 1, count: 5)
        try LinearAlgebra.multiplyAccumulate(a, vector: x.values, into: &accumulated, alpha: 1, beta: 3)
        for i in 0..<5 { XCTAssertEqual(Double(accumulated[i]), expected.values[i] + 3, accuracy: 1e-5) }
    }

    func testEmptyInnerDimensionGivesScaledC() throws {
        let a = Matrix<Double>(zeros: 3, 0), b = Matrix<Double>(zeros: 0, 2)
        XCTAssertEqual(try LinearAlgebra.multiply(a, b), Matrix<Double>(zeros: 3, 2))
        var c = Matrix<Double>(rowCount: 3, columnCount: 2, values: [1, 2, 3, 4, 5, 6])
        try LinearAlgebra.multiplyAccumulate(a, b, into: &c, beta: 2)
        XCTAssertEqual(c.values, [2, 4, 6, 8, 10, 12])
    }

    func testShapeMismatchThrowsNamingTheRoutine() {
        let a = Matrix<Float>(zeros: 2, 3), b = Matrix<Float>(zeros: 4, 5)
        XCTAssertThrowsError(try LinearAlgebra.multiply(a, b)) { error in
            XCTAssertEqual(error as? LinearAlgebraError,
                           .shapeMismatch(operation: "sgemm", shapes: [[2, 3], [4, 5], [2, 5]]))
        }
        XCTAssertThrowsError(try LinearAlgebra.multiply(Matrix<Double>(zeros: 2, 3), vector: [1, 2]))
    }
}
