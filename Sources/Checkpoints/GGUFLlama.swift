import LoquatSupport
import Tensors

/// The `llama.*` hyperparameters of a GGUF model (formats.md §2.8). `ModelConfig` converts
/// from and to this; the names follow the GGUF keys.
public struct LlamaHyperparameters: Sendable, Equatable {
    /// Tokens in the vocabulary (`tokenizer.ggml.tokens` count, else `llama.vocab_size`).
    public var vocabularySize: Int
    /// `llama.context_length` (HF `max_position_embeddings`).
    public var contextLength: Int
    /// `llama.embedding_length` (HF `hidden_size`).
    public var embeddingLength: Int
    /// `llama.block_count` (HF `num_hidden_layers`).
    public var blockCount: Int
    /// `llama.feed_forward_length` (HF `intermediate_size`).
    public var feedForwardLength: Int
    /// `llama.attention.head_count` (HF `num_attention_heads`).
    public var headCount: Int
    /// `llama.attention.head_count_kv` (HF `num_key_value_heads`); equals `headCount` without GQA.
    public var headCountKV: Int
    /// `llama.attention.layer_norm_rms_epsilon` (HF `rms_norm_eps`).
    public var rmsNormEpsilon: Float
    /// `llama.rope.freq_base` (HF `rope_theta`).
    public var ropeFrequencyBase: Float
    /// Rows per attention head (`llama.attention.key_length`, else `embeddingLength / headCount`).
    public var headDimension: Int

    public init(vocabularySize: Int, contextLength: Int, embeddingLength: Int, blockCount: Int,
                feedForwardLength: Int, headCount: Int, headCountKV: Int? = nil, rmsNormEpsilon: Float,
                ropeFrequencyBase: Float = 10_000, headDimension: Int? = nil) {
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.embeddingLength = embeddingLength
        self.blockCount = blockCount
        self.feedForwardLength = feedForwardLength
        self.headCount = headCount
        self.headCountKV = headCountKV ?? headCount
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeFrequencyBase = ropeFrequencyBase
        self.headDimension = headDimension ?? (headCount > 0 ? embeddingLength / headCount : 0)
    }

    /// The keys gguf-py's llama converter writes, with its exact types (UINT32 / FLOAT32).
    public func ggufMetadata() throws -> [GGUFKeyValue] {
        func count(_ key: String, _ value: Int) throws -> GGUFKeyValue {
            guard value > 0, let narrow = UInt32(exactly: value) else {
                throw GGUFError(path: "<hyperparameters>", .invalidValue(key: key, detail: "\(value) is not a positive UINT32"))
            }
            return GGUFKeyValue(key, .uint32(narrow))
        }
        var entries = [
            try count("llama.vocab_size", vocabularySize),
            try count("llama.context_length", contextLength),
            try count("llama.embedding_length", embeddingLength),
            try count("llama.block_count", blockCount),
            try count("llama.feed_forward_length", feedForwardLength),
            try count("llama.rope.dimension_count", headDimension),
            try count("llama.attention.head_count", headCount),
            try count("llama.attention.head_count_kv", headCountKV),
            GGUFKeyValue("llama.attention.layer_norm_rms_epsilon", .float32(rmsNormEpsilon)),
            GGUFKeyValue("llama.rope.freq_base", .float32(ropeFrequencyBase)),
        ]
        if headDimension * headCount != embeddingLength {
            entries.append(try count("llama.attention.key_length", headDimension))
            entries.append(try count("llama.attention.value_length", headDimension))
        }
        return entries
    }
}

extension GGUFFile {
    /// Reads the `llama.*` keys (integers of any width, FLOAT32 or FLOAT64 accepted). Throws
    /// unless `general.architecture` is `llama` and the required keys are present.
    public func llamaHyperparameters() throws -> LlamaHyperparameters {
        guard architecture == "llama" else { throw GGUFError(path: path, .unsupportedArchitecture(architecture ?? "(none)")) }
        func integer(_ key: String) throws -> Int? {
            guard let value = metadata[key] else { return nil }
            guard let integer = value.integer, integer >= 0 else {
                throw GGUFError(path: path, .wrongKeyType(key: key, found: value.typeName, expected: "UINT32"))
            }
            return integer
        }
        func required(_ key: String) throws -> Int {
            guard let value = try integer(key) else { throw GGUFError(path: path, .missingKey(key)) }
            return value
        }
        func float(_ key: String) throws -> Float? {
            guard let value = metadata[key] else { return nil }
            guard let number = value.floatingPoint else {
                throw GGUFError(path: path, .wrongKeyType(key: key, found: value.typeName, expected: "FLOAT32"))
            }
            return Float(number)
        }
        let embeddingLength = try required("llama.embedding_length")
        let headCount = try required("llama.attention.head_count")
        let tokenCount = metadata["tokenizer.ggml.tokens"]?.array?.count
        let embeddingRows = tensorInfo(named: "token_embd.weight").map { $0.ne.count == 2 ? $0.ne[1] : 0 }
        guard let vocabularySize = try tokenCount ?? integer("llama.vocab_size") ?? embeddingRows else {
            throw GGUFError(path: path, .missingKey("tokenizer.ggml.tokens"))
        }
        guard let rmsNormEpsilon = try float("llama.attention.layer_norm_rms_epsilon") else {
            throw GGUFError(path: path, .missingKey("llama.attention.layer_norm_rms_epsilon"))
        }
        return LlamaHyperparameters(
            vocabularySize: vocabularySize,
            contextLength: try required("llama.context_length"),
            embeddingLength: embeddingLength,
            blockCount: try required("llama.block_count"),
            feedForwardLength: try required("llama.feed_forward_length"),
            headCount: headCount,
            headCountKV: try integer("llama.attention.head_count_kv"),
            rmsNormEpsilon: rmsNormEpsilon,
            ropeFrequencyBase: try float("llama.rope.freq_base") ?? 10_000,
            headDimension: try integer("llama.attention.key_length"))
    }

    /// The tensors under their HF names, in PyTorch order, with `attn_q` / `attn_k` rows
    /// un-permuted (so they equal the HF checkpoint's `q_proj` / `k_proj`). Storage types are
    /// kept: unpermuted tensors stay windows into the mapping, permuted ones are owned copies.
    /// Any tensor without an HF name keeps its GGUF name, so nothing is lost: notably
    /// `rope_freqs.weight`, where Llama 3.1 GGUFs keep their RoPE scaling (the forward pass
    /// applies it; a GGUF export writes it back; a safetensors export leaves it out).
    public func huggingFaceTensors() throws -> [Tensor] {
        let hyperparameters = try llamaHyperparameters()
        var result: [Tensor] = []
        for info in tensorInfos {
            var tensor = try tensor(for: info)
            if let projection = LlamaTensorNames.permutedProjection(forGGUF: info.name) {
                let heads = projection == .query ? hyperparameters.headCount : hyperparameters.headCountKV
                do {
                    tensor = try LlamaTensorNames.permuteRows(of: tensor, headCount: heads, direction: .ggufToHuggingFace)
                } catch {
                    throw GGUFError(path: path, .invalidValue(
                        key: info.name, detail: "\(info.shape[0]) rows cannot be split into \(heads) heads of even size"))
                }
            }
            result.append(tensor.renamed(LlamaTensorNames.huggingFaceName(forGGUF: info.name) ?? info.name))
        }
        return result
    }
}

extension LlamaTensorNames {
    /// The inverse of `GGUFFile.huggingFaceTensors`: HF-named tensors renamed to GGUF, `q_proj`
    /// / `k_proj` rows permuted, `rotary_emb.inv_freq` dropped, in a canonical order
    /// (`token_embd`, `rope_freqs`, blocks by index in `layerNames` order, `output_norm`,
    /// `output`). Names that are already GGUF llama names pass through; others throw.
    public static func ggufTensors(fromHuggingFace tensors: [Tensor], hyperparameters: LlamaHyperparameters,
                                   path: String = "<tensors>") throws -> [Tensor] {
        var renamed: [(key: [Int], tensor: Tensor)] = []
        var seen = Set<String>()
        for tensor in tensors where !isDroppedHuggingFaceName(tensor.name) {
            let name: String
            if let mapped = ggufName(forHuggingFace: tensor.name) {
                name = mapped
            } else if isGGUFName(tensor.name) {
                name = tensor.name
            } else {
                throw GGUFError(path: path, .cannotWrite(tensor: tensor.name, detail: "not a llama tensor name"))
            }
            guard seen.insert(name).inserted else { throw GGUFError(path: path, .duplicateTensorName(name)) }
            var output = tensor.renamed(name)
            if let projection = permutedProjection(forGGUF: name) {
                let heads = projection == .query ? hyperparameters.headCount : hyperparameters.headCountKV
                do {
                    output = try permuteRows(of: output, headCount: heads, direction: .huggingFaceToGGUF)
                } catch {
                    throw GGUFError(path: path, .cannotWrite(
                        tensor: tensor.name, detail: "shape \(tensor.shape) cannot be split into \(heads) heads of even size"))
                }
            }
            renamed.append((canonicalOrderKey(name), output))
        }
        return renamed.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.tensor)
    }

    /// Sort key: group, layer, position in `layerNames`, weight before bias.
    static func canonicalOrderKey(_ name: String) -> [Int] {
        let isBias = name.hasSuffix(".bias") ? 1 : 0
        let stem = name.hasSuffix(".bias") ? String(name.dropLast(5)) : String(name.dropLast(7))
        switch stem {
        case "token_embd": return [0, 0, 0, isBias]
        case "rope_freqs": return [1, 0, 0, isBias]
        case "output_norm": return [3, 0, 0, isBias]
        case "output": return [4, 0, 0, isBias]
        default:
            let parts = stem.split(separator: ".", maxSplits: 2)
            let layer = parts.count == 3 ? Int(parts[1]) ?? 0 : 0
            let module = parts.count == 3 ? String(parts[2]) : stem
            let position = layerNames.firstIndex { $0.gguf == module } ?? layerNames.count
            return [2, layer, position, isBias]
        }
    }
}
