import Quantization
import Tensors
import TestSupport
import XCTest

/// `ErrorMetrics`: the ledger's numbers, fast path against the scalar reference, and the
/// Gram-matrix output error against an explicit `X`.
final class QuantizeErrorMetricsTests: XCTestCase {
    func testFastPathEqualsTheReference() {
        // Odd sizes exercise the scalar tail of the 8-lane loop.
        for (rows, columns) in [(1, 1), (3, 7), (17, 33), (64, 96)] {
            let original: Matrix<Float> = RandomMatrices.uniform(rows, columns, seed: UInt64(rows * 1000 + columns))
            var approximation = original
            for index in approximation.values.indices { approximation.values[index] = (original.values[index] * 8).rounded() / 8 }
            let fast = ErrorMetrics.weightError(original: original, approximation: approximation)
            let reference = ErrorMetrics.weightErrorReference(original: original, approximation: approximation)
            XCTAssertEqual(fast.weightSquaredNorm, reference.weightSquaredNorm, accuracy: 1e-12 * reference.weightSquaredNorm)
            XCTAssertEqual(fast.errorSquaredNorm, reference.errorSquaredNorm, accuracy: 1e-12 * reference.errorSquaredNorm)
            XCTAssertEqual(fast.maxAbsError, reference.maxAbsError, "max is order-independent: exact")
        }
    }

    func testDefinitions() {
        let original = Matrix<Float>(rowCount: 1, columnCount: 4, values: [3, 4, 0, 0])
        let approximation = Matrix<Float>(rowCount: 1, columnCount: 4, values: [3, 3, 0, 0.5])
        let metrics = ErrorMetrics.weightError(original: original, approximation: approximation)
        XCTAssertEqual(metrics.weightSquaredNorm, 25)
        XCTAssertEqual(metrics.errorSquaredNorm, 1.25)
        XCTAssertEqual(metrics.maxAbsError, 1)
        XCTAssertEqual(metrics.relativeError, (1.25 / 25).squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(metrics.sqnrDecibels, 10 * log10(20.0), accuracy: 1e-12)
        let exact = ErrorMetrics.weightError(original: original, approximation: original)
        XCTAssertEqual(exact.relativeError, 0)
        XCTAssertEqual(exact.sqnrDecibels, .infinity, "an exact copy has infinite SQNR (null on the wire)")
    }

    func testOutputErrorFromTheGramMatrixMatchesExplicitInputs() {
        let (tokens, inputs, outputs) = (40, 12, 5)
        let x: Matrix<Float> = RandomMatrices.uniform(tokens, inputs, seed: 7)
        let w: Matrix<Float> = RandomMatrices.uniform(outputs, inputs, seed: 8)
        var q = w
        for index in q.values.indices { q.values[index] = (w.values[index] * 4).rounded() / 4 }
        let gram = RandomMatrices.naiveProduct(x, x, transposeA: true)
        let xw = RandomMatrices.naiveProduct(x, w, transposeB: true)
        let xq = RandomMatrices.naiveProduct(x, q, transposeB: true)
        var signal = 0.0, noise = 0.0
        for index in xw.values.indices {
            signal += xw.values[index] * xw.values[index]
            noise += (xw.values[index] - xq.values[index]) * (xw.values[index] - xq.values[index])
        }
        let expected = (noise / signal).squareRoot()
        let measured = try? XCTUnwrap(ErrorMetrics.outputRelativeError(original: w, approximation: q, gram: gram))
        XCTAssertEqual(measured ?? -1, expected, accuracy: 1e-12)
    }
}
