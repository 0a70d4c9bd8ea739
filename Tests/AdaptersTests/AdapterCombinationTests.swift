import Adapters
import Checkpoints
import LinearAlgebra
import Tensors
import XCTest

/// `AdapterCombination.combine`: exactness of linear/cat/svd, each source's own scale, the result's
/// scale-1 config, DARE masks, and the rejected inputs.
final class AdapterCombinationTests: XCTestCase {
    static func gaussian(_ rows: Int, _ columns: Int, _ generator: inout SeededRandomGenerator, scale: Double = 1) -> Matrix<Float> {
        Matrix(rowCount: rows, columnCount: columns, values: (0..<(rows * columns)).map { _ in Float(generator.nextGaussian() * scale) })
    }

    static func layer(_ module: String, out: Int, inputs: Int, rank: Int, alpha: Double, pooling: Int? = nil,
                      _ generator: inout SeededRandomGenerator) -> LoRALayer {
        LoRALayer(module: module, alpha: alpha, loraA: gaussian(rank, inputs / (pooling ?? 1), &generator, scale: 0.3),
                  loraB: gaussian(out, rank, &generator, scale: 0.3), poolingGroupSize: pooling)
    }

    /// Source 1: rsLoRA, rank 4 (q, v with alpha 16 as a pattern would give), rank 2 on `down`.
    /// Source 2: plain LoRA rank 3 with alpha 6 (scale 2) on q and k, and a QA-LoRA `v` (groups of 8).
    static func sources(seed: UInt64 = 1) -> (LoRAAdapter, LoRAAdapter) {
        var g = SeededRandomGenerator(seed: seed)
        let first = LoRAAdapter(layers: [layer("l0.q", out: 24, inputs: 32, rank: 4, alpha: 8, &g),
                                         layer("l0.v", out: 16, inputs: 32, rank: 4, alpha: 16, &g),
                                         layer("l0.down", out: 32, inputs: 40, rank: 2, alpha: 8, &g)],
                                rank: 4, alpha: 8, useRSLoRA: true, rankPattern: ["down": 2], alphaPattern: ["v": 16])
        let second = LoRAAdapter(layers: [layer("l0.q", out: 24, inputs: 32, rank: 3, alpha: 6, &g),
                                          layer("l0.k", out: 16, inputs: 32, rank: 3, alpha: 6, &g),
                                          layer("l0.v", out: 16, inputs: 32, rank: 2, alpha: 4, pooling: 8, &g)],
                                 rank: 3, alpha: 6)
        return (first, second)
    }

    /// `Σ_t w_t ΔW_t` from each adapter's own `deltaWeight(of:)` (Float32, per PEFT semantics).
    static func expected(_ module: String, _ sources: [WeightedAdapter]) -> Matrix<Double> {
        var sum: Matrix<Double>?
        for source in sources {
            guard let layer = source.adapter.layer(module: module) else { continue }
            let delta = source.adapter.deltaWeight(of: layer)
            if sum == nil { sum = Matrix(zeros: delta.rowCount, delta.columnCount) }
            for i in delta.values.indices { sum!.values[i] += source.weight * Double(delta.values[i]) }
        }
        return sum!
    }

    static func relativeError(_ actual: Matrix<Float>, _ expected: Matrix<Double>) -> Double {
        var (error, norm) = (0.0, 0.0)
        for i in expected.values.indices {
            error += pow(Double(actual.values[i]) - expected.values[i], 2)
            norm += expected.values[i] * expected.values[i]
        }
        return (error / norm).squareRoot()
    }

    func testLinearWithOppositeWeightsIsExactlyTheDifference() throws {
        let (first, second) = Self.sources()
        let sources = [WeightedAdapter(adapter: first, weight: 1), WeightedAdapter(adapter: second, weight: -1)]
        for method in [AdapterCombinationMethod.linear, .cat] {
            let (adapter, reports) = try AdapterCombination.combine(sources, method: method)
            XCTAssertEqual(adapter.layers.map(\.module), ["l0.q", "l0.v", "l0.down", "l0.k"])
            XCTAssertEqual(reports.map(\.rank), [7, 6, 2, 3])
            XCTAssertTrue(reports.allSatisfy { $0.truncationError == nil && $0.density == nil })
            XCTAssertEqual(adapter.rank, 7)
            XCTAssertEqual(adapter.alpha, 7)
            XCTAssertFalse(adapter.useRSLoRA)
            XCTAssertEqual(adapter.rankPattern, ["l0.v": 6, "l0.down": 2, "l0.k": 3])
            XCTAssertEqual(adapter.alphaPattern, ["l0.v": 6, "l0.down": 2, "l0.k": 3])
            XCTAssertEqual(adapter.targetModules, ["down", "k", "q", "v"])
            for layer in adapter.layers {
                XCTAssertEqual(adapter.scale(of: layer), 1)
                let expected = Self.expected(layer.module, sources)
                XCTAssertLessThan(Self.relativeError(adapter.deltaWeight(of: layer), expected), 1e-6, "\(method) \(layer.module)")
                let scale = expected.values.map(abs).max()!
                XCTAssertLessThan(adapter.deltaWeight(of: layer).maxAbsDifference(LowRankProduct.narrowed(expected)), 1e-6 * scale)
            }
        }
    }

    /// The sources' own scales as PEFT computes them: the rsLoRA adapter of the tiny-llama fixture
    /// (rank and alpha patterns) against PEFT's `get_delta_weight`.
    func testSourceScalesFollowPEFTOnTheRSLoRAFixture() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/peft/tiny-llama")
        let file = try SafetensorsFile(path: directory.appendingPathComponent("adapter-lora/adapter_model.safetensors").path)
        let deltas = try SafetensorsFile(path: directory.appendingPathComponent("deltas.safetensors").path)
        let modules = ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.mlp.down_proj"]
        let layers = try modules.map { module in
            let prefix = "base_model.model." + module
            let alpha: Double = module.hasSuffix("v_proj") ? 16 : 8
            return LoRALayer(module: module, alpha: alpha, loraA: try file.requireTensor(named: prefix + ".lora_A.weight").float32Matrix(),
                             loraB: try file.requireTensor(named: prefix + ".lora_B.weight").float32Matrix())
        }
        let adapter = LoRAAdapter(layers: layers, rank: 4, alpha: 8, useRSLoRA: true)
        let (combined, _) = try AdapterCombination.combine([WeightedAdapter(adapter: adapter, weight: 0.5)], method: .svd)
        for layer in combined.layers {
            let peft = try deltas.requireTensor(named: "lora/" + layer.module).float32Matrix()
            let expected = Matrix(rowCount: peft.rowCount, columnCount: peft.columnCount, values: peft.values.map { 0.5 * Double($0) })
            XCTAssertLessThan(Self.relativeError(combined.deltaWeight(of: layer), expected), 1e-6, layer.module)
        }
    }

    func testSVDAtTheSummedRankIsExactAndBelowItReportsTheTail() throws {
        let (first, second) = Self.sources(seed: 2)
        let sources = [WeightedAdapter(adapter: first, weight: 0.7), WeightedAdapter(adapter: second, weight: 1.3)]
        let (exact, exactReports) = try AdapterCombination.combine(sources, method: .svd, rank: 7)
        for (layer, report) in zip(exact.layers, exactReports) {
            XCTAssertEqual(exact.scale(of: layer), 1)
            XCTAssertLessThan(try XCTUnwrap(report.truncationError), 1e-6, layer.module)
            XCTAssertLessThan(Self.relativeError(exact.deltaWeight(of: layer), Self.expected(layer.module, sources)), 1e-6)
        }
        // Default rank: the largest source rank of the module (q: max(4, 3) = 4).
        for mode in [SVDChoice.Mode.exact, .randomized] {
            let (truncated, reports) = try AdapterCombination.combine(sources, method: .svd, svd: mode)
            let q = try XCTUnwrap(reports.first { $0.module == "l0.q" })
            XCTAssertEqual(q.rank, 4)
            let target = Self.expected("l0.q", sources)
            let spectrum = try LinearAlgebra.svd(target).singularValues
            let tail = (spectrum.dropFirst(4).reduce(0) { $0 + $1 * $1 } / spectrum.reduce(0) { $0 + $1 * $1 }).squareRoot()
            XCTAssertEqual(try XCTUnwrap(q.truncationError), tail, accuracy: mode == .exact ? 1e-5 * tail : 0.01 * tail)
            let layer = try XCTUnwrap(truncated.layer(module: "l0.q"))
            XCTAssertEqual(Self.relativeError(truncated.deltaWeight(of: layer), target), q.truncationError!, accuracy: 1e-6)
        }
    }

    /// With every entry kept, DARE only rescales by 1/density: Σ w_t ΔW_t / d (exact at rank 7).
    func testDARERescalesKeptEntriesAndUsesInjectedMasks() throws {
        let (first, second) = Self.sources(seed: 3)
        let sources = [WeightedAdapter(adapter: first, weight: 1), WeightedAdapter(adapter: second, weight: 0.5)]
        var calls: [String] = []
        let (adapter, reports) = try AdapterCombination.combine(sources, method: .dareLinear, rank: 7, density: 0.5,
                                                                dropMask: { module, index, rows, columns in
            calls.append("\(module)#\(index)")
            return [Bool](repeating: true, count: rows * columns)
        })
        XCTAssertEqual(calls, ["l0.q#0", "l0.q#1", "l0.v#0", "l0.v#1", "l0.down#0", "l0.k#1"])
        XCTAssertTrue(reports.allSatisfy { $0.density == 0.5 })
        for layer in adapter.layers {
            var expected = Self.expected(layer.module, sources)
            for i in expected.values.indices { expected.values[i] /= 0.5 }
            XCTAssertLessThan(Self.relativeError(adapter.deltaWeight(of: layer), expected), 1e-6, layer.module)
        }
        // Seeded masks: the same seed repeats bit for bit, another seed differs.
        let a = try AdapterCombination.combine(sources, method: .dareTies, density: 0.3, seed: 9).adapter
        let b = try AdapterCombination.combine(sources, method: .dareTies, density: 0.3, seed: 9).adapter
        let c = try AdapterCombination.combine(sources, method: .dareTies, density: 0.3, seed: 10).adapter
        XCTAssertEqual(a.layers, b.layers)
        XCTAssertNotEqual(a.layers, c.layers)
    }

    func testInvalidInputsAreRejectedWithTheirParameter() throws {
        let (first, second) = Self.sources()
        let sources = [WeightedAdapter(adapter: first, weight: 1), WeightedAdapter(adapter: second, weight: 1)]
        for method in [AdapterCombinationMethod.ties, .dareLinear, .dareTies] {
            for density in [0, 1.5, -0.2, Double.nan] {
                XCTAssertThrowsError(try AdapterCombination.combine(sources, method: method, density: density)) {
                    XCTAssertEqual(($0 as? AdapterError)?.parameter, "density")
                }
            }
            XCTAssertThrowsError(try AdapterCombination.combine(sources, method: method)) { XCTAssertEqual(($0 as? AdapterError)?.parameter, "density") }
            XCTAssertNoThrow(try AdapterCombination.combine(sources, method: method, density: 1))
        }
        XCTAssertThrowsError(try AdapterCombination.combine(sources, method: .ties, density: 0.5, majoritySign: "mean")) {
            XCTAssertEqual(($0 as? AdapterError)?.parameter, "majoritySign")
        }
        XCTAssertThrowsError(try AdapterCombination.combine(sources, method: .svd, rank: 0)) { XCTAssertEqual(($0 as? AdapterError)?.parameter, "rank") }
        XCTAssertThrowsError(try AdapterCombination.combine([], method: .cat)) { XCTAssertEqual(($0 as? AdapterError)?.parameter, "adapters") }
        // Same module, different shapes.
        var g = SeededRandomGenerator(seed: 5)
        let wide = LoRAAdapter(layers: [Self.layer("l0.q", out: 24, inputs: 48, rank: 2, alpha: 2, &g)], rank: 2, alpha: 2)
        XCTAssertThrowsError(try AdapterCombination.combine(sources + [WeightedAdapter(adapter: wide, weight: 1)], method: .linear)) { error in
            guard case let .invalidParameter(parameter, reason)? = error as? AdapterError else { return XCTFail("\(error)") }
            XCTAssertEqual(parameter, "adapters")
            XCTAssertTrue(reason.contains("l0.q"), reason)
        }
        // DoRA sources.
        var dora = first
        dora.useDoRA = true
        dora.layers[0].magnitude = [Float](repeating: 1, count: 24)
        XCTAssertThrowsError(try AdapterCombination.combine([WeightedAdapter(adapter: dora, weight: 1)], method: .svd)) {
            XCTAssertEqual($0 as? AdapterError, .invalidParameter("adapters", "DoRA magnitudes have no defined combination"))
        }
    }
}
