import XCTest
import Tensors
import Checkpoints
import JSON
import TestSupport
@testable import Models

/// A small random Llama built in code, as a LoadedCheckpoint (so the loader path is exercised).
enum TinyLlama {
    static func config(modelType: String = "llama", tied: Bool = true, ropeScaling: JSONValue? = nil,
                       layers: Int = 2, hidden: Int = 64, heads: Int = 4, kvHeads: Int = 2, intermediate: Int = 96,
                       vocabulary: Int = 50) -> ModelConfig {
        ModelConfig(architecture: ModelArchitecture(modelType: modelType), modelType: modelType, hiddenSize: hidden,
                    intermediateSize: intermediate, hiddenLayerCount: layers, attentionHeadCount: heads,
                    keyValueHeadCount: kvHeads, vocabularySize: vocabulary, maxPositionEmbeddings: 256,
                    normEpsilon: 1e-5, ropeTheta: 10000, ropeScaling: ropeScaling, tieWordEmbeddings: tied,
                    bosTokenID: 1)
    }

    static func checkpoint(_ config: ModelConfig, seed: UInt64 = 7) -> LoadedCheckpoint {
        var tensors: [Tensor] = []
        var next = seed
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            next &+= 1
            let m: Matrix<Float> = RandomMatrices.uniform(1, shape.reduce(1, *), seed: next)
            tensors.append(Tensor(name: name, shape: shape, float32: m.values.map { $0 * scale + offset }))
        }
        let (h, hd) = (config.hiddenSize, config.headDimension)
        let (nh, nkv, inter) = (config.attentionHeadCount, config.keyValueHeadCount, config.intermediateSize)
        add("model.embed_tokens.weight", [config.vocabularySize, h], scale: 1)
        for layer in 0..<config.hiddenLayerCount {
            let p = "model.layers.\(layer)."
            add(p + "input_layernorm.weight", [h], scale: 0.2, offset: 1)
            add(p + "self_attn.q_proj.weight", [nh * hd, h], scale: 0.3)
            add(p + "self_attn.k_proj.weight", [nkv * hd, h], scale: 0.3)
            add(p + "self_attn.v_proj.weight", [nkv * hd, h], scale: 0.3)
            if config.queryKeyValueBias {
                add(p + "self_attn.q_proj.bias", [nh * hd], scale: 0.1)
                add(p + "self_attn.k_proj.bias", [nkv * hd], scale: 0.1)
                add(p + "self_attn.v_proj.bias", [nkv * hd], scale: 0.1)
            }
            add(p + "self_attn.o_proj.weight", [h, nh * hd], scale: 0.1)
            add(p + "post_attention_layernorm.weight", [h], scale: 0.2, offset: 1)
            add(p + "mlp.gate_proj.weight", [inter, h], scale: 0.2)
            add(p + "mlp.up_proj.weight", [inter, h], scale: 0.2)
            add(p + "mlp.down_proj.weight", [h, inter], scale: 0.1)
        }
        add("model.norm.weight", [h], scale: 0.2, offset: 1)
        if !config.tieWordEmbeddings { add("lm_head.weight", [config.vocabularySize, h], scale: 0.5) }
        return LoadedCheckpoint(format: .safetensors, path: "tiny", sourceFiles: [], architecture: config.architecture.name,
                                tensors: tensors, config: config)
    }

    static func tokens(_ count: Int, vocabulary: Int = 50, seed: UInt64 = 3) -> [Int] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(vocabulary))
        }
    }
}

final class LlamaModelTests: XCTestCase {
    private func assertFastMatchesReference(_ config: ModelConfig, tokenCount: Int = 37,
                                            file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try LlamaModel(checkpoint: TinyLlama.checkpoint(config))
        let tokens = TinyLlama.tokens(tokenCount, vocabulary: config.vocabularySize)
        let fast = try model.logits(tokens: tokens)
        let reference = try model.referenceLogits(tokens: tokens)
        XCTAssertEqual(fast.shape, [tokenCount, config.vocabularySize], file: file, line: line)
        let difference = fast.maxAbsDifference(reference)
        let magnitude = reference.values.map { abs(Double($0)) }.max()!
        XCTAssertGreaterThan(magnitude, 0.5, "logits should not be trivially small", file: file, line: line)
        XCTAssertLessThanOrEqual(difference, 1e-4, "batched forward vs scalar reference", file: file, line: line)
    }

    func testBatchedForwardMatchesScalarReference() throws {
        try assertFastMatchesReference(TinyLlama.config())
    }

    func testUntiedHeadQKVBiasAndMultiHeadQueryGroups() throws {
        try assertFastMatchesReference(TinyLlama.config(modelType: "qwen2", tied: false, heads: 8, kvHeads: 2))
        try assertFastMatchesReference(TinyLlama.config(heads: 4, kvHeads: 4), tokenCount: 5)
    }

    func testAttentionInSeveralQueryBlocks() throws {
        let saved = AttentionScratch.queryBlockSize
        defer { AttentionScratch.queryBlockSize = saved }
        AttentionScratch.queryBlockSize = 8  // 37 positions: blocks of 8, 8, 8, 8, 5
        try assertFastMatchesReference(TinyLlama.config())
    }

    func testSinglePosition() throws {
        try assertFastMatchesReference(TinyLlama.config(), tokenCount: 1)
    }

    func testLlama3RopeScaling() throws {
        let scaling: JSONValue = .object(["rope_type": .string("llama3"), "factor": .number(8), "low_freq_factor": .number(1),
                                          "high_freq_factor": .number(4), "original_max_position_embeddings": .integer(32)])
        let config = TinyLlama.config(ropeScaling: scaling)
        try assertFastMatchesReference(config)
        let configuration = try LlamaConfiguration(config)
        XCTAssertEqual(configuration.ropeScaling, .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 32))
        // hd = 16, θ = 10⁴: inv_freq[0] = 1 (wavelength 2π < 32/4, kept); inv_freq[7] = 10^-3.5
        // (wavelength ≈ 19869 > 32/1, divided by 8); inv_freq[1] = 10^-0.5 (wavelength ≈ 19.87,
        // between: blended with smooth = (32/λ − 1)/(4 − 1)).
        let unscaled = try LlamaConfiguration(TinyLlama.config()).inverseFrequencies
        XCTAssertEqual(configuration.inverseFrequencies[0], unscaled[0])
        XCTAssertEqual(configuration.inverseFrequencies[7], unscaled[7] / 8, accuracy: 1e-15)
        let smooth = (32 / (2 * Double.pi / unscaled[1]) - 1) / 3
        XCTAssertEqual(configuration.inverseFrequencies[1], (1 - smooth) * unscaled[1] / 8 + smooth * unscaled[1], accuracy: 1e-15)
        let linear = try LlamaConfiguration(TinyLlama.config(ropeScaling: .object(["type": .string("linear"), "factor": .number(2)])))
        XCTAssertEqual(linear.inverseFrequencies[3], unscaled[3] / 2, accuracy: 1e-15)
    }

    func testRefusesOtherArchitecturesNamingModelType() {
        let config = ModelConfig(architecture: .unknown("gpt2"), modelType: "gpt2", hiddenSize: 64, intermediateSize: 96,
                                 hiddenLayerCount: 1, attentionHeadCount: 4, vocabularySize: 50,
                                 maxPositionEmbeddings: 64, normEpsilon: 1e-5)
        let checkpoint = LoadedCheckpoint(format: .safetensors, path: "x", sourceFiles: [], architecture: "gpt2",
                                          tensors: [], config: config)
        XCTAssertThrowsError(try LlamaModel(checkpoint: checkpoint)) { error in
            XCTAssertEqual(error as? LlamaModelError, .unsupportedArchitecture(modelType: "gpt2"))
            XCTAssertTrue("\(error)".contains("gpt2"))
        }
        let yarn = TinyLlama.config(ropeScaling: .object(["rope_type": .string("yarn"), "factor": .number(4)]))
        XCTAssertThrowsError(try LlamaModel(checkpoint: TinyLlama.checkpoint(yarn))) { error in
            XCTAssertTrue("\(error)".contains("yarn"))
        }
    }

    func testBadTokensAndMissingTensors() throws {
        let model = try LlamaModel(checkpoint: TinyLlama.checkpoint(TinyLlama.config()))
        XCTAssertThrowsError(try model.logits(tokens: [1, 50])) { error in
            XCTAssertEqual(error as? LlamaModelError, .tokenOutOfRange(position: 1, token: 50, vocabularySize: 50))
        }
        XCTAssertThrowsError(try model.logits(tokens: []))
        let full = TinyLlama.checkpoint(TinyLlama.config())
        let partial = LoadedCheckpoint(format: .safetensors, path: "p", sourceFiles: [], architecture: "llama",
                                       tensors: full.tensors.filter { $0.name != "model.layers.1.mlp.up_proj.weight" },
                                       config: full.config)
        XCTAssertThrowsError(try LlamaModel(checkpoint: partial)) { error in
            XCTAssertEqual(error as? LlamaModelError, .missingTensor(name: "model.layers.1.mlp.up_proj.weight"))
        }
    }

    func testFastExponentialIsAccurate() {
        var worst: Float = 0
        var x: Float = -86.9
        while x < 88 {
            let relative = abs(LlamaKernels.fastExp(x) - Foundation.exp(x)) / Foundation.exp(x)
            worst = max(worst, relative)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 5e-7)
        XCTAssertLessThan(LlamaKernels.fastExp(-200), 1e-37)
        XCTAssertEqual(LlamaKernels.fastExp(0), 1)
    }
}
