import Adapters
import LinearAlgebra
import Tensors
import XCTest

/// PHLoRA / mergekit extraction: rank rules on a synthetic fine-tune with a known spectrum, the
/// randomized fixed-rank path, the greedy global allocation, and the rejected rules.
final class AdapterExtractionTests: XCTestCase {
    static let spectrum: [Double] = [10, 8, 6, 4, 2, 1]

    /// `W_ft = W_base + U diag(σ) Vᵀ + noise`, with orthonormal `U [out, 6]`, `V [in, 6]`.
    static func finetune(out: Int, inputs: Int, spectrum: [Double], noise: Double, seed: UInt64) throws -> (Matrix<Float>, Matrix<Float>) {
        var g = SeededRandomGenerator(seed: seed)
        let base: Matrix<Float> = g.gaussianMatrix(rowCount: out, columnCount: inputs, standardDeviation: 0.5)
        let u = try LinearAlgebra.svd(g.gaussianMatrix(rowCount: out, columnCount: spectrum.count) as Matrix<Double>).u
        let v = try LinearAlgebra.svd(g.gaussianMatrix(rowCount: inputs, columnCount: spectrum.count) as Matrix<Double>).u
        var us = u
        for row in 0..<out { for k in spectrum.indices { us[row, k] *= spectrum[k] } }
        let delta = try LinearAlgebra.multiply(us, v, transposeB: true)
        var finetuned = base
        for i in finetuned.values.indices { finetuned.values[i] += Float(delta.values[i] + noise * g.nextGaussian()) }
        return (base, finetuned)
    }

    func testEnergyRuleRecoversTheRankAndTheEnergyCurve() throws {
        let (base, finetuned) = try Self.finetune(out: 48, inputs: 64, spectrum: Self.spectrum, noise: 1e-3, seed: 1)
        let total = Self.spectrum.reduce(0) { $0 + $1 * $1 }                       // 221
        // Cumulative energy: 0.452, 0.742, 0.905, 0.977, 0.9955, 1.
        for (tau, rank) in [(0.99, 5), (0.95, 4), (0.9, 3), (0.5, 2), (0.3, 1), (0.999, 6)] {
            let extracted = try AdapterExtraction.extract(module: "m", base: base, finetuned: finetuned, rule: .energy(tau),
                                                          maxRank: nil, svd: .randomized, seed: 0)
            XCTAssertEqual(extracted.rank, rank, "τ = \(tau)")
            XCTAssertEqual(extracted.layer.rank, rank)
            XCTAssertEqual(extracted.layer.alpha, Double(rank))                  // scale 1
            XCTAssertEqual(extracted.singularValues.count, 48)                   // the full spectrum (exact SVD)
            let kept = Self.spectrum.prefix(rank).reduce(0) { $0 + $1 * $1 }
            XCTAssertEqual(extracted.energyRetained, kept / total, accuracy: 1e-4)
            XCTAssertGreaterThanOrEqual(extracted.energyRetained, tau)
            XCTAssertEqual(extracted.relativeError, ((total - kept) / total).squareRoot(), accuracy: 5e-3)   // + noise
            let measured = extracted.singularValues.map { $0 * $0 }
            XCTAssertEqual(extracted.relativeError, (measured.dropFirst(rank).reduce(0, +) / measured.reduce(0, +)).squareRoot(), accuracy: 1e-6)
        }
        let curve = try AdapterExtraction.extract(module: "m", base: base, finetuned: finetuned, rule: .fixed(6), maxRank: nil, svd: .exact, seed: 0)
        for (k, sigma) in Self.spectrum.enumerated() { XCTAssertEqual(curve.singularValues[k], sigma, accuracy: 0.02) }
        XCTAssertLessThan(curve.singularValues[6], 0.02)                          // noise floor ≈ 1e-3·(√48 + √64)
        // maxRank caps the rule.
        let capped = try AdapterExtraction.extract(module: "m", base: base, finetuned: finetuned, rule: .energy(0.99), maxRank: 3, svd: .exact, seed: 0)
        XCTAssertEqual(capped.rank, 3)
    }

    func testRelativeErrorBudgetsAreMetPerLayer() throws {
        let layers = [try Self.finetune(out: 48, inputs: 64, spectrum: Self.spectrum, noise: 1e-3, seed: 2),
                      try Self.finetune(out: 64, inputs: 32, spectrum: [5, 5, 5, 0.5, 0.4, 0.3], noise: 1e-3, seed: 3),
                      try Self.finetune(out: 40, inputs: 40, spectrum: [1, 0.9, 0.8, 0.7, 0.6, 0.5], noise: 1e-3, seed: 4)]
        for (index, (base, finetuned)) in layers.enumerated() {
            var previousRank = Int.max
            for epsilon in [0.05, 0.1, 0.2, 0.4, 0.8] {
                let extracted = try AdapterExtraction.extract(module: "l\(index)", base: base, finetuned: finetuned,
                                                              rule: .relativeError(epsilon), maxRank: nil, svd: .exact, seed: 0)
                XCTAssertLessThanOrEqual(extracted.relativeError, epsilon, "layer \(index), ε = \(epsilon)")
                XCTAssertLessThanOrEqual(extracted.rank, previousRank)
                previousRank = extracted.rank
                // Minimal: one rank fewer would miss the budget.
                if extracted.rank > 1 {
                    let tail = extracted.singularValues.dropFirst(extracted.rank - 1).reduce(0) { $0 + $1 * $1 }
                    let all = extracted.singularValues.reduce(0) { $0 + $1 * $1 }
                    XCTAssertGreaterThan((tail / all).squareRoot(), epsilon)
                }
                // B·A reproduces the delta up to that error.
                let product = try LinearAlgebra.multiply(LowRankProduct.widened(extracted.layer.loraB), LowRankProduct.widened(extracted.layer.loraA))
                let delta = LayerErrors.residual(original: finetuned, approximation: base)
                let residual = LayerErrors.squaredNorm(LayerErrors.subtracting(delta, LowRankProduct.narrowed(product)))
                XCTAssertEqual(LayerErrors.ratio(residual, LayerErrors.squaredNorm(delta)), extracted.relativeError, accuracy: 1e-5)
            }
        }
    }

    func testRandomizedFixedRankIsCloseToExact() throws {
        let (base, finetuned) = try Self.finetune(out: 96, inputs: 128, spectrum: Self.spectrum, noise: 1e-2, seed: 5)
        let exact = try AdapterExtraction.extract(module: "m", base: base, finetuned: finetuned, rule: .fixed(4), maxRank: nil, svd: .exact, seed: 0)
        let randomized = try AdapterExtraction.extract(module: "m", base: base, finetuned: finetuned, rule: .fixed(4), maxRank: nil, svd: .randomized, seed: 7)
        XCTAssertEqual(randomized.rank, 4)
        XCTAssertEqual(randomized.singularValues.count, 4)
        XCTAssertLessThan(randomized.relativeError, exact.relativeError * 1.01)
        XCTAssertEqual(randomized.energyRetained, exact.energyRetained, accuracy: 1e-3)
    }

    func testGreedyAllocationBeatsUniformRanksAtTheSameBudget() {
        // Mixed spectra: one steep, one flat, one in between; costs out + in.
        let steep = (0..<32).map { 20 * pow(0.5, Double($0)) }
        let flat = (0..<32).map { 3 - 0.05 * Double($0) }
        let middle = (0..<32).map { 8 / Double($0 + 1) }
        let spectra: [(module: String, singularValues: [Double], parameterCostPerRank: Int)] =
            [("steep", steep, 96), ("flat", flat, 64), ("middle", middle, 80)]
        func tail(_ ranks: [String: Int]) -> Double {
            spectra.reduce(0) { sum, entry in sum + entry.singularValues.dropFirst(ranks[entry.module]!).reduce(0) { $0 + $1 * $1 } }
        }
        for uniform in [2, 4, 8] {
            let budget = uniform * (96 + 64 + 80)
            let ranks = AdapterExtraction.allocateGlobally(spectra: spectra, parameterBudget: budget)
            let used = ranks["steep"]! * 96 + ranks["flat"]! * 64 + ranks["middle"]! * 80
            XCTAssertLessThanOrEqual(used, budget)
            XCTAssertGreaterThan(used, budget - 96)                    // nothing else would fit
            let uniformRanks = ["steep": uniform, "flat": uniform, "middle": uniform]
            XCTAssertLessThan(tail(ranks), tail(uniformRanks), "budget of uniform rank \(uniform): \(ranks)")
            if uniform == 8 { XCTAssertLessThan(ranks["steep"]!, ranks["flat"]!, "\(ranks)") }
        }
        // Ranks stop at the spectrum length; a zero budget adapts nothing.
        let short = AdapterExtraction.allocateGlobally(spectra: [("a", [3, 2], 10), ("b", [1], 10)], parameterBudget: 1000)
        XCTAssertEqual(short, ["a": 2, "b": 1])
        XCTAssertEqual(AdapterExtraction.allocateGlobally(spectra: [("a", [3, 2], 10)], parameterBudget: 0), ["a": 0])
    }

    func testInvalidRulesAreRejected() throws {
        let (base, finetuned) = try Self.finetune(out: 16, inputs: 24, spectrum: [3, 2], noise: 0, seed: 6)
        func parameter(_ rule: RankRule, maxRank: Int? = nil) -> String? {
            do {
                _ = try AdapterExtraction.extract(module: "layers.3.q", base: base, finetuned: finetuned, rule: rule, maxRank: maxRank, svd: .exact, seed: 0)
                return nil
            } catch let error as AdapterError {
                if case let .invalidParameter(_, reason) = error { XCTAssertTrue(reason.contains("layers.3.q"), reason) }
                return error.parameter
            } catch { return "\(error)" }
        }
        XCTAssertEqual(parameter(.fixed(17)), "rank")
        XCTAssertEqual(parameter(.fixed(0)), "rank")
        XCTAssertEqual(parameter(.energy(0)), "energy")
        XCTAssertEqual(parameter(.energy(1.01)), "energy")
        XCTAssertEqual(parameter(.relativeError(1)), "relativeError")
        XCTAssertEqual(parameter(.relativeError(-0.1)), "relativeError")
        XCTAssertEqual(parameter(.fixed(2), maxRank: 0), "maxRank")
        XCTAssertNil(parameter(.fixed(16)))
        XCTAssertNil(parameter(.energy(1)))
        XCTAssertNil(parameter(.relativeError(0)))
        XCTAssertThrowsError(try AdapterExtraction.extract(module: "m", base: base, finetuned: base.transposed, rule: .fixed(2), maxRank: nil, svd: .exact, seed: 0))
        // A zero delta extracts to rank 1 with zero factors.
        let zero = try AdapterExtraction.extract(module: "m", base: base, finetuned: base, rule: .energy(0.9), maxRank: nil, svd: .exact, seed: 0)
        XCTAssertEqual(zero.rank, 1)
        XCTAssertEqual(zero.relativeError, 0)
    }
}
