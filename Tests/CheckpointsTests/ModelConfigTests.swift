import Foundation
import XCTest
@testable import Checkpoints
import JSON

final class ModelConfigTests: XCTestCase {
    private let path = "/models/x/config.json"

    private func parse(_ text: String) throws -> ModelConfig {
        try ModelConfig.parse(try JSON.parse(text), path: path)
    }

    /// SmolLM2-135M's config.json (formats.md §6.1).
    private let smolLM2 = """
        {"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":0,
         "eos_token_id":0,"hidden_act":"silu","hidden_size":576,"initializer_range":0.041666666666666664,
         "intermediate_size":1536,"is_llama_config":true,"max_position_embeddings":8192,"mlp_bias":false,
         "model_type":"llama","num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,
         "pretraining_tp":1,"rms_norm_eps":1e-05,"rope_interleaved":false,"rope_scaling":null,
         "rope_theta":100000,"tie_word_embeddings":true,"torch_dtype":"bfloat16","use_cache":true,"vocab_size":49152}
        """

    func testLlamaConfig() throws {
        let config = try parse(smolLM2)
        XCTAssertEqual(config.architecture, .llama)
        XCTAssertEqual(config.architecture.name, "llama")
        XCTAssertEqual(config.modelType, "llama")
        XCTAssertEqual(config.hiddenSize, 576)
        XCTAssertEqual(config.intermediateSize, 1536)
        XCTAssertEqual(config.hiddenLayerCount, 30)
        XCTAssertEqual(config.attentionHeadCount, 9)
        XCTAssertEqual(config.keyValueHeadCount, 3)
        XCTAssertEqual(config.headDimension, 64)
        XCTAssertEqual(config.vocabularySize, 49152)
        XCTAssertEqual(config.maxPositionEmbeddings, 8192)
        XCTAssertEqual(config.normEpsilon, 1e-5)
        XCTAssertEqual(config.ropeTheta, 100000)
        XCTAssertNil(config.ropeScaling)
        XCTAssertTrue(config.tieWordEmbeddings)
        XCTAssertFalse(config.attentionBias)
        XCTAssertFalse(config.queryKeyValueBias)
        XCTAssertEqual(config.hiddenActivation, "silu")
        XCTAssertEqual(config.bosTokenID, 0)
        XCTAssertEqual(config.eosTokenIDs, [0])
        XCTAssertNil(config.typeVocabularySize)
        // Written back as it was read, unknown keys included.
        XCTAssertEqual(config.jsonObject(), try JSON.parse(smolLM2))
    }

    func testLlamaDefaultsAndVariants() throws {
        let minimal = try parse(#"{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"eos_token_id":[1,2],"head_dim":null}"#)
        XCTAssertEqual(minimal.architecture, .llama)
        XCTAssertEqual(minimal.keyValueHeadCount, 4)
        XCTAssertEqual(minimal.headDimension, 16)
        XCTAssertEqual(minimal.ropeTheta, 10000)
        XCTAssertEqual(minimal.normEpsilon, 1e-6)
        XCTAssertEqual(minimal.maxPositionEmbeddings, 2048)
        XCTAssertFalse(minimal.tieWordEmbeddings)
        XCTAssertTrue(minimal.queryKeyValueBias)
        XCTAssertEqual(minimal.eosTokenIDs, [1, 2])
        XCTAssertNil(minimal.bosTokenID)

        let explicitHeadDim = try parse(#"{"model_type":"mistral","hidden_size":60,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":32,"vocab_size":10}"#)
        XCTAssertEqual(explicitHeadDim.headDimension, 32)

        let old = try parse(#"{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":10}"#)
        XCTAssertEqual(old.modelType, "llama")
    }

    func testRopeParametersVariant() throws {
        let base = #""model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100"#
        let plain = try parse("{\(base),\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000.0}}")
        XCTAssertEqual(plain.ropeTheta, 500000)
        XCTAssertNil(plain.ropeScaling)

        let scaled = try parse("{\(base),\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000,\"factor\":8.0,\"original_max_position_embeddings\":8192}}")
        XCTAssertEqual(scaled.ropeTheta, 500000)
        XCTAssertEqual(scaled.ropeScaling?["rope_type"], "llama3")
        XCTAssertEqual(scaled.ropeScaling?["factor"], 8.0)

        let legacy = try parse("{\(base),\"rope_theta\":1e6,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}")
        XCTAssertEqual(legacy.ropeTheta, 1_000_000)
        XCTAssertEqual(legacy.ropeScaling, ["type": "linear", "factor": 2])

        XCTAssertThrowsError(try parse("{\(base),\"rope_parameters\":{\"rope_theta\":\"big\"}}")) { error in
            XCTAssertEqual(error as? ModelConfigError,
                           .wrongType(path: path, field: "rope_parameters.rope_theta", expected: "a number", actualType: "string"))
        }
    }

    func testBERTConfig() throws {
        let config = try parse("""
            {"architectures":["BertModel"],"hidden_act":"gelu","hidden_size":384,"intermediate_size":1536,
             "layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert","num_attention_heads":12,
             "num_hidden_layers":6,"pad_token_id":0,"type_vocab_size":2,"vocab_size":30522}
            """)
        XCTAssertEqual(config.architecture, .bert)
        XCTAssertEqual(config.hiddenSize, 384)
        XCTAssertEqual(config.hiddenLayerCount, 6)
        XCTAssertEqual(config.attentionHeadCount, 12)
        XCTAssertEqual(config.keyValueHeadCount, 12)
        XCTAssertEqual(config.headDimension, 32)
        XCTAssertEqual(config.normEpsilon, 1e-12)
        XCTAssertEqual(config.typeVocabularySize, 2)
        XCTAssertEqual(config.padTokenID, 0)
        XCTAssertEqual(config.maxPositionEmbeddings, 512)
        XCTAssertEqual(config.hiddenActivation, "gelu")
    }

    func testMissingAndIllTypedFieldsNameTheFieldAndFile() {
        XCTAssertThrowsError(try parse(#"{"model_type":"llama","intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":10}"#)) { error in
            XCTAssertEqual(error as? ModelConfigError, .missingField(path: path, field: "hidden_size", architecture: "llama"))
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("\"hidden_size\""), "\(error)")
        }
        XCTAssertThrowsError(try parse(#"{"model_type":"bert","hidden_size":8,"intermediate_size":8,"num_hidden_layers":"6","num_attention_heads":2,"vocab_size":10}"#)) { error in
            XCTAssertEqual(error as? ModelConfigError, .wrongType(path: path, field: "num_hidden_layers", expected: "an integer", actualType: "string"))
        }
        XCTAssertThrowsError(try parse(#"{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2,"vocab_size":10}"#)) { error in
            guard case .invalidValue(path, "num_key_value_heads", _)? = error as? ModelConfigError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try parse(#"{"hidden_size":8}"#)) { error in
            XCTAssertEqual(error as? ModelConfigError, .missingField(path: path, field: "model_type", architecture: "Hugging Face"))
        }
        XCTAssertThrowsError(try parse("[]")) { error in
            XCTAssertEqual(error as? ModelConfigError, .notAnObject(path: path, actualType: "array"))
        }
    }

    func testUnknownArchitectureKeepsRawAndIsLenient() throws {
        let config = try parse(#"{"model_type":"gpt2","n_embd":768}"#)
        XCTAssertEqual(config.architecture, .unknown("gpt2"))
        XCTAssertEqual(config.architecture.name, "gpt2")
        XCTAssertEqual(config.hiddenSize, 0)
        XCTAssertEqual(config.jsonObject()["n_embd"], 768)
    }

    func testLoadFromDirectory() throws {
        let directory = NSTemporaryDirectory() + "loquat-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        XCTAssertNil(try ModelConfig.load(directory: directory))
        _ = FileManager.default.createFile(atPath: directory + "/config.json", contents: Data(smolLM2.utf8))
        XCTAssertEqual(try ModelConfig.load(directory: directory)?.hiddenSize, 576)
        _ = FileManager.default.createFile(atPath: directory + "/config.json", contents: Data("{\"a\":".utf8))
        XCTAssertThrowsError(try ModelConfig.load(directory: directory)) { error in
            guard case .invalidJSON(directory + "/config.json", _)? = error as? ModelConfigError else { return XCTFail("\(error)") }
        }
    }

    func testConfigBuiltInCodeWritesAnEquivalentObject() throws {
        let built = ModelConfig(architecture: .llama, hiddenSize: 576, intermediateSize: 1536, hiddenLayerCount: 30,
                                attentionHeadCount: 9, keyValueHeadCount: 3, vocabularySize: 49152,
                                maxPositionEmbeddings: 8192, normEpsilon: 1e-5, ropeTheta: 100000,
                                tieWordEmbeddings: true, bosTokenID: 0, eosTokenIDs: [0])
        XCTAssertEqual(built.headDimension, 64)
        let reparsed = try ModelConfig.parse(try JSON.parse(try JSON.serialize(built.jsonObject())), path: path)
        XCTAssertEqual(reparsed, built)
    }
}
