import Foundation
import Checkpoints

/// Why a Llama-family model could not be built or run. Each case names what was wrong in the
/// checkpoint's own vocabulary (HF tensor names, `config.json` fields).
public enum LlamaModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The checkpoint is not a Llama-family decoder (`model_type` as declared).
    case unsupportedArchitecture(modelType: String)
    /// The checkpoint carries no config (a bare `.safetensors` without `config.json`).
    case missingConfiguration(path: String)
    case missingTensor(name: String)
    case tensorShape(name: String, expected: [Int], actual: [Int])
    /// A config value the forward pass does not implement (e.g. `rope_scaling.rope_type: yarn`).
    case unsupportedConfiguration(field: String, reason: String)
    case tokenOutOfRange(position: Int, token: Int, vocabularySize: Int)
    case emptyInput

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(modelType):
            return "model_type \"\(modelType)\" is not a Llama-family decoder (supported: llama, mistral, qwen2, SmolLM)"
        case let .missingConfiguration(path): return "\(path): no config.json, so the architecture is unknown"
        case let .missingTensor(name): return "the checkpoint has no tensor \(name)"
        case let .tensorShape(name, expected, actual): return "tensor \(name) has shape \(actual), expected \(expected)"
        case let .unsupportedConfiguration(field, reason): return "config field \(field): \(reason)"
        case let .tokenOutOfRange(position, token, vocabularySize):
            return "token id \(token) at position \(position) is outside the vocabulary (0..<\(vocabularySize))"
        case .emptyInput: return "no tokens to run"
        }
    }
}

/// RoPE frequency scaling (HF `rope_scaling`, formats.md §6.1).
public enum LlamaRopeScaling: Sendable, Equatable {
    case none
    /// `rope_type: linear`: every inverse frequency divided by `factor`.
    case linear(factor: Double)
    /// `rope_type: llama3`: long wavelengths divided by `factor`, short ones kept, a smooth blend between.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContextLength: Int)
}

/// The hyperparameters the forward pass uses, typed and checked.
public struct LlamaConfiguration: Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    public var headDimension: Int
    public var vocabularySize: Int
    public var normEpsilon: Double
    public var ropeTheta: Double
    public var ropeScaling: LlamaRopeScaling
    public var tieWordEmbeddings: Bool
    public var queryKeyValueBias: Bool
    public var maxPositionEmbeddings: Int
    public var bosTokenID: Int?

    public init(hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int, keyValueHeadCount: Int,
                headDimension: Int, vocabularySize: Int, normEpsilon: Double, ropeTheta: Double,
                ropeScaling: LlamaRopeScaling = .none, tieWordEmbeddings: Bool, queryKeyValueBias: Bool = false,
                maxPositionEmbeddings: Int = 2048, bosTokenID: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.headDimension = headDimension
        self.vocabularySize = vocabularySize
        self.normEpsilon = normEpsilon
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.queryKeyValueBias = queryKeyValueBias
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenID = bosTokenID
    }

    /// From a parsed `config.json` (or GGUF metadata); refuses non-Llama architectures by `model_type`.
    public init(_ config: ModelConfig) throws {
        guard config.architecture == .llama else {
            throw LlamaModelError.unsupportedArchitecture(modelType: config.modelType)
        }
        guard config.hiddenActivation == "silu" else {
            throw LlamaModelError.unsupportedConfiguration(field: "hidden_act", reason: "\(config.hiddenActivation) is not implemented (silu only)")
        }
        guard !config.mlpBias else {
            throw LlamaModelError.unsupportedConfiguration(field: "mlp_bias", reason: "MLP biases are not implemented")
        }
        self.init(hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
                  layerCount: config.hiddenLayerCount, headCount: config.attentionHeadCount,
                  keyValueHeadCount: config.keyValueHeadCount, headDimension: config.headDimension,
                  vocabularySize: config.vocabularySize, normEpsilon: config.normEpsilon, ropeTheta: config.ropeTheta,
                  ropeScaling: try Self.ropeScaling(config), tieWordEmbeddings: config.tieWordEmbeddings,
                  queryKeyValueBias: config.queryKeyValueBias, maxPositionEmbeddings: config.maxPositionEmbeddings,
                  bosTokenID: config.bosTokenID)
        try validate()
    }

    func validate() throws {
        func check(_ condition: Bool, _ field: String, _ reason: String) throws {
            if !condition { throw LlamaModelError.unsupportedConfiguration(field: field, reason: reason) }
        }
        try check(hiddenSize > 0 && intermediateSize > 0 && layerCount >= 0 && vocabularySize > 0, "hidden_size",
                  "sizes must be positive")
        try check(headCount > 0 && keyValueHeadCount > 0 && headCount % keyValueHeadCount == 0, "num_key_value_heads",
                  "\(headCount) heads are not a multiple of \(keyValueHeadCount) KV heads")
        try check(headDimension > 0 && headDimension % 2 == 0, "head_dim", "RoPE needs an even head dimension, got \(headDimension)")
    }

    /// HF `rope_scaling` → `LlamaRopeScaling`. The JSON value is read through its own accessors,
    /// so this module does not depend on `JSON`.
    static func ropeScaling(_ config: ModelConfig) throws -> LlamaRopeScaling {
        guard let scaling = config.ropeScaling, !scaling.isNull else { return .none }
        let type = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "default"
        func number(_ key: String) throws -> Double {
            guard let value = scaling[key]?.doubleValue else {
                throw LlamaModelError.unsupportedConfiguration(field: "rope_scaling.\(key)", reason: "missing or not a number")
            }
            return value
        }
        switch type {
        case "default": return .none
        case "linear": return .linear(factor: try number("factor"))
        case "llama3":
            return .llama3(factor: try number("factor"), lowFrequencyFactor: try number("low_freq_factor"),
                           highFrequencyFactor: try number("high_freq_factor"),
                           originalContextLength: Int(try number("original_max_position_embeddings")))
        default:
            throw LlamaModelError.unsupportedConfiguration(field: "rope_scaling.rope_type", reason: "\"\(type)\" is not implemented (default, linear, llama3)")
        }
    }

    /// `inv_freq[i] = θ^(−2i/hd)` for `i < hd/2`, with the scaling applied (HF
    /// `_compute_default_rope_parameters`, `_compute_llama3_parameters`), in Double.
    public var inverseFrequencies: [Double] {
        let half = headDimension / 2
        var frequencies = (0..<half).map { 1 / pow(ropeTheta, Double(2 * $0) / Double(headDimension)) }
        switch ropeScaling {
        case .none: break
        case let .linear(factor): frequencies = frequencies.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
            frequencies = frequencies.map { frequency in
                let wavelength = 2 * Double.pi / frequency
                if wavelength < highWavelength { return frequency }
                if wavelength > lowWavelength { return frequency / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * frequency / factor + smooth * frequency
            }
        }
        return frequencies
    }
}
