import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class GramTests: XCTestCase {
    func testFloatGramIsFloat64XTransposeXAcrossChunks() {
        // More rows than one conversion chunk (256) so the chunked accumulation is exercised.
        let x: Matrix<Float> = RandomMatrices.uniform(600, 7, seed: 11)
        let h = LinearAlgebra.gram(x)
        let expected = RandomMatrices.naiveProduct(x, x, transposeA: true)
        XCTAssertEqual(h.shape, [7, 7])
        // Both sums are exact Float64 products of Float32 inputs; only summation order differs.
        XCTAssertLessThan(h.maxAbsDifference(expected), 1e-11)
        XCTAssertEqual(h, h.transposed, "both triangles filled, exactly symmetric")
    }

    func testAccumulatedBatchesEqualGramOfAllRows() throws {
        let first: Matrix<Float> = RandomMatrices.uniform(10, 4, seed: 12)
        let second: Matrix<Float> = RandomMatrices.uniform(6, 4, seed: 13)
        var h = LinearAlgebra.gram(first)
        try LinearAlgebra.accumulateGram(second, into: &h)
        let all = Matrix(rowCount: 16, columnCount: 4, values: first.values + second.values)
        XCTAssertLessThan(h.maxAbsDifference(LinearAlgebra.gram(all)), 1e-12)
        var wrong = Matrix<Double>(zeros: 3, 3)
        XCTAssertThrowsError(try LinearAlgebra.accumulateGram(second, into: &wrong))
    }

    func testDoubleGram() {
        let x: Matrix<Double> = RandomMatrices.uniform(9, 5, seed: 14)
        XCTAssertLessThan(LinearAlgebra.gram(x).maxAbsDifference(RandomMatrices.naiveProduct(x, x, transposeA: true)), 1e-13)
    }
}
