import JSON

extension ModelConfig {
    /// Reads the typed fields from a parsed `config.json` object (table on `ModelConfig`).
    /// `path` names the file in errors. A JSON `null` counts as absent, as in transformers.
    public static func parse(_ value: JSONValue, path: String) throws -> ModelConfig {
        guard case let .object(object) = value else { throw ModelConfigError.notAnObject(path: path, actualType: value.typeName) }
        let fields = ConfigFields(object: object, path: path)
        guard let modelType = try fields.string("model_type") ?? inferredModelType(fields) else {
            throw ModelConfigError.missingField(path: path, field: "model_type", architecture: "Hugging Face")
        }
        let architecture = ModelArchitecture(modelType: modelType)
        let isBERT = architecture == .bert
        let isKnown = architecture == .llama || isBERT

        /// A size the architecture cannot do without: missing is an error, zero or negative too.
        func requiredSize(_ name: String) throws -> Int {
            guard let number = try fields.int(name) else {
                if !isKnown { return 0 }
                throw ModelConfigError.missingField(path: path, field: name, architecture: architecture.name)
            }
            return try positive(number, name)
        }
        func positive(_ number: Int, _ name: String) throws -> Int {
            guard number > 0 || !isKnown else { throw ModelConfigError.invalidValue(path: path, field: name, reason: "must be positive, got \(number)") }
            return number
        }

        let hiddenSize = try requiredSize("hidden_size")
        let headCount = try requiredSize("num_attention_heads")
        let keyValueHeadCount = try fields.int("num_key_value_heads").map { try positive($0, "num_key_value_heads") } ?? headCount
        if isKnown && headCount % keyValueHeadCount != 0 {
            throw ModelConfigError.invalidValue(path: path, field: "num_key_value_heads",
                                                reason: "\(headCount) attention heads are not a multiple of \(keyValueHeadCount) key/value heads")
        }
        let headDimension: Int
        if let explicit = try fields.int("head_dim") {
            headDimension = try positive(explicit, "head_dim")
        } else if headCount > 0 && hiddenSize % headCount == 0 {
            headDimension = hiddenSize / headCount
        } else if isKnown {
            throw ModelConfigError.invalidValue(path: path, field: "num_attention_heads",
                                                reason: "hidden_size \(hiddenSize) is not a multiple of \(headCount) heads and head_dim is not given")
        } else {
            headDimension = 0
        }

        let ropeParameters = try fields.object("rope_parameters")
        let nested = ropeParameters.map { ConfigFields(object: $0, path: path, prefix: "rope_parameters.") }
        let ropeTheta = try fields.double("rope_theta") ?? nested?.double("rope_theta") ?? 10000
        guard ropeTheta > 0 else { throw ModelConfigError.invalidValue(path: path, field: "rope_theta", reason: "must be positive, got \(ropeTheta)") }
        var ropeScaling = fields.value("rope_scaling")
        if ropeScaling == nil, let ropeParameters {
            let ropeType = try nested?.string("rope_type") ?? nested?.string("type") ?? "default"
            if ropeType != "default" { ropeScaling = .object(ropeParameters) }
        }

        let normName = isBERT ? "layer_norm_eps" : "rms_norm_eps"
        let normEpsilon = try fields.double(normName) ?? (isBERT ? 1e-12 : 1e-6)
        guard normEpsilon > 0 || !isKnown else {
            throw ModelConfigError.invalidValue(path: path, field: normName, reason: "must be positive, got \(normEpsilon)")
        }

        let typeVocabularySize = isBERT ? (try fields.int("type_vocab_size").map { try positive($0, "type_vocab_size") } ?? 2) : nil

        return ModelConfig(
            architecture: architecture, modelType: modelType,
            hiddenSize: hiddenSize, intermediateSize: try requiredSize("intermediate_size"),
            hiddenLayerCount: try requiredSize("num_hidden_layers"),
            attentionHeadCount: headCount, keyValueHeadCount: keyValueHeadCount, headDimension: headDimension,
            vocabularySize: try requiredSize("vocab_size"),
            maxPositionEmbeddings: try fields.int("max_position_embeddings").map { try positive($0, "max_position_embeddings") } ?? (isBERT ? 512 : 2048),
            normEpsilon: normEpsilon, ropeTheta: ropeTheta, ropeScaling: ropeScaling,
            tieWordEmbeddings: try fields.bool("tie_word_embeddings") ?? isBERT,
            attentionBias: try fields.bool("attention_bias") ?? false,
            mlpBias: try fields.bool("mlp_bias") ?? false,
            hiddenActivation: try fields.string("hidden_act") ?? (isBERT ? "gelu" : "silu"),
            bosTokenID: try fields.intList("bos_token_id")?.first,
            eosTokenIDs: try fields.intList("eos_token_id") ?? [],
            padTokenID: try fields.intList("pad_token_id")?.first,
            typeVocabularySize: typeVocabularySize,
            raw: value)
    }

    /// `model_type` from `architectures[0]` for old configs that lack it.
    private static func inferredModelType(_ fields: ConfigFields) throws -> String? {
        guard let first = fields.value("architectures")?.arrayValue?.first?.stringValue else { return nil }
        let prefixes = [("Llama", "llama"), ("Mistral", "mistral"), ("Qwen2", "qwen2"), ("Bert", "bert")]
        return prefixes.first { first.hasPrefix($0.0) && !first.hasPrefix("\($0.0)Moe") }?.1
    }
}

/// Typed access to the members of one JSON object, with errors naming the field and file.
struct ConfigFields {
    let object: JSONObject
    let path: String
    /// Prepended to field names in errors (`rope_parameters.`).
    var prefix = ""

    /// The member, or nil when absent or null.
    func value(_ name: String) -> JSONValue? {
        guard let value = object[name], !value.isNull else { return nil }
        return value
    }

    private func wrongType(_ name: String, _ expected: String, _ value: JSONValue) -> ModelConfigError {
        .wrongType(path: path, field: prefix + name, expected: expected, actualType: value.typeName)
    }

    func int(_ name: String) throws -> Int? {
        guard let value = value(name) else { return nil }
        guard let number = value.intValue else { throw wrongType(name, "an integer", value) }
        return number
    }

    func double(_ name: String) throws -> Double? {
        guard let value = value(name) else { return nil }
        guard let number = value.doubleValue else { throw wrongType(name, "a number", value) }
        return number
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = value(name) else { return nil }
        guard let flag = value.boolValue else { throw wrongType(name, "true or false", value) }
        return flag
    }

    func string(_ name: String) throws -> String? {
        guard let value = value(name) else { return nil }
        guard let text = value.stringValue else { throw wrongType(name, "a string", value) }
        return text
    }

    func object(_ name: String) throws -> JSONObject? {
        guard let value = value(name) else { return nil }
        guard let object = value.objectValue else { throw wrongType(name, "an object", value) }
        return object
    }

    /// An integer or a list of integers (Llama 3's `eos_token_id` is a list).
    func intList(_ name: String) throws -> [Int]? {
        guard let value = value(name) else { return nil }
        if let number = value.intValue { return [number] }
        guard let items = value.arrayValue else { throw wrongType(name, "an integer or a list of integers", value) }
        return try items.map { item in
            guard let number = item.intValue else { throw wrongType(name, "an integer or a list of integers", item) }
            return number
        }
    }
}
