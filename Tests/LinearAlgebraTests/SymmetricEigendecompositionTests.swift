import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class SymmetricEigendecompositionTests: XCTestCase {
    private func symmetric(_ n: Int, seed: UInt64) -> Matrix<Double> {
        let b: Matrix<Double> = RandomMatrices.uniform(n, n, seed: seed)
        var a = b
        for i in 0..<n {
            for j in 0..<n { a[i, j] = b[i, j] + b[j, i] }
        }
        return a
    }

    func testEigenpairsSatisfyAvEqualsLambdaV() throws {
        let a = symmetric(9, seed: 41)
        let eigen = try LinearAlgebra.symmetricEigen(a)
        XCTAssertEqual(eigen.eigenvectors.shape, [9, 9])
        XCTAssertLessThan(RandomMatrices.columnOrthonormalityError(eigen.eigenvectors), 1e-13)
        let av = RandomMatrices.naiveProduct(a, eigen.eigenvectors)
        for j in 0..<9 {
            for i in 0..<9 {
                XCTAssertEqual(av[i, j], eigen.eigenvalues[j] * eigen.eigenvectors[i, j], accuracy: 1e-12, "pair \(j)")
            }
        }
        XCTAssertEqual(eigen.eigenvalues, eigen.eigenvalues.sorted(), "ascending by default")
    }

    func testDescendingOrderReversesPairs() throws {
        let a = symmetric(6, seed: 42)
        let ascending = try LinearAlgebra.symmetricEigen(a)
        let descending = try LinearAlgebra.symmetricEigen(a, order: .descending)
        XCTAssertEqual(descending.eigenvalues, Array(ascending.eigenvalues.reversed()))
        for j in 0..<6 {
            for i in 0..<6 { XCTAssertEqual(descending.eigenvectors[i, j], ascending.eigenvectors[i, 5 - j]) }
        }
    }

    func testFloatAndOnlyTheLowerTriangleIsRead() throws {
        let exact = symmetric(5, seed: 43)
        var a = Matrix<Float>(rowCount: 5, columnCount: 5, values: exact.values.map { Float($0) })
        for i in 0..<5 {
            for j in (i + 1)..<5 { a[i, j] = 1000 }  // garbage above the diagonal
        }
        let eigen = try LinearAlgebra.symmetricEigen(a)
        let reference = try LinearAlgebra.symmetricEigen(exact)
        for j in 0..<5 { XCTAssertEqual(Double(eigen.eigenvalues[j]), reference.eigenvalues[j], accuracy: 1e-5) }
    }

    func testKnownDiagonalSpectrum() throws {
        let a = Matrix<Double>(rowCount: 3, columnCount: 3, values: [2, 0, 0, 0, -1, 0, 0, 0, 5])
        XCTAssertEqual(try LinearAlgebra.symmetricEigen(a).eigenvalues, [-1, 2, 5])
    }

    func testErrorPaths() {
        XCTAssertThrowsError(try LinearAlgebra.symmetricEigen(Matrix<Double>(zeros: 2, 3))) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .notSquare(operation: "dsyevd", shape: [2, 3]))
        }
        var a = Matrix<Float>.identity(3)
        a[2, 0] = .infinity
        XCTAssertThrowsError(try LinearAlgebra.symmetricEigen(a)) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .nonFiniteInput(operation: "ssyevd"))
        }
    }
}
