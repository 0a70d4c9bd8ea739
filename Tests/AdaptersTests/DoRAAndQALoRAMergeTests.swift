import Adapters
import Checkpoints
import LinearAlgebra
import Quantization
import Tensors
import XCTest

/// DoRA merge/unmerge (PEFT `merge_safe`/`unmerge`) and QA-LoRA's exact zero-point fold.
final class DoRAAndQALoRAMergeTests: XCTestCase {
    static func gaussian(_ rows: Int, _ columns: Int, seed: UInt64, scale: Double = 1) -> Matrix<Float> {
        var g = SeededRandomGenerator(seed: seed)
        return Matrix(rowCount: rows, columnCount: columns, values: (0..<(rows * columns)).map { _ in Float(g.nextGaussian() * scale) })
    }

    static func maxAbs(_ m: Matrix<Float>) -> Double { Double(m.values.map(abs).max() ?? 0) }

    // MARK: DoRA

    func testDoRAMergeThenUnmergeRecoversTheWeight() throws {
        let weight = Self.gaussian(24, 40, seed: 1, scale: 0.05)
        var layer = LoRALayer(module: "q", alpha: 8, loraA: Self.gaussian(4, 40, seed: 2, scale: 0.2), loraB: Self.gaussian(24, 4, seed: 3, scale: 0.2))
        let adapter = LoRAAdapter(layers: [layer], rank: 4, alpha: 8, useRSLoRA: true, useDoRA: true)
        let scale = adapter.scale(of: layer)                       // 8/√4 = 4
        var adapted = weight
        let delta = adapter.deltaWeight(of: layer)
        for i in adapted.values.indices { adapted.values[i] += delta.values[i] }
        let norms = RowNorms.of(adapted)
        var noise = SeededRandomGenerator(seed: 4)
        layer.magnitude = norms.map { Float($0 * (1 + 0.2 * noise.nextGaussian())) }

        let (merged, cached) = DoRAMerge.merge(base: weight, layer: layer, scale: scale)
        for row in 0..<24 { XCTAssertEqual(cached[row], norms[row], accuracy: 1e-6 * norms[row]) }
        // The merged weight is what the layer computes unmerged, and its row norms are m.
        XCTAssertLessThan(merged.maxAbsDifference(adapter.adaptedWeight(base: weight, layer: layer)), 1e-6 * Self.maxAbs(merged))
        for (row, norm) in RowNorms.of(merged).enumerated() { XCTAssertEqual(norm, Double(layer.magnitude![row]), accuracy: 1e-5 * norm) }
        let recovered = DoRAMerge.unmerge(merged: merged, layer: layer, scale: scale, cachedNorms: cached)
        XCTAssertLessThan(recovered.maxAbsDifference(weight), 1e-6 * Self.maxAbs(weight))
        // Recomputing the norms from the merged weight (they are m) does not recover W.
        let wrong = DoRAMerge.unmerge(merged: merged, layer: layer, scale: scale, cachedNorms: RowNorms.of(merged))
        XCTAssertGreaterThan(wrong.maxAbsDifference(weight), 1e-3 * Self.maxAbs(weight))
    }

    /// Against PEFT's `merge_and_unload()` of the tiny-llama DoRA adapter (README-peft.md).
    func testDoRAMergeMatchesPEFT() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/peft/tiny-llama")
        let base = try SafetensorsFile(path: directory.appendingPathComponent("base/model.safetensors").path)
        let adapter = try SafetensorsFile(path: directory.appendingPathComponent("adapter-dora/adapter_model.safetensors").path)
        let deltas = try SafetensorsFile(path: directory.appendingPathComponent("deltas.safetensors").path)
        for module in ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"] {
            let prefix = "base_model.model." + module
            let layer = LoRALayer(module: module, alpha: 4, loraA: try adapter.requireTensor(named: prefix + ".lora_A.weight").float32Matrix(),
                                  loraB: try adapter.requireTensor(named: prefix + ".lora_B.weight").float32Matrix(),
                                  magnitude: try adapter.requireTensor(named: prefix + ".lora_magnitude_vector").float32Matrix().values)
            let weight = try base.requireTensor(named: module + ".weight").float32Matrix()
            let expected = try deltas.requireTensor(named: "dora/" + module).float32Matrix()
            let (merged, cached) = DoRAMerge.merge(base: weight, layer: layer, scale: 1)
            XCTAssertLessThan(merged.maxAbsDifference(expected), 1e-6 * Self.maxAbs(expected), module)
            XCTAssertLessThan(DoRAMerge.unmerge(merged: expected, layer: layer, scale: 1, cachedNorms: cached).maxAbsDifference(weight),
                              1e-6 * Self.maxAbs(weight), module)
        }
    }

    // MARK: QA-LoRA

    static func grid(_ weight: Matrix<Float>, symmetric: Bool) throws -> GroupedGridWeight {
        let spec = QuantizationSpec(method: .int, bits: 4, groupSize: 32, symmetric: symmetric)
        return try XCTUnwrap(try Quantizer.quantize(weight, name: "w", spec: spec) as? GroupedGridWeight)
    }

    /// `fold(Q)` against `dequant(Q) + ΔW`: the only difference is the FP16 rounding of each new zero,
    /// `σ · |z' − fp16(z')| ≤ σ · ulp16(z')/2`, plus Float32 rounding.
    func assertFoldIsExact(_ q: GroupedGridWeight, layer: LoRALayer, adapter: LoRAAdapter, _ label: String) throws {
        let folded = try QALoRAMerge.fold(q, layer: layer, scale: adapter.scale(of: layer))
        XCTAssertEqual(folded.codes, q.codes, label)
        XCTAssertEqual(folded.scales, q.scales, label)
        guard case let .float16(zeros) = folded.zeroPoints else { return XCTFail("\(label): zeros are not float16") }
        let expected = q.dequantized(), delta = adapter.deltaWeight(of: layer), actual = folded.dequantized()
        let slack = 1e-6 * Self.maxAbs(expected)
        var worst = 0.0
        for row in 0..<q.rowCount {
            for column in 0..<q.columnCount {
                let g = row * q.groupCount + column / q.groupSize
                let bound = Double(q.scales[g]) * Double(Float16(zeros[g]).ulp) / 2 + slack
                let difference = abs(Double(actual[row, column]) - Double(expected[row, column]) - Double(delta[row, column]))
                worst = max(worst, difference / bound)
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, label)
        var unmerged = expected
        for i in unmerged.values.indices { unmerged.values[i] += delta.values[i] }
        XCTAssertLessThanOrEqual(actual.maxAbsDifference(unmerged), 1e-3 * Self.maxAbs(expected), label)   // measured ≤ 4.7e-4
        XCTAssertEqual(folded.dequantizedReference(), actual, label)
    }

    func testQALoRAFoldsExactlyIntoTheZeroPoints() throws {
        let weight = Self.gaussian(48, 128, seed: 7, scale: 0.04)
        for symmetric in [false, true] {
            let q = try Self.grid(weight, symmetric: symmetric)
            let input = LayerInitInput(module: "w", weight: weight, quantized: q, calibration: nil, rank: 4, alpha: 16)
            let initialized = try AdapterInitializer.initialize(input, options: AdapterInitOptions(method: .qaLoRA))
            let layer = initialized.layer
            XCTAssertEqual(layer.poolingGroupSize, 32)
            let adapter = LoRAAdapter(layers: [layer], rank: 4, alpha: 16)
            try assertFoldIsExact(q, layer: layer, adapter: adapter, "init symmetric=\(symmetric)")
            // The folded INT4 weight keeps what the adapter bought.
            let folded = try QALoRAMerge.fold(q, layer: layer, scale: adapter.scale(of: layer)).dequantized()
            let after = LayerErrors.ratio(LayerErrors.squaredNorm(LayerErrors.residual(original: weight, approximation: folded)),
                                          LayerErrors.squaredNorm(weight))
            XCTAssertEqual(after, initialized.weightErrorAfter, accuracy: 1e-3 * initialized.weightErrorBefore)
            XCTAssertLessThan(after, initialized.weightErrorBefore)
            // A large random adapter (zeros move far off the integer grid), rsLoRA scale.
            let big = LoRALayer(module: "w", alpha: 6, loraA: Self.gaussian(3, 4, seed: 8), loraB: Self.gaussian(48, 3, seed: 9, scale: 0.05),
                                poolingGroupSize: 32)
            try assertFoldIsExact(q, layer: big, adapter: LoRAAdapter(layers: [big], rank: 3, alpha: 6, useRSLoRA: true), "random symmetric=\(symmetric)")
        }
    }

    func testQALoRAFoldRejectsMismatchedLayers() throws {
        let weight = Self.gaussian(16, 64, seed: 10, scale: 0.04)
        let q = try Self.grid(weight, symmetric: false)
        let wrongGroup = LoRALayer(module: "w", alpha: 2, loraA: Self.gaussian(2, 4, seed: 11), loraB: Self.gaussian(16, 2, seed: 12), poolingGroupSize: 16)
        XCTAssertThrowsError(try QALoRAMerge.fold(q, layer: wrongGroup, scale: 1)) { XCTAssertEqual(($0 as? AdapterError)?.parameter, "adapter") }
        let plain = LoRALayer(module: "w", alpha: 2, loraA: Self.gaussian(2, 64, seed: 13), loraB: Self.gaussian(16, 2, seed: 14))
        XCTAssertThrowsError(try QALoRAMerge.fold(q, layer: plain, scale: 1)) { XCTAssertEqual(($0 as? AdapterError)?.parameter, "adapter") }
        let nf = try XCTUnwrap(try Quantizer.quantize(weight, name: "w", spec: QuantizationSpec(method: .nf, bits: 4, groupSize: 32)) as? GroupedGridWeight)
        let pooled = LoRALayer(module: "w", alpha: 2, loraA: Self.gaussian(2, 2, seed: 15), loraB: Self.gaussian(16, 2, seed: 16), poolingGroupSize: 32)
        XCTAssertThrowsError(try QALoRAMerge.fold(nf, layer: pooled, scale: 1)) { XCTAssertEqual(($0 as? AdapterError)?.parameter, "model") }
    }
}
