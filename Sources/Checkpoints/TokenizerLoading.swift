import JSON
import LoquatSupport

/// What the forward pass, perplexity and calibration need from a tokenizer, whichever kind it is.
public protocol TextTokenizer: Sendable {
    /// Ids of `text`; with `addSpecialTokens`, the post-processor's tokens around it (BOS for
    /// Llama 3, `[CLS] … [SEP]` for BERT, nothing for SmolLM2).
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int32]
    func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String
    /// One more than the largest id.
    var vocabularySize: Int { get }
    /// The beginning-of-sequence id (`tokenizer.ggml.bos_token_id`, or the first id the
    /// post-processor puts in front), for llama.cpp-style scoring that starts every window with it.
    var beginningOfSequenceID: Int32? { get }
}

extension ByteLevelBPETokenizer: TextTokenizer {
    public var beginningOfSequenceID: Int32? { bosTokenID }
}

extension WordPieceTokenizer: TextTokenizer {
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        encode(text, addSpecialTokens: addSpecialTokens, maxLength: nil)
    }

    public var beginningOfSequenceID: Int32? { prefixIDs.first }
}

/// Finding and building the tokenizer of a model.
public enum TokenizerLoader {
    /// The tokenizer described by a tokenizer.json: byte-level BPE or WordPiece by `model.type`.
    public static func load(tokenizerJSONPath path: String) throws -> any TextTokenizer {
        let root = try MappedFile(path: path).withBytes { try JSON.parse($0) }
        switch root["model"]?["type"]?.stringValue {
        case "BPE"?: return try ByteLevelBPETokenizer(tokenizerJSON: root, path: path)
        case "WordPiece"?: return try WordPieceTokenizer(tokenizerJSON: root, path: path)
        case let other:
            throw TokenizerError(.unsupported, path: path, field: "model.type",
                                 "\(other ?? "missing") is neither BPE nor WordPiece")
        }
    }

    /// The tokenizer of a loaded checkpoint: from the GGUF's `tokenizer.ggml.*` keys, or from the
    /// tokenizer.json beside the safetensors (in the directory, or the file's directory).
    public static func load(for checkpoint: LoadedCheckpoint) throws -> any TextTokenizer {
        switch checkpoint.format {
        case .gguf:
            let metadata = try GGUFMetadata(checkpoint.ggufMetadata, path: checkpoint.path)
            return try ByteLevelBPETokenizer(ggufMetadata: metadata, path: checkpoint.path)
        case .safetensors:
            let directory = FileSystem.kind(of: checkpoint.path) == .directory
                ? checkpoint.path : FileSystem.directoryName(of: checkpoint.path)
            let path = FileSystem.join(directory, "tokenizer.json")
            guard FileSystem.kind(of: path) == .file else {
                throw TokenizerError(.unsupported, path: path, field: "", "no tokenizer.json beside the checkpoint")
            }
            return try load(tokenizerJSONPath: path)
        }
    }
}
