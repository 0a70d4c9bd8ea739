import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class SingularValueDecompositionTests: XCTestCase {
    private func checkSVD<Scalar: BLASScalar>(_ a: Matrix<Scalar>, tolerance: Double,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        let svd = try LinearAlgebra.svd(a)
        let k = min(a.rowCount, a.columnCount)
        XCTAssertEqual(svd.u.shape, [a.rowCount, k], file: file, line: line)
        XCTAssertEqual(svd.singularValues.count, k, file: file, line: line)
        XCTAssertEqual(svd.vt.shape, [k, a.columnCount], file: file, line: line)
        XCTAssertLessThan(TestMatrices.relativeError(try svd.reconstructed(), a), tolerance, "‖A − USVᵀ‖/‖A‖",
                          file: file, line: line)
        XCTAssertLessThan(RandomMatrices.columnOrthonormalityError(svd.u), tolerance, "UᵀU = I", file: file, line: line)
        XCTAssertLessThan(RandomMatrices.columnOrthonormalityError(svd.vt.transposed), tolerance, "VᵀV = I",
                          file: file, line: line)
        for (index, value) in svd.singularValues.enumerated() {
            XCTAssertGreaterThanOrEqual(value, 0, file: file, line: line)
            if index > 0 { XCTAssertLessThanOrEqual(value, svd.singularValues[index - 1], file: file, line: line) }
        }
    }

    func testFloatTallAndWide() throws {
        // Backward-stable SVD: errors of a few ulps (2⁻²⁴ ≈ 6e-8) times a small dimension factor.
        try checkSVD(RandomMatrices.uniform(12, 5, seed: 21) as Matrix<Float>, tolerance: 1e-5)
        try checkSVD(RandomMatrices.uniform(5, 12, seed: 22) as Matrix<Float>, tolerance: 1e-5)
    }

    func testDoubleTallWideAndSquare() throws {
        try checkSVD(RandomMatrices.uniform(9, 4, seed: 23) as Matrix<Double>, tolerance: 1e-13)
        try checkSVD(RandomMatrices.uniform(4, 9, seed: 24) as Matrix<Double>, tolerance: 1e-13)
        try checkSVD(RandomMatrices.uniform(8, 8, seed: 25) as Matrix<Double>, tolerance: 1e-13)
    }

    func testRecoversKnownSingularValues() throws {
        let sigma = [5.0, 3, 1, 0.5]
        let a = try TestMatrices.withSingularValues(sigma, 10, 6, seed: 26)
        let svd = try LinearAlgebra.svd(a)
        for (index, value) in sigma.enumerated() { XCTAssertEqual(svd.singularValues[index], value, accuracy: 1e-12) }
        XCTAssertEqual(svd.singularValues[4], 0, accuracy: 1e-12)
        XCTAssertEqual(svd.singularValues[5], 0, accuracy: 1e-12)
    }

    func testTruncationKeepsLeadingTriplets() throws {
        let a = try TestMatrices.withSingularValues([4, 2], 7, 5, seed: 27)
        let truncated = try LinearAlgebra.svd(a).truncated(toRank: 2)
        XCTAssertEqual(truncated.u.shape, [7, 2])
        XCTAssertEqual(truncated.vt.shape, [2, 5])
        XCTAssertLessThan(TestMatrices.relativeError(try truncated.reconstructed(), a), 1e-13)
    }

    func testEmptyAndNonFiniteInputs() throws {
        let empty = try LinearAlgebra.svd(Matrix<Float>(zeros: 0, 3))
        XCTAssertEqual(empty.rank, 0)
        XCTAssertEqual(empty.vt.shape, [0, 3])
        var a: Matrix<Float> = RandomMatrices.uniform(3, 3, seed: 28)
        a[1, 1] = .nan
        XCTAssertThrowsError(try LinearAlgebra.svd(a)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .nonFiniteInput(operation: "sgesdd"))
        }
    }
}
