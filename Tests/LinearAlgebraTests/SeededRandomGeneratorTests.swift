import LinearAlgebra
import Tensors
import XCTest

final class SeededRandomGeneratorTests: XCTestCase {
    func testMatchesReferenceXoshiro256StarStarSeededBySplitmix64() {
        // First outputs for seed 42, from a separate transcription of the published algorithms
        // (splitmix64's first output for seed 0 is the well-known 0xe220a8397b1dcdaf).
        var generator = SeededRandomGenerator(seed: 42)
        XCTAssertEqual([generator.next(), generator.next(), generator.next()],
                       [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
        var zero = SeededRandomGenerator(seed: 0)
        XCTAssertEqual(zero.next(), 0x99EC_5F36_CB75_F2B4)
    }

    func testSameSeedSameGaussians() {
        var a = SeededRandomGenerator(seed: 5), b = SeededRandomGenerator(seed: 5)
        let first: Matrix<Float> = a.gaussianMatrix(rowCount: 3, columnCount: 4)
        let second: Matrix<Float> = b.gaussianMatrix(rowCount: 3, columnCount: 4)
        XCTAssertEqual(first.values.map(\.bitPattern), second.values.map(\.bitPattern))
    }

    func testGaussianMomentsAndUniformRange() {
        var generator = SeededRandomGenerator(seed: 2024)
        let count = 200_000
        var sum = 0.0, sumOfSquares = 0.0
        for _ in 0..<count {
            let x = generator.nextGaussian()
            sum += x
            sumOfSquares += x * x
        }
        let mean = sum / Double(count)
        // Standard error of the mean is 1/√n ≈ 0.0022 and of the variance √(2/n) ≈ 0.0032.
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(sumOfSquares / Double(count) - mean * mean, 1, accuracy: 0.015)
        for _ in 0..<1000 {
            let u = generator.nextUniform()
            XCTAssertTrue(u >= 0 && u < 1)
        }
    }
}
