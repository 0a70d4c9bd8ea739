import Adapters
import LinearAlgebra
import Tensors
import XCTest

/// The one correction routine: optimality of each weighting, the reported tail, the split.
final class LowRankCorrectionTests: XCTestCase {
    static func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64, scale: Double = 1) -> Matrix<Double> {
        var generator = SeededRandomGenerator(seed: seed)
        return Matrix(rowCount: rows, columnCount: columns, values: (0..<(rows * columns)).map { _ in generator.nextGaussian() * scale })
    }

    /// A Gram matrix of correlated inputs with one dead channel: `XᵀX` of `tokens × in`.
    static func gram(inputs: Int, tokens: Int, seed: UInt64) throws -> Matrix<Double> {
        var x = randomMatrix(tokens, inputs, seed: seed)
        for t in 0..<tokens {
            x[t, 1] = 0.9 * x[t, 0] + 0.1 * x[t, 1]                         // correlated pair
            x[t, 2] *= 8                                                      // a loud channel
            x[t, inputs - 1] = 0                                              // a dead channel
        }
        return try LinearAlgebra.multiply(x, x, transposeA: true)
    }

    static func objective(_ e: Matrix<Double>, _ factors: LowRankFactors, gram h: Matrix<Double>?) throws -> Double {
        let product = try LinearAlgebra.multiply(factors.loraB, factors.loraA)
        var residual = e
        for i in residual.values.indices { residual.values[i] -= product.values[i] }
        guard let h else { return residual.values.reduce(0) { $0 + $1 * $1 } }
        let rh = try LinearAlgebra.multiply(residual, h)
        return zip(rh.values, residual.values).reduce(0) { $0 + $1.0 * $1.1 }
    }

    func testPlainFitIsTheTruncatedSVDAndReportsItsTail() throws {
        let e = Self.randomMatrix(24, 40, seed: 1)
        let factors = try LowRankCorrection.fit(error: e, rank: 5, svd: SVDChoice(mode: .exact))
        let full = try LinearAlgebra.svd(e)
        let tail = full.singularValues.dropFirst(5).reduce(0) { $0 + $1 * $1 }
        XCTAssertEqual(try Self.objective(e, factors, gram: nil), tail, accuracy: 1e-9 * tail)
        XCTAssertEqual(factors.tailSquaredNorm, tail, accuracy: 1e-9 * tail)
        // Balanced split: ‖B_k‖ = ‖A_k‖ = √σ_k.
        for k in 0..<5 {
            let bNorm = (0..<24).reduce(0.0) { $0 + factors.loraB[$1, k] * factors.loraB[$1, k] }.squareRoot()
            let aNorm = (0..<40).reduce(0.0) { $0 + factors.loraA[k, $1] * factors.loraA[k, $1] }.squareRoot()
            XCTAssertEqual(bNorm, aNorm, accuracy: 1e-9)
            XCTAssertEqual(bNorm * aNorm, full.singularValues[k], accuracy: 1e-9)
        }
    }

    /// CLoQ's closed form reaches the weighted tail exactly and beats every other rank-r
    /// correction on the same (damped) objective.
    func testGramWeightingIsTheExactOptimum() throws {
        let e = Self.randomMatrix(20, 32, seed: 2)
        let h = try Self.gram(inputs: 32, tokens: 200, seed: 3)
        let damping = 1e-3
        let cloq = try LowRankCorrection.fit(error: e, rank: 4, weighting: .gram(h, relativeDamping: damping), svd: SVDChoice(mode: .exact))
        let damped = Self.damped(h, damping)
        let achieved = try Self.objective(e, cloq, gram: damped)
        XCTAssertEqual(achieved, cloq.tailSquaredNorm, accuracy: 1e-9 * achieved)
        let plain = try LowRankCorrection.fit(error: e, rank: 4, svd: SVDChoice(mode: .exact))
        let diagonal = try LowRankCorrection.fit(error: e, rank: 4, weighting: .diagonal((0..<32).map { max(h[$0, $0], 1e-3).squareRoot() }),
                                                 svd: SVDChoice(mode: .exact))
        XCTAssertLessThan(achieved, try Self.objective(e, plain, gram: damped))
        XCTAssertLessThan(achieved, try Self.objective(e, diagonal, gram: damped))
        XCTAssertEqual(cloq.relativeDamping, damping)
    }

    /// A singular Gram matrix (fewer tokens than inputs) is damped, never NaN.
    func testSingularGramIsDampedNotNaN() throws {
        let e = Self.randomMatrix(8, 16, seed: 4)
        let h = try Self.gram(inputs: 16, tokens: 3, seed: 5)
        let factors = try LowRankCorrection.fit(error: e, rank: 2, weighting: .gram(h, relativeDamping: 0), svd: SVDChoice(mode: .exact))
        XCTAssertTrue(factors.loraA.values.allSatisfy(\.isFinite))
        XCTAssertTrue(factors.loraB.values.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(factors.relativeDamping ?? 0, 0)
    }

    func testRankOneWeightingIsExactWhenTheWeightsAreRankOne() throws {
        let e = Self.randomMatrix(12, 18, seed: 6)
        let rows = (0..<12).map { 0.5 + Double($0) / 12 }, columns = (0..<18).map { 1 + Double($0 % 3) }
        let factors = try LowRankCorrection.fit(error: e, rank: 3, weighting: .rankOne(rows: rows, columns: columns), svd: SVDChoice(mode: .exact))
        let product = try LinearAlgebra.multiply(factors.loraB, factors.loraA)
        var weightedResidual = 0.0
        for r in 0..<12 { for c in 0..<18 { let d = (e[r, c] - product[r, c]) * rows[r] * columns[c]; weightedResidual += d * d } }
        XCTAssertEqual(weightedResidual, factors.tailSquaredNorm, accuracy: 1e-9 * weightedResidual)
    }

    func testRandomizedMatchesExactOnALowRankPlusNoiseMatrix() throws {
        var e = try LinearAlgebra.multiply(Self.randomMatrix(64, 6, seed: 7), Self.randomMatrix(6, 96, seed: 8))
        let noise = Self.randomMatrix(64, 96, seed: 9, scale: 0.01)
        for i in e.values.indices { e.values[i] += noise.values[i] }
        let exact = try LowRankCorrection.fit(error: e, rank: 6, svd: SVDChoice(mode: .exact))
        let randomized = try LowRankCorrection.fit(error: e, rank: 6, svd: SVDChoice(mode: .randomized, seed: 1))
        let exactError = try Self.objective(e, exact, gram: nil), randomizedError = try Self.objective(e, randomized, gram: nil)
        XCTAssertLessThan(randomizedError, exactError * 1.01)
    }

    static func damped(_ h: Matrix<Double>, _ relative: Double) -> Matrix<Double> {
        var result = h
        var trace = 0.0
        for i in 0..<h.rowCount { trace += h[i, i] }
        let mean = trace / Double(h.rowCount)
        for i in 0..<h.rowCount where !(h[i, i] > 0) { result[i, i] = mean }
        var repairedTrace = 0.0
        for i in 0..<h.rowCount { repairedTrace += result[i, i] }
        for i in 0..<h.rowCount { result[i, i] += relative * repairedTrace / Double(h.rowCount) }
        return result
    }
}
