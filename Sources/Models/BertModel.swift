import Foundation
import Tensors
import Checkpoints
import LinearAlgebra

/// Where a linear layer of a BERT encoder layer reads its input. q/k/v share `attentionInput`.
public enum BertLinearInputSite: Sendable, CaseIterable {
    case attentionInput, attentionOutput, intermediateInput, outputInput

    /// The HF module names (under `encoder.layer.N.`) that read this input.
    public var projections: [String] {
        switch self {
        case .attentionInput: return ["attention.self.query", "attention.self.key", "attention.self.value"]
        case .attentionOutput: return ["attention.output.dense"]
        case .intermediateInput: return ["intermediate.dense"]
        case .outputInput: return ["output.dense"]
        }
    }
}

/// Sees each linear layer's input `[T, in]` during a BERT forward pass: (layer index, site, input).
public typealias BertLinearInputObserver = (Int, BertLinearInputSite, Matrix<Float>) throws -> Void

/// One BERT encoder layer, decoded to Float32, weights `[out, in]` row-major. q/k/v are stacked
/// (`[Wq; Wk; Wv]`, `3·hidden` rows) so that one sgemm computes them.
public struct BertLayerWeights: Sendable {
    public var queryKeyValue: Matrix<Float>
    public var queryKeyValueBias: [Float]
    public var attentionOutput: Matrix<Float>
    public var attentionOutputBias: [Float]
    public var attentionNormWeight: [Float]
    public var attentionNormBias: [Float]
    public var intermediate: Matrix<Float>
    public var intermediateBias: [Float]
    public var output: Matrix<Float>
    public var outputBias: [Float]
    public var outputNormWeight: [Float]
    public var outputNormBias: [Float]
}

/// A post-LayerNorm BERT encoder (formats.md §6.4; all-MiniLM-L6-v2), every weight decoded to
/// Float32 at construction. Single sequences only: token type 0, positions `0..<T`, no padding.
public final class BertModel: Sendable {
    public let configuration: ModelConfig
    /// `[vocab, hidden]`, `[maxPositions, hidden]`, `[typeVocab, hidden]`.
    public let wordEmbeddings: Matrix<Float>
    public let positionEmbeddings: Matrix<Float>
    public let tokenTypeEmbeddings: Matrix<Float>
    public let embeddingNormWeight: [Float]
    public let embeddingNormBias: [Float]
    public let layers: [BertLayerWeights]

    public var hiddenSize: Int { configuration.hiddenSize }
    /// Positions the model can embed (`max_position_embeddings`, 512 for MiniLM).
    public var maxPositions: Int { positionEmbeddings.rowCount }

    /// Builds the model from HF tensor names (an optional `bert.` prefix is accepted). Refuses
    /// non-BERT configs, naming `model_type`.
    public init(checkpoint: LoadedCheckpoint) throws {
        guard let config = checkpoint.config else { throw LlamaModelError.missingConfiguration(path: checkpoint.path) }
        guard config.architecture == .bert else { throw LlamaModelError.unsupportedArchitecture(modelType: config.modelType) }
        guard config.hiddenActivation == "gelu" else {
            throw LlamaModelError.unsupportedConfiguration(field: "hidden_act", reason: "only \"gelu\" (exact erf GELU) is implemented, got \"\(config.hiddenActivation)\"")
        }
        let (h, inter) = (config.hiddenSize, config.intermediateSize)
        guard config.attentionHeadCount > 0, h % config.attentionHeadCount == 0 else {
            throw LlamaModelError.unsupportedConfiguration(field: "num_attention_heads", reason: "must divide hidden_size \(h)")
        }
        let prefix = checkpoint.tensor(named: "embeddings.word_embeddings.weight") == nil
            && checkpoint.tensor(named: "bert.embeddings.word_embeddings.weight") != nil ? "bert." : ""
        func tensor(_ name: String) throws -> Tensor {
            guard let tensor = checkpoint.tensor(named: prefix + name) else { throw LlamaModelError.missingTensor(name: prefix + name) }
            return tensor
        }
        func matrix(_ name: String, _ rows: Int?, _ columns: Int) throws -> Matrix<Float> {
            let t = try tensor(name)
            guard t.shape.count == 2, t.shape[1] == columns, rows == nil || t.shape[0] == rows! else {
                throw LlamaModelError.tensorShape(name: prefix + name, expected: [rows ?? -1, columns], actual: t.shape)
            }
            return try t.float32MatrixAnyDType()
        }
        func vector(_ name: String, _ count: Int) throws -> [Float] {
            let t = try tensor(name)
            guard t.shape == [count] else { throw LlamaModelError.tensorShape(name: prefix + name, expected: [count], actual: t.shape) }
            return try t.float32Values()
        }
        func stacked(_ parts: [Matrix<Float>]) -> Matrix<Float> {
            Matrix(rowCount: parts.reduce(0) { $0 + $1.rowCount }, columnCount: parts[0].columnCount,
                   values: parts.flatMap(\.values))
        }
        configuration = config
        wordEmbeddings = try matrix("embeddings.word_embeddings.weight", config.vocabularySize, h)
        positionEmbeddings = try matrix("embeddings.position_embeddings.weight", nil, h)
        tokenTypeEmbeddings = try matrix("embeddings.token_type_embeddings.weight", nil, h)
        embeddingNormWeight = try vector("embeddings.LayerNorm.weight", h)
        embeddingNormBias = try vector("embeddings.LayerNorm.bias", h)
        layers = try (0..<config.hiddenLayerCount).map { index in
            let p = "encoder.layer.\(index)."
            return BertLayerWeights(
                queryKeyValue: stacked([try matrix(p + "attention.self.query.weight", h, h),
                                        try matrix(p + "attention.self.key.weight", h, h),
                                        try matrix(p + "attention.self.value.weight", h, h)]),
                queryKeyValueBias: try vector(p + "attention.self.query.bias", h) + vector(p + "attention.self.key.bias", h)
                    + vector(p + "attention.self.value.bias", h),
                attentionOutput: try matrix(p + "attention.output.dense.weight", h, h),
                attentionOutputBias: try vector(p + "attention.output.dense.bias", h),
                attentionNormWeight: try vector(p + "attention.output.LayerNorm.weight", h),
                attentionNormBias: try vector(p + "attention.output.LayerNorm.bias", h),
                intermediate: try matrix(p + "intermediate.dense.weight", inter, h),
                intermediateBias: try vector(p + "intermediate.dense.bias", inter),
                output: try matrix(p + "output.dense.weight", h, inter),
                outputBias: try vector(p + "output.dense.bias", h),
                outputNormWeight: try vector(p + "output.LayerNorm.weight", h),
                outputNormBias: try vector(p + "output.LayerNorm.bias", h))
        }
    }

    func checkTokens(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else { throw LlamaModelError.emptyInput }
        guard tokens.count <= maxPositions else {
            throw LlamaModelError.unsupportedConfiguration(field: "max_position_embeddings",
                                                           reason: "\(tokens.count) tokens exceed the model's \(maxPositions) positions")
        }
        for (position, token) in tokens.enumerated() where token < 0 || token >= configuration.vocabularySize {
            throw LlamaModelError.tokenOutOfRange(position: position, token: token, vocabularySize: configuration.vocabularySize)
        }
    }
}
