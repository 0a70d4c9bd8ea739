import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class QRDecompositionTests: XCTestCase {
    private func checkQR<Scalar: BLASScalar>(_ a: Matrix<Scalar>, tolerance: Double,
                                             file: StaticString = #filePath, line: UInt = #line) throws {
        let qr = try LinearAlgebra.qr(a)
        let k = min(a.rowCount, a.columnCount)
        XCTAssertEqual(qr.q.shape, [a.rowCount, k], file: file, line: line)
        XCTAssertEqual(qr.r.shape, [k, a.columnCount], file: file, line: line)
        XCTAssertLessThan(RandomMatrices.columnOrthonormalityError(qr.q), tolerance, "QᵀQ = I", file: file, line: line)
        for i in 0..<k {
            for j in 0..<min(i, a.columnCount) { XCTAssertEqual(qr.r[i, j], 0, "R upper triangular", file: file, line: line) }
        }
        XCTAssertLessThan(RandomMatrices.naiveProduct(qr.q, qr.r).maxAbsDifference(RandomMatrices.double(a)), tolerance,
                          "Q·R = A", file: file, line: line)
    }

    func testTallWideAndSquare() throws {
        try checkQR(RandomMatrices.uniform(10, 4, seed: 71) as Matrix<Double>, tolerance: 1e-13)
        try checkQR(RandomMatrices.uniform(4, 10, seed: 72) as Matrix<Double>, tolerance: 1e-13)
        try checkQR(RandomMatrices.uniform(6, 6, seed: 73) as Matrix<Double>, tolerance: 1e-13)
        try checkQR(RandomMatrices.uniform(9, 5, seed: 74) as Matrix<Float>, tolerance: 1e-5)
        try checkQR(RandomMatrices.uniform(3, 7, seed: 75) as Matrix<Float>, tolerance: 1e-5)
    }

    func testEmptyAndNonFinite() throws {
        let empty = try LinearAlgebra.qr(Matrix<Double>(zeros: 4, 0))
        XCTAssertEqual(empty.q.shape, [4, 0])
        XCTAssertEqual(empty.r.shape, [0, 0])
        var a = Matrix<Double>.identity(3)
        a[0, 2] = .nan
        XCTAssertThrowsError(try LinearAlgebra.qr(a)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .nonFiniteInput(operation: "dgeqrf"))
        }
    }
}
