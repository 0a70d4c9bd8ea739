import Adapters
import Checkpoints
import Tensors
import XCTest

/// The ΔW-level TIES / DARE rules against PEFT 0.21.2's own `peft.utils.merge_utils` on fixed
/// [16, 24] float32 task tensors, with PEFT's DARE masks injected (Tests/Generators/
/// peft_merge_goldens.py, README-peft-merge.md). PEFT computes in float32, we in Float64: 1e-6.
final class PEFTMergeParityTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/peft/merge.safetensors").path

    static func matrix(_ file: SafetensorsFile, _ name: String) throws -> Matrix<Double> {
        let m = try file.requireTensor(named: name).float32Matrix()
        return Matrix(rowCount: m.rowCount, columnCount: m.columnCount, values: m.values.map(Double.init))
    }

    static func decode<T: Decodable>(_ file: SafetensorsFile, _ key: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(try XCTUnwrap(file.metadata[key], key).utf8))
    }

    func assertClose(_ actual: Matrix<Double>, _ expected: Matrix<Double>, _ label: String) {
        XCTAssertEqual(actual.shape, expected.shape, label)
        XCTAssertLessThanOrEqual(actual.maxAbsDifference(expected), 1e-6, label)
    }

    func testEveryCaseMatchesPEFT() throws {
        let file = try SafetensorsFile(path: Self.fixture)
        let inputs = try (0..<3).map { try Self.matrix(file, "inputs.\($0)") }
        let cases: [String] = try Self.decode(file, "cases")
        XCTAssertEqual(cases.count, 10)
        for name in cases {
            let function = try XCTUnwrap(file.metadata[name + ".method"])
            let sources: [Int] = try Self.decode(file, name + ".sources")
            let deltas = sources.map { inputs[$0] }
            let weights = try Self.matrix(file, name + ".weights").values
            let density = Double(file.metadata[name + ".density"] ?? "")
            let sign = file.metadata[name + ".majority_sign"].flatMap { $0.isEmpty ? nil : $0 } ?? "total"
            let calls = Int(try XCTUnwrap(file.metadata[name + ".bernoulli_calls"]))!
            let masks: [[Bool]]? = calls == 0 ? nil : try (0..<calls).map { t in try Self.matrix(file, "\(name).mask\(t)").values.map { $0 != 0 } }
            let expected = try Self.matrix(file, name + ".output")
            let actual: Matrix<Double>
            switch function {
            case "magnitude_prune":
                actual = TaskArithmetic.weightedSum(deltas.map { TaskArithmetic.magnitudePruned($0, density: density!) }, weights: weights)
            case "task_arithmetic":
                actual = try AdapterCombination.combineDeltas(deltas, weights: weights, method: .linear, density: nil)
            default:
                let method = try XCTUnwrap(AdapterCombinationMethod(rawValue: function), function)
                actual = try AdapterCombination.combineDeltas(deltas, weights: weights, method: method, density: density,
                                                              majoritySign: sign, masks: masks)
            }
            assertClose(actual, expected, name)
            if let masks {
                // PEFT's Bernoulli draws kept about `density` of the entries.
                let kept = Double(masks.joined().filter { $0 }.count) / Double(masks.joined().count)
                XCTAssertEqual(kept, density!, accuracy: 0.08, name)
            }
        }
    }

    func testMagnitudePruningMatchesPEFTPrune() throws {
        let file = try SafetensorsFile(path: Self.fixture)
        let densities: [Double] = try Self.decode(file, "prune_densities")
        for density in densities {
            for t in 0..<3 {
                let input = try Self.matrix(file, "inputs.\(t)")
                let expected = try Self.matrix(file, "prune_d\(density).\(t)")
                let pruned = TaskArithmetic.magnitudePruned(input, density: density)
                XCTAssertEqual(pruned, expected, "density \(density), tensor \(t)")   // exact: a selection, no arithmetic
                XCTAssertEqual(pruned.values.filter { $0 != 0 }.count, Int(density * 384))
            }
        }
    }

    /// Ties at the cut are kept lowest index first, and k = ⌊density · numel⌋ as Python's int().
    func testMagnitudePruningTieRuleAndCount() {
        let tensor = Matrix<Double>(rowCount: 2, columnCount: 5, values: [1, -3, 2, -2, 0.5, 2, -0.1, 3, 0, -2])
        XCTAssertEqual(TaskArithmetic.magnitudePruned(tensor, density: 0.2).values, [0, -3, 0, 0, 0, 0, 0, 3, 0, 0])
        XCTAssertEqual(TaskArithmetic.magnitudePruned(tensor, density: 0.3).values, [0, -3, 2, 0, 0, 0, 0, 3, 0, 0])
        XCTAssertEqual(TaskArithmetic.magnitudePruned(tensor, density: 0.45).values, [0, -3, 2, -2, 0, 0, 0, 3, 0, 0])
        XCTAssertEqual(TaskArithmetic.magnitudePruned(tensor, density: 0.05).values, [Double](repeating: 0, count: 10))
        XCTAssertEqual(TaskArithmetic.magnitudePruned(tensor, density: 1).values, tensor.values)
    }

    /// Zero sums elect +1; zeros never vote with the majority; the mean divides by the matches.
    func testSignElectionAndDisjointMean() {
        let a = Matrix<Double>(rowCount: 1, columnCount: 4, values: [1, -1, 0, 2])
        let b = Matrix<Double>(rowCount: 1, columnCount: 4, values: [-1, -2, 0, 3])
        let total = TaskArithmetic.disjointMerge([a, b], weights: [1, 2], majoritySign: .total)
        // Entry 0: Σ = 0 → +1, only a matches → 1·1 / 1. Entry 1: −, both → (−1 − 4)/2. Entry 2: 0.
        XCTAssertEqual(total.values, [1, -2.5, 0, 4])
        let frequency = TaskArithmetic.disjointMerge([a, b], weights: [1, 2], majoritySign: .frequency)
        XCTAssertEqual(frequency.values, [1, -2.5, 0, 4])
        // One large positive against two small negatives: "total" keeps +5, "frequency" the negatives.
        let (x, y, z) = (Matrix<Double>(rowCount: 1, columnCount: 1, values: [5]), Matrix<Double>(rowCount: 1, columnCount: 1, values: [-1]),
                         Matrix<Double>(rowCount: 1, columnCount: 1, values: [-1]))
        XCTAssertEqual(TaskArithmetic.disjointMerge([x, y, z], weights: [1, 2, 4], majoritySign: .total).values, [5])
        XCTAssertEqual(TaskArithmetic.disjointMerge([x, y, z], weights: [1, 2, 4], majoritySign: .frequency).values, [-3])
    }
}
