import LinearAlgebra
import Tensors
import TestSupport
import XCTest

final class RandomizedSVDTests: XCTestCase {
    /// σᵢ = 2⁻ⁱ, i = 0..<30: a clearly decaying spectrum, as in LoRA-sized weight deltas.
    private let sigma = (0..<30).map { 1.0 / Double(1 << $0) }

    /// With ℓ = 16 samples and 2 power iterations, Halko et al. (Thm. 10.8 / Cor. 10.10) bound
    /// the error on σⱼ, j < 6, by roughly (σ₁₆/σⱼ)^(2q+1) ≈ (2⁻¹¹)⁵ — far below Float64 noise.
    private let powerIteratedTolerance = 1e-10
    /// Without power iterations the error is of order σ₁₆/σ₅ ≈ 5e-4.
    private let plainTolerance = 1e-2

    func testTopSingularValuesMatchExactSVD() throws {
        let a = try TestMatrices.withSingularValues(sigma, 80, 50, seed: 31)
        let exact = try LinearAlgebra.svd(a)
        let randomized = try LinearAlgebra.randomizedSVD(a, rank: 6, seed: 7)
        XCTAssertEqual(randomized.u.shape, [80, 6])
        XCTAssertEqual(randomized.singularValues.count, 6)
        XCTAssertEqual(randomized.vt.shape, [6, 50])
        for j in 0..<6 {
            XCTAssertEqual(randomized.singularValues[j], exact.singularValues[j],
                           accuracy: powerIteratedTolerance * exact.singularValues[j], "σ\(j)")
        }
        XCTAssertLessThan(RandomMatrices.columnOrthonormalityError(randomized.u), 1e-12)
        XCTAssertLessThan(RandomMatrices.columnOrthonormalityError(randomized.vt.transposed), 1e-12)
        // Its reconstruction is the best rank-6 approximation, up to the same tolerance.
        let best = try exact.truncated(toRank: 6).reconstructed()
        XCTAssertLessThan(try randomized.reconstructed().maxAbsDifference(best), 1e-10)
    }

    func testWithoutPowerIterationsStillApproximates() throws {
        let a = try TestMatrices.withSingularValues(sigma, 60, 70, seed: 32)
        let exact = try LinearAlgebra.svd(a)
        let randomized = try LinearAlgebra.randomizedSVD(a, rank: 6, oversampling: 10, powerIterations: 0, seed: 3)
        for j in 0..<6 {
            XCTAssertEqual(randomized.singularValues[j], exact.singularValues[j],
                           accuracy: plainTolerance * exact.singularValues[j], "σ\(j)")
        }
    }

    func testSameSeedIsBitIdentical() throws {
        let a = Matrix<Float>(rowCount: 40, columnCount: 30,
                              values: try TestMatrices.withSingularValues(sigma, 40, 30, seed: 33).values.map { Float($0) })
        let first = try LinearAlgebra.randomizedSVD(a, rank: 4, seed: 99)
        let second = try LinearAlgebra.randomizedSVD(a, rank: 4, seed: 99)
        XCTAssertEqual(first.u.values.map(\.bitPattern), second.u.values.map(\.bitPattern))
        XCTAssertEqual(first.singularValues.map(\.bitPattern), second.singularValues.map(\.bitPattern))
        XCTAssertEqual(first.vt.values.map(\.bitPattern), second.vt.values.map(\.bitPattern))
        let other = try LinearAlgebra.randomizedSVD(a, rank: 4, seed: 100)
        XCTAssertNotEqual(first.u.values, other.u.values, "a different seed draws a different test matrix")
    }

    func testRankOutOfRangeThrows() {
        let a: Matrix<Double> = RandomMatrices.uniform(5, 4, seed: 34)
        for rank in [0, 5] {
            XCTAssertThrowsError(try LinearAlgebra.randomizedSVD(a, rank: rank, seed: 1)) { error in
                guard case .invalidArgument(operation: "randomizedSVD", _)? = error as? LinearAlgebraError else {
                    return XCTFail("unexpected \(error)")
                }
            }
        }
        // Oversampling past min(m, n) is clipped, not an error.
        XCTAssertEqual(try LinearAlgebra.randomizedSVD(a, rank: 4, oversampling: 50, seed: 1).rank, 4)
    }
}
