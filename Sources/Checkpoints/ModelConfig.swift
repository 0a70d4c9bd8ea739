import JSON
import LoquatSupport

/// The model families Loquat runs. `llama` covers the decoders that share Llama's layout
/// (formats.md §6.1): `model_type` llama (also SmolLM/SmolLM2), mistral and qwen2 (whose q/k/v
/// projections always carry a bias). `bert` is the post-LayerNorm encoder of §6.4.
public enum ModelArchitecture: Sendable, Equatable, Hashable {
    case llama
    case bert
    /// Any other `model_type`, kept verbatim.
    case unknown(String)

    static let llamaModelTypes: Set<String> = ["llama", "mistral", "qwen2"]

    public init(modelType: String) {
        if Self.llamaModelTypes.contains(modelType) { self = .llama }
        else if modelType == "bert" { self = .bert }
        else { self = .unknown(modelType) }
    }

    /// `llama`, `bert`, or the unknown model type.
    public var name: String {
        switch self {
        case .llama: return "llama"
        case .bert: return "bert"
        case let .unknown(modelType): return modelType
        }
    }
}

/// The hyperparameters of a Hugging Face `config.json`, typed, plus the whole original object.
///
/// Field meanings (HF spelling → here), formats.md §2.8, §6.1, §6.4:
///
/// | config.json | field | default when absent |
/// |---|---|---|
/// | `model_type` | `modelType`, `architecture` | from `architectures[0]` |
/// | `hidden_size` | `hiddenSize` | required |
/// | `intermediate_size` | `intermediateSize` | required |
/// | `num_hidden_layers` | `hiddenLayerCount` | required |
/// | `num_attention_heads` | `attentionHeadCount` | required |
/// | `num_key_value_heads` | `keyValueHeadCount` | = heads (BERT: = heads) |
/// | `head_dim` | `headDimension` | hidden / heads |
/// | `vocab_size` | `vocabularySize` | required |
/// | `max_position_embeddings` | `maxPositionEmbeddings` | 2048 (BERT 512) |
/// | `rms_norm_eps` / BERT `layer_norm_eps` | `normEpsilon` | 1e-6 (BERT 1e-12) |
/// | `rope_theta` or `rope_parameters.rope_theta` | `ropeTheta` | 10000 |
/// | `rope_scaling` (or a non-default `rope_parameters`) | `ropeScaling`, raw JSON | nil |
/// | `tie_word_embeddings` | `tieWordEmbeddings` | false (BERT true) |
/// | `attention_bias` / `mlp_bias` | `attentionBias` / `mlpBias` | false |
/// | `hidden_act` | `hiddenActivation` | "silu" (BERT "gelu") |
/// | `bos_token_id`, `eos_token_id` (int or list), `pad_token_id` | token ids | nil / [] |
/// | BERT `type_vocab_size` | `typeVocabularySize` | 2 (nil for Llama) |
///
/// Defaults are transformers' class defaults. For an `.unknown` architecture the typed fields
/// are best effort (0 when absent); check `architecture` before using them.
public struct ModelConfig: Sendable, Equatable {
    public static let fileName = "config.json"

    public let architecture: ModelArchitecture
    public let modelType: String
    public let hiddenSize: Int
    public let intermediateSize: Int
    public let hiddenLayerCount: Int
    public let attentionHeadCount: Int
    public let keyValueHeadCount: Int
    public let headDimension: Int
    public let vocabularySize: Int
    public let maxPositionEmbeddings: Int
    /// RMSNorm epsilon (Llama family) or LayerNorm epsilon (BERT).
    public let normEpsilon: Double
    public let ropeTheta: Double
    /// The RoPE scaling object as written (`rope_type`/`type`, `factor`, …), nil when unscaled.
    public let ropeScaling: JSONValue?
    public let tieWordEmbeddings: Bool
    public let attentionBias: Bool
    public let mlpBias: Bool
    public let hiddenActivation: String
    public let bosTokenID: Int?
    public let eosTokenIDs: [Int]
    public let padTokenID: Int?
    /// BERT's token-type (segment) vocabulary; nil for decoders.
    public let typeVocabularySize: Int?
    /// The whole `config.json` object; written back as it is by `jsonObject()`.
    public private(set) var raw: JSONValue

    /// Whether the q/k/v projections have a bias: `attention_bias`, and always for qwen2.
    public var queryKeyValueBias: Bool { attentionBias || modelType == "qwen2" }

    /// Builds a config in code (e.g. from GGUF metadata). `raw` defaults to the HF object these
    /// fields describe.
    public init(architecture: ModelArchitecture, modelType: String? = nil,
                hiddenSize: Int, intermediateSize: Int, hiddenLayerCount: Int,
                attentionHeadCount: Int, keyValueHeadCount: Int? = nil, headDimension: Int? = nil,
                vocabularySize: Int, maxPositionEmbeddings: Int, normEpsilon: Double,
                ropeTheta: Double = 10000, ropeScaling: JSONValue? = nil, tieWordEmbeddings: Bool = false,
                attentionBias: Bool = false, mlpBias: Bool = false, hiddenActivation: String? = nil,
                bosTokenID: Int? = nil, eosTokenIDs: [Int] = [], padTokenID: Int? = nil,
                typeVocabularySize: Int? = nil, raw: JSONValue? = nil) {
        self.architecture = architecture
        self.modelType = modelType ?? architecture.name
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.hiddenLayerCount = hiddenLayerCount
        self.attentionHeadCount = attentionHeadCount
        self.keyValueHeadCount = keyValueHeadCount ?? attentionHeadCount
        self.headDimension = headDimension ?? (attentionHeadCount > 0 ? hiddenSize / attentionHeadCount : 0)
        self.vocabularySize = vocabularySize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.normEpsilon = normEpsilon
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.hiddenActivation = hiddenActivation ?? (architecture == .bert ? "gelu" : "silu")
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
        self.padTokenID = padTokenID
        self.typeVocabularySize = typeVocabularySize
        self.raw = .null
        self.raw = raw ?? generatedObject()
    }

    /// `config.json` of `directory`; nil when there is none.
    public static func load(directory: String) throws -> ModelConfig? {
        let path = FileSystem.join(directory, fileName)
        guard FileSystem.kind(of: path) != .missing else { return nil }
        return try load(path: path)
    }

    /// Reads and parses one config file.
    public static func load(path: String) throws -> ModelConfig {
        let value: JSONValue
        do {
            let mapping = try MappedFile(path: path)
            value = try mapping.withBytes { try JSON.parse($0, maximumByteCount: 64 << 20) }
        } catch let error as MappedFile.OpenError {
            throw ModelConfigError.unreadable(path: path, reason: error.reason)
        } catch let error as JSONError {
            throw ModelConfigError.invalidJSON(path: path, reason: error.description)
        }
        return try parse(value, path: path)
    }

    /// The object to write as `config.json`: the original when the config was read from one.
    public func jsonObject() -> JSONValue { raw }

    /// The HF object the typed fields describe (used when a config is built in code).
    func generatedObject() -> JSONValue {
        var object: JSONObject = [:]
        switch architecture {
        case .llama: object["architectures"] = .strings([modelType == "qwen2" ? "Qwen2ForCausalLM" : modelType == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM"])
        case .bert: object["architectures"] = .strings(["BertModel"])
        case .unknown: break
        }
        object["model_type"] = .string(modelType)
        object["hidden_size"] = .int(hiddenSize)
        object["intermediate_size"] = .int(intermediateSize)
        object["num_hidden_layers"] = .int(hiddenLayerCount)
        object["num_attention_heads"] = .int(attentionHeadCount)
        object["vocab_size"] = .int(vocabularySize)
        object["max_position_embeddings"] = .int(maxPositionEmbeddings)
        object["hidden_act"] = .string(hiddenActivation)
        if architecture == .bert {
            object["layer_norm_eps"] = .double(normEpsilon)
            object["type_vocab_size"] = .int(typeVocabularySize ?? 2)
        } else {
            object["num_key_value_heads"] = .int(keyValueHeadCount)
            object["head_dim"] = .int(headDimension)
            object["rms_norm_eps"] = .double(normEpsilon)
            object["rope_theta"] = .double(ropeTheta)
            object["rope_scaling"] = ropeScaling ?? .null
            object["attention_bias"] = .bool(attentionBias)
            object["mlp_bias"] = .bool(mlpBias)
        }
        object["tie_word_embeddings"] = .bool(tieWordEmbeddings)
        if let bosTokenID { object["bos_token_id"] = .int(bosTokenID) }
        if eosTokenIDs.count == 1 { object["eos_token_id"] = .int(eosTokenIDs[0]) }
        if eosTokenIDs.count > 1 { object["eos_token_id"] = .ints(eosTokenIDs) }
        if let padTokenID { object["pad_token_id"] = .int(padTokenID) }
        return .object(object)
    }
}
