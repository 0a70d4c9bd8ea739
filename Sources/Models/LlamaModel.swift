import Tensors
import Checkpoints

/// The weights of one decoder layer, dequantized to Float32 once, `[out, in]` row-major.
///
/// The projections that read the same input are stored stacked so that one sgemm computes them:
/// `queryKeyValue` is `[Wq; Wk; Wv]` (`(nh + 2·nkv)·hd` rows) and `gateUp` is `[Wgate; Wup]`
/// (`2·intermediate` rows).
public struct LlamaLayerWeights: Sendable {
    public var inputNorm: [Float]
    public var queryKeyValue: Matrix<Float>
    /// `[bq; bk; bv]` when the config has q/k/v biases (Qwen2), else nil.
    public var queryKeyValueBias: [Float]?
    public var output: Matrix<Float>
    public var postAttentionNorm: [Float]
    public var gateUp: Matrix<Float>
    public var down: Matrix<Float>
}

/// A Llama-family decoder (Llama 2/3, SmolLM/SmolLM2, Mistral, Qwen2-style q/k/v bias) ready to
/// run: every weight decoded to Float32 at construction (formats.md §6.1), so a forward pass
/// never touches the checkpoint again.
public final class LlamaModel: Sendable {
    public let configuration: LlamaConfiguration
    /// `[vocab, hidden]`.
    public let embedding: Matrix<Float>
    public let layers: [LlamaLayerWeights]
    public let finalNorm: [Float]
    /// `[vocab, hidden]`; the same storage as `embedding` when the embeddings are tied.
    public let languageModelHead: Matrix<Float>
    /// `inv_freq` after scaling, `hd/2` entries.
    public let inverseFrequencies: [Double]
    /// Unmerged LoRA adapters per layer (`applying(_:)`), nil for the plain model.
    public let adapters: [LlamaLayerLoRA]?
    /// llama.cpp's `rope_freqs.weight` (`hd/2` factors; Llama 3.1 GGUFs carry their RoPE scaling
    /// only there): `inv_freq[i] / factor[i]`, as ggml's rope with `freq_factors` computes.
    public let ropeFrequencyFactors: [Float]?

    public init(configuration: LlamaConfiguration, embedding: Matrix<Float>, layers: [LlamaLayerWeights],
                finalNorm: [Float], languageModelHead: Matrix<Float>?, adapters: [LlamaLayerLoRA]? = nil,
                ropeFrequencyFactors: [Float]? = nil) throws {
        try configuration.validate()
        self.adapters = adapters
        self.ropeFrequencyFactors = ropeFrequencyFactors
        self.configuration = configuration
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.languageModelHead = languageModelHead ?? embedding
        var frequencies = configuration.inverseFrequencies
        if let factors = ropeFrequencyFactors {
            guard factors.count == frequencies.count, factors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw LlamaModelError.tensorShape(name: "rope_freqs.weight", expected: [frequencies.count], actual: [factors.count])
            }
            frequencies = zip(frequencies, factors).map { $0 / Double($1) }
        }
        self.inverseFrequencies = frequencies
    }

    /// Builds the model from a loaded checkpoint (HF names, torch order; GGUF files arrive with
    /// llama.cpp's Q/K permutation already undone, so RoPE is HF's rotate_half for both).
    /// Refuses non-Llama architectures, naming `model_type`.
    public convenience init(checkpoint: LoadedCheckpoint) throws {
        guard let config = checkpoint.config else {
            if checkpoint.architecture != "unknown" && checkpoint.architecture != "llama" {
                throw LlamaModelError.unsupportedArchitecture(modelType: checkpoint.architecture)
            }
            throw LlamaModelError.missingConfiguration(path: checkpoint.path)
        }
        let configuration = try LlamaConfiguration(config)
        let c = configuration
        let (h, hd, nh, nkv) = (c.hiddenSize, c.headDimension, c.headCount, c.keyValueHeadCount)

        func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> Matrix<Float> {
            guard let tensor = checkpoint.tensor(named: name) else { throw LlamaModelError.missingTensor(name: name) }
            guard tensor.shape == [rows, columns] else {
                throw LlamaModelError.tensorShape(name: name, expected: [rows, columns], actual: tensor.shape)
            }
            return try tensor.float32MatrixAnyDType()
        }
        func vector(_ name: String, _ count: Int) throws -> [Float] {
            guard let tensor = checkpoint.tensor(named: name) else { throw LlamaModelError.missingTensor(name: name) }
            guard tensor.shape == [count] else {
                throw LlamaModelError.tensorShape(name: name, expected: [count], actual: tensor.shape)
            }
            return try tensor.float32Values()
        }
        func stacked(_ parts: [Matrix<Float>]) -> Matrix<Float> {
            var values: [Float] = []
            values.reserveCapacity(parts.reduce(0) { $0 + $1.values.count })
            for part in parts { values.append(contentsOf: part.values) }
            return Matrix(rowCount: parts.reduce(0) { $0 + $1.rowCount }, columnCount: parts[0].columnCount, values: values)
        }

        // Layers decode independently; decode them concurrently (block codecs are the cost).
        var decoded = [Result<LlamaLayerWeights, Error>?](repeating: nil, count: c.layerCount)
        decoded.withUnsafeMutableBufferPointer { slots in
            Parallel.forEach(c.layerCount) { index in
                let prefix = "model.layers.\(index)."
                slots[index] = Result {
                    let q = try matrix(prefix + "self_attn.q_proj.weight", nh * hd, h)
                    let k = try matrix(prefix + "self_attn.k_proj.weight", nkv * hd, h)
                    let v = try matrix(prefix + "self_attn.v_proj.weight", nkv * hd, h)
                    var bias: [Float]? = nil
                    if c.queryKeyValueBias {
                        bias = try vector(prefix + "self_attn.q_proj.bias", nh * hd)
                            + vector(prefix + "self_attn.k_proj.bias", nkv * hd)
                            + vector(prefix + "self_attn.v_proj.bias", nkv * hd)
                    }
                    return LlamaLayerWeights(
                        inputNorm: try vector(prefix + "input_layernorm.weight", h),
                        queryKeyValue: stacked([q, k, v]), queryKeyValueBias: bias,
                        output: try matrix(prefix + "self_attn.o_proj.weight", h, nh * hd),
                        postAttentionNorm: try vector(prefix + "post_attention_layernorm.weight", h),
                        gateUp: stacked([try matrix(prefix + "mlp.gate_proj.weight", c.intermediateSize, h),
                                         try matrix(prefix + "mlp.up_proj.weight", c.intermediateSize, h)]),
                        down: try matrix(prefix + "mlp.down_proj.weight", h, c.intermediateSize))
                }
            }
        }
        let layers = try decoded.map { try $0!.get() }
        let embedding = try matrix("model.embed_tokens.weight", c.vocabularySize, h)
        // A checkpoint that says "tied" may still ship lm_head (HF save_pretrained does not);
        // an untied one must.
        let head: Matrix<Float>? = c.tieWordEmbeddings && checkpoint.tensor(named: "lm_head.weight") == nil
            ? nil : try matrix("lm_head.weight", c.vocabularySize, h)
        // A GGUF's rope_freqs (kept under its GGUF name by the loader) replaces config-side scaling.
        let factors = try checkpoint.tensor(named: "rope_freqs.weight").map { _ in try vector("rope_freqs.weight", hd / 2) }
        try self.init(configuration: configuration, embedding: embedding, layers: layers,
                      finalNorm: try vector("model.norm.weight", h), languageModelHead: head, ropeFrequencyFactors: factors)
    }

    func checkTokens(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else { throw LlamaModelError.emptyInput }
        for (position, token) in tokens.enumerated() where token < 0 || token >= configuration.vocabularySize {
            throw LlamaModelError.tokenOutOfRange(position: position, token: token, vocabularySize: configuration.vocabularySize)
        }
    }
}
