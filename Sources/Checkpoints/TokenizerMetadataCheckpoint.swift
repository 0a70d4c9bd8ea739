import LoquatSupport

extension LoadedCheckpoint {
    /// The directory a Hugging Face checkpoint's companion files live in (the path itself, or
    /// the directory of a lone `.safetensors` file).
    var huggingFaceDirectory: String {
        FileSystem.kind(of: path) == .directory ? path : FileSystem.directoryName(of: path)
    }

    /// GGUF `tokenizer.*` keys for exporting this checkpoint to GGUF (formats.md §9, "HF
    /// safetensors → GGUF", step 2): for a safetensors source, converted from the tokenizer
    /// files beside it by `TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory:)`; nil for
    /// a GGUF source (whose own `tokenizer.*` keys are carried over) or when there is no
    /// tokenizer.json. Pass the model's vocabulary size (embedding rows) so the token list
    /// matches `token_embd`. Throws `TokenizerMetadataError` for a tokenizer GGUF cannot hold.
    public func tokenizerGGUFKeyValues(vocabularySize: Int?) throws -> [GGUFKeyValue]? {
        guard format == .safetensors else { return nil }
        return try TokenizerMetadata.ggufKeyValues(fromHuggingFaceDirectory: huggingFaceDirectory,
                                                   vocabularySize: vocabularySize)
    }

    /// tokenizer.json, tokenizer_config.json and special_tokens_map.json for saving this
    /// checkpoint as a Hugging Face directory (formats.md §9, "GGUF → HF safetensors", step 1):
    /// for a GGUF source with a `gpt2` tokenizer, made by
    /// `TokenizerMetadata.huggingFaceFiles(fromGGUF:path:)`; nil for a safetensors source (its
    /// files are copied as they are) or a GGUF without a `gpt2` tokenizer.
    public func tokenizerHuggingFaceFiles() throws -> [(name: String, bytes: [UInt8])]? {
        guard format == .gguf else { return nil }
        return try TokenizerMetadata.huggingFaceFiles(fromGGUF: GGUFMetadata(ggufMetadata, path: path), path: path)
    }
}
