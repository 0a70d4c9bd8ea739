/// Conversion between `config.json` fields and the `llama.*` GGUF hyperparameters
/// (formats.md §2.8): `hidden_size` ↔ `embedding_length`, `num_hidden_layers` ↔ `block_count`,
/// `intermediate_size` ↔ `feed_forward_length`, heads ↔ `head_count` / `head_count_kv`,
/// `rms_norm_eps` ↔ `layer_norm_rms_epsilon`, `rope_theta` ↔ `rope.freq_base`,
/// `max_position_embeddings` ↔ `context_length`, `head_dim` ↔ `key_length`.
extension ModelConfig {
    /// A Llama config from GGUF metadata. GGUF stores epsilon and RoPE base as FLOAT32; they are
    /// widened through their shortest decimal form, so `1e-5` stays `1e-05` in a written config
    /// instead of becoming `9.99999974738e-06`.
    /// `tieWordEmbeddings` is true when the GGUF has no `output.weight` (llama.cpp then reuses
    /// `token_embd`); the token ids come from `tokenizer.ggml.*`.
    public init(llama hyperparameters: LlamaHyperparameters, tieWordEmbeddings: Bool = false,
                bosTokenID: Int? = nil, eosTokenIDs: [Int] = []) {
        self.init(architecture: .llama, modelType: "llama",
                  hiddenSize: hyperparameters.embeddingLength,
                  intermediateSize: hyperparameters.feedForwardLength,
                  hiddenLayerCount: hyperparameters.blockCount,
                  attentionHeadCount: hyperparameters.headCount,
                  keyValueHeadCount: hyperparameters.headCountKV,
                  headDimension: hyperparameters.headDimension,
                  vocabularySize: hyperparameters.vocabularySize,
                  maxPositionEmbeddings: hyperparameters.contextLength,
                  normEpsilon: Self.shortestDouble(hyperparameters.rmsNormEpsilon),
                  ropeTheta: Self.shortestDouble(hyperparameters.ropeFrequencyBase),
                  tieWordEmbeddings: tieWordEmbeddings, bosTokenID: bosTokenID, eosTokenIDs: eosTokenIDs)
    }

    /// The GGUF hyperparameters of a Llama-family config; throws for other architectures.
    public func llamaHyperparameters(path: String = ModelConfig.fileName) throws -> LlamaHyperparameters {
        guard architecture == .llama else {
            throw ModelConfigError.invalidValue(path: path, field: "model_type",
                                                reason: "\(modelType) has no llama.* GGUF hyperparameters")
        }
        return LlamaHyperparameters(vocabularySize: vocabularySize, contextLength: maxPositionEmbeddings,
                                    embeddingLength: hiddenSize, blockCount: hiddenLayerCount,
                                    feedForwardLength: intermediateSize, headCount: attentionHeadCount,
                                    headCountKV: keyValueHeadCount, rmsNormEpsilon: Float(normEpsilon),
                                    ropeFrequencyBase: Float(ropeTheta), headDimension: headDimension)
    }

    private static func shortestDouble(_ value: Float) -> Double {
        Double(value.description) ?? Double(value)
    }
}
