import Adapters
import Checkpoints
import Tensors
import TestSupport
import XCTest
@testable import Models

/// The unmerged adapter path of the forward pass against the merged weights it stands for.
final class LlamaAdapterTests: XCTestCase {
    static func adapter(for checkpoint: LoadedCheckpoint, dora: Bool, seed: UInt64) -> LoRAAdapter {
        let modules = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        var next = seed
        let layers = (0..<2).flatMap { index in
            modules.map { module -> LoRALayer in
                let name = "model.layers.\(index).\(module)"
                let shape = checkpoint.tensor(named: name + ".weight")!.shape
                next &+= 3
                let a: Matrix<Float> = RandomMatrices.uniform(4, shape[1], seed: next)
                let b: Matrix<Float> = RandomMatrices.uniform(shape[0], 4, seed: next + 1)
                let magnitude: [Float]? = dora ? (RandomMatrices.uniform(1, shape[0], seed: next + 2) as Matrix<Float>).values.map { 1 + abs($0) } : nil
                return LoRALayer(module: name, alpha: module.hasSuffix("v_proj") ? 16 : 8, loraA: a,
                                 loraB: Matrix(rowCount: b.rowCount, columnCount: 4, values: b.values.map { $0 * 0.1 }), magnitude: magnitude)
            }
        }
        return LoRAAdapter(layers: layers, rank: 4, alpha: 8, useRSLoRA: true, useDoRA: dora)
    }

    static func merged(_ checkpoint: LoadedCheckpoint, _ adapter: LoRAAdapter) throws -> LoadedCheckpoint {
        let tensors = try checkpoint.tensors.map { tensor -> Tensor in
            guard let layer = adapter.layers.first(where: { $0.weightName == tensor.name }) else { return tensor }
            let merged = adapter.adaptedWeight(base: try tensor.float32Matrix(), layer: layer)
            return Tensor(name: tensor.name, shape: tensor.shape, float32: merged.values)
        }
        return LoadedCheckpoint(format: checkpoint.format, path: checkpoint.path, sourceFiles: [], architecture: checkpoint.architecture,
                                tensors: tensors, config: checkpoint.config)
    }

    func testUnmergedAdapterEqualsMergedWeights() throws {
        for (bias, dora) in [(false, false), (true, false), (false, true), (true, true)] {
            let config = TinyLlama.config(modelType: bias ? "qwen2" : "llama")
            let checkpoint = TinyLlama.checkpoint(config)
            let adapter = Self.adapter(for: checkpoint, dora: dora, seed: 11)
            let unmerged = try LlamaModel(checkpoint: checkpoint).applying(adapter)
            let reference = try LlamaModel(checkpoint: Self.merged(checkpoint, adapter))
            let tokens = TinyLlama.tokens(40)
            let difference = try unmerged.logits(tokens: tokens).maxAbsDifference(reference.logits(tokens: tokens))
            XCTAssertLessThan(difference, 2e-4, "bias \(bias), DoRA \(dora)")
            let plain = try LlamaModel(checkpoint: checkpoint).logits(tokens: tokens)
            XCTAssertGreaterThan(try unmerged.logits(tokens: tokens).maxAbsDifference(plain), 1e-3, "the adapter does something")
        }
    }

    func testZeroBIsBitIdentical() throws {
        let checkpoint = TinyLlama.checkpoint(TinyLlama.config())
        var adapter = Self.adapter(for: checkpoint, dora: false, seed: 5)
        for index in adapter.layers.indices {
            adapter.layers[index].loraB = Matrix(zeros: adapter.layers[index].loraB.rowCount, adapter.layers[index].rank)
        }
        let model = try LlamaModel(checkpoint: checkpoint)
        let tokens = TinyLlama.tokens(33)
        XCTAssertEqual(try model.applying(adapter).logits(tokens: tokens), try model.logits(tokens: tokens))
    }

    func testAdapterForAnotherShapeIsRefusedNamingTheModule() throws {
        let checkpoint = TinyLlama.checkpoint(TinyLlama.config())
        let wrong = LoRAAdapter(layers: [LoRALayer(module: "model.layers.0.self_attn.q_proj", alpha: 8, loraA: Matrix(zeros: 4, 32),
                                                   loraB: Matrix(zeros: 64, 4))], rank: 4, alpha: 8)
        XCTAssertThrowsError(try LlamaModel(checkpoint: checkpoint).applying(wrong)) { error in
            guard case let .mismatch(module, _)? = error as? LlamaAdapterError else { return XCTFail("\(error)") }
            XCTAssertEqual(module, "model.layers.0.self_attn.q_proj")
        }
    }
}

/// llama.cpp's `rope_freqs.weight` (kept from a GGUF under its own name) scales RoPE as config-side
/// scaling does: factors of 2 everywhere are linear scaling by 2.
final class LlamaRopeFrequencyFactorTests: XCTestCase {
    func testRopeFreqsTensorActsAsFrequencyFactors() throws {
        let plain = TinyLlama.checkpoint(TinyLlama.config())
        let halfHead = TinyLlama.config().headDimension / 2
        let withFactors = LoadedCheckpoint(format: .gguf, path: "tiny", sourceFiles: [], architecture: "llama",
                                           tensors: plain.tensors + [Tensor(name: "rope_freqs.weight", shape: [halfHead],
                                                                            float32: [Float](repeating: 2, count: halfHead))],
                                           config: plain.config)
        let linear = TinyLlama.checkpoint(TinyLlama.config(ropeScaling: .object(["type": .string("linear"), "factor": .number(2)])))
        let tokens = TinyLlama.tokens(30)
        let factored = try LlamaModel(checkpoint: withFactors)
        XCTAssertEqual(factored.inverseFrequencies, try LlamaModel(checkpoint: linear).inverseFrequencies)
        XCTAssertLessThan(try factored.logits(tokens: tokens).maxAbsDifference(try LlamaModel(checkpoint: linear).logits(tokens: tokens)), 1e-6)
        XCTAssertGreaterThan(try factored.logits(tokens: tokens).maxAbsDifference(try LlamaModel(checkpoint: plain).logits(tokens: tokens)), 1e-4)
    }
}
