import XCTest
@testable import Quantization

/// The LQ-LoRA knapsack (`MixedPrecisionPlanner`) against brute force, and its refusals.
final class MixedPrecisionTests: XCTestCase {
    /// Planner and brute force sum the same errors in different orders; they may differ by a few
    /// ulps of the total. The planner also prunes within 1e-12 relative of its best plan.
    static let errorTolerance = 1e-9

    struct Random {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        mutating func unit() -> Double { Double(next(1 << 30)) / Double(1 << 30) }
    }

    static func candidate(bits: Double, error: Double) -> MixedPrecisionCandidate {
        MixedPrecisionCandidate(spec: QuantizationSpec(method: .int, bits: max(2, min(8, Int(bits)))), bitsPerWeight: bits, error: error)
    }

    /// Every combination: the smallest summed error whose total bits fit, or nil.
    static func bruteForce(_ layers: [MixedPrecisionLayer], budgetBitsPerWeight: Double) -> Double? {
        let totalParameters = layers.reduce(0) { $0 + $1.parameterCount }
        let budgetBits = budgetBitsPerWeight * Double(totalParameters) * (1 + 1e-12)
        var best: Double?
        func visit(_ depth: Int, _ bits: Double, _ error: Double) {
            if depth == layers.count {
                if bits <= budgetBits, best.map({ error < $0 }) ?? true { best = error }
                return
            }
            for candidate in layers[depth].candidates {
                visit(depth + 1, bits + (candidate.bitsPerWeight * Double(layers[depth].parameterCount)).rounded(), error + candidate.error)
            }
        }
        visit(0, 0, 0)
        return best
    }

    func testMatchesBruteForceOnSmallInstances() throws {
        var random = Random(state: 2024)
        var solved = 0, infeasible = 0
        for trial in 0..<400 {
            let layerCount = 1 + random.next(6)
            let layers = (0..<layerCount).map { index -> MixedPrecisionLayer in
                let candidates = (0..<(1 + random.next(5))).map { _ -> MixedPrecisionCandidate in
                    // Bits on a 1/8 grid (some equal), errors with duplicates and dominated pairs.
                    Self.candidate(bits: 2 + Double(random.next(57)) / 8, error: Double(random.next(40)) * random.unit())
                }
                return MixedPrecisionLayer(name: "layer\(index)", parameterCount: 64 * (1 + random.next(50)), candidates: candidates)
            }
            let budget = 2 + 7 * random.unit()
            let expected = Self.bruteForce(layers, budgetBitsPerWeight: budget)
            do {
                let plan = try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: budget)
                let optimum = try XCTUnwrap(expected, "trial \(trial): planner found a plan brute force calls infeasible")
                XCTAssertEqual(plan.predictedError, optimum, accuracy: Self.errorTolerance * max(1, optimum), "trial \(trial)")
                XCTAssertLessThanOrEqual(plan.achievedBitsPerWeight, budget * (1 + 1e-12), "trial \(trial)")
                XCTAssertEqual(plan.choices.map(\.layer), layers.map(\.name))
                for (choice, layer) in zip(plan.choices, layers) {
                    XCTAssertEqual(choice.error, layer.candidates[choice.candidateIndex].error)
                }
                XCTAssertEqual(plan.predictedError, plan.choices.reduce(0) { $0 + $1.error }, accuracy: 1e-12 * max(1, optimum))
                solved += 1
            } catch QuantizationError.invalidParameter(let parameter, _) {
                XCTAssertEqual(parameter, "budgetBitsPerWeight")
                XCTAssertNil(expected, "trial \(trial): planner refused a feasible budget")
                infeasible += 1
            }
        }
        XCTAssertGreaterThan(solved, 200)
        XCTAssertGreaterThan(infeasible, 10)
    }

    func testInfeasibleBudgetIsRefusedWithTheMinimum() {
        let layers = [MixedPrecisionLayer(name: "a", parameterCount: 100, candidates: [Self.candidate(bits: 4, error: 1),
                                                                                       Self.candidate(bits: 3, error: 2)]),
                      MixedPrecisionLayer(name: "b", parameterCount: 300, candidates: [Self.candidate(bits: 5, error: 1)])]
        XCTAssertThrowsError(try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: 4.4)) { error in
            guard case let QuantizationError.invalidParameter(parameter, reason)? = error as? QuantizationError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(parameter, "budgetBitsPerWeight")
            XCTAssertTrue(reason.contains("infeasible") && reason.contains("4.5"), reason)  // (3·100 + 5·300)/400
        }
        XCTAssertNoThrow(try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: 4.5))
    }

    func testBadInputsAreRefused() {
        let good = MixedPrecisionLayer(name: "a", parameterCount: 10, candidates: [Self.candidate(bits: 4, error: 1)])
        let cases: [([MixedPrecisionLayer], Double)] = [
            ([], 4),
            ([good], 0),
            ([good], .nan),
            ([MixedPrecisionLayer(name: "b", parameterCount: 10, candidates: [])], 4),
            ([MixedPrecisionLayer(name: "b", parameterCount: 0, candidates: good.candidates)], 4),
            ([MixedPrecisionLayer(name: "b", parameterCount: 10, candidates: [Self.candidate(bits: 4, error: .nan)])], 4),
            ([MixedPrecisionLayer(name: "b", parameterCount: 10, candidates: [Self.candidate(bits: -1, error: 1)])], 4),
        ]
        for (layers, budget) in cases {
            XCTAssertThrowsError(try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: budget)) { error in
                XCTAssertNotNil((error as? QuantizationError)?.parameter, "\(error)")
            }
        }
    }

    func testDecimalBudgetsThatAreMetExactlyAreFeasible() throws {
        // 4.1 bits on 1000 weights is 4100 bits; 4.1·1000 in binary is 4099.999…, which a plain
        // floor would turn into an infeasible budget.
        let layer = MixedPrecisionLayer(name: "a", parameterCount: 1000, candidates: [Self.candidate(bits: 4.1, error: 1),
                                                                                      Self.candidate(bits: 8, error: 0)])
        let plan = try MixedPrecisionPlanner.plan(layers: [layer], budgetBitsPerWeight: 4.1)
        XCTAssertEqual(plan.choices[0].candidateIndex, 0)
        XCTAssertEqual(plan.achievedBitsPerWeight, 4.1, accuracy: 1e-12)
    }

    /// LQ-LoRA's small check (algorithms.md §6(f) (2)): at the budget of a uniform configuration,
    /// the exact plan's summed error is never above that configuration's.
    func testNeverWorseThanAUniformPlanOfTheSameSize() throws {
        let bitChoices: [Double] = [2.25, 3.25, 4.25, 8.25]
        var random = Random(state: 7)
        let layers = (0..<30).map { index -> MixedPrecisionLayer in
            let sensitivity = 0.1 + 10 * random.unit()  // layers differ strongly, as projections do
            return MixedPrecisionLayer(name: "l\(index)", parameterCount: 4096 * (1 + random.next(4)),
                                       candidates: bitChoices.map { Self.candidate(bits: $0, error: sensitivity * pow(2, -2 * $0)) })
        }
        for (configuration, bits) in bitChoices.enumerated() {
            let uniformError = layers.reduce(0) { $0 + $1.candidates[configuration].error }
            let plan = try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: bits)
            XCTAssertLessThanOrEqual(plan.predictedError, uniformError * (1 + 1e-12), "uniform \(bits)")
            XCTAssertLessThanOrEqual(plan.achievedBitsPerWeight, bits)
        }
        let mixed = try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: 3.75)
        print("30 layers at 3.75 bits/weight: error \(mixed.predictedError) vs uniform 3.25: \(layers.reduce(0) { $0 + $1.candidates[1].error })")
    }

    /// A SmolLM2-sized instance (210 layers × 12 candidates) finishes and is no worse than the
    /// Lagrangian bound allows: its error is at least every Lagrangian lower bound.
    func testLargeInstanceIsSolved() throws {
        var random = Random(state: 99)
        let layers = (0..<210).map { index -> MixedPrecisionLayer in
            let sensitivity = 0.01 + random.unit()
            let candidates = (0..<12).map { c -> MixedPrecisionCandidate in
                let bits = 2 + Double(c) * 0.5 + Double(random.next(8)) / 64
                return Self.candidate(bits: bits, error: sensitivity * pow(2, -2 * bits) * (0.8 + 0.4 * random.unit()))
            }
            return MixedPrecisionLayer(name: "l\(index)", parameterCount: [331_776, 110_592, 884_736][index % 3], candidates: candidates)
        }
        let plan = try MixedPrecisionPlanner.plan(layers: layers, budgetBitsPerWeight: 4.0)
        XCTAssertLessThanOrEqual(plan.achievedBitsPerWeight, 4.0)
        XCTAssertGreaterThan(plan.achievedBitsPerWeight, 3.99, "an optimal plan spends nearly all of the budget")
        // Lagrangian lower bound: for any λ ≥ 0, Σ min_c (error + λ·bits) − λ·budget ≤ optimum.
        let totalParameters = Double(layers.reduce(0) { $0 + $1.parameterCount })
        for lambda in [1e-8, 1e-7, 1e-6, 1e-5] {
            let lower = layers.reduce(0.0) { sum, layer in
                sum + layer.candidates.map { $0.error + lambda * $0.bitsPerWeight * Double(layer.parameterCount) }.min()!
            } - lambda * 4.0 * totalParameters
            XCTAssertLessThanOrEqual(lower, plan.predictedError * (1 + 1e-12), "λ \(lambda)")
        }
    }
}
