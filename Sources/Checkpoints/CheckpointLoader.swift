import LoquatSupport
import Tensors

/// Why a path could not be opened as a checkpoint (the format readers have their own, more
/// specific errors for malformed files).
public enum CheckpointError: Error, CustomStringConvertible, Sendable {
    case notFound(path: String)
    /// PyTorch pickles can run arbitrary code when loaded; we never open them.
    case pickleRefused(path: String)
    case unrecognized(path: String, reason: String)
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such file or directory"
        case let .pickleRefused(path):
            return "\(path): PyTorch pickle checkpoints (.bin/.pt/.pth/.ckpt) are refused because unpickling can execute arbitrary code; convert the model to safetensors first (e.g. with transformers' save_pretrained(safe_serialization=True))"
        case let .unrecognized(path, reason): return "\(path): not a checkpoint Loquat can read: \(reason)"
        case let .unsupported(path, reason): return "\(path): \(reason)"
        }
    }

    public var path: String {
        switch self {
        case let .notFound(path), let .pickleRefused(path), let .unrecognized(path, _), let .unsupported(path, _): return path
        }
    }
}

/// Opens a checkpoint from a path: a `.safetensors` file, a Hugging Face directory (single file
/// or sharded with `model.safetensors.index.json`, plus `config.json`), or a `.gguf` file (or a
/// directory holding exactly one).
public enum CheckpointLoader {
    static let pickleExtensions = [".bin", ".pt", ".pth", ".ckpt", ".pkl"]

    public static func load(path: String) throws -> LoadedCheckpoint {
        switch FileSystem.kind(of: path) {
        case .missing:
            throw CheckpointError.notFound(path: path)
        case .file:
            return try loadFile(path)
        case .directory:
            return try loadDirectory(path)
        case .other:
            throw CheckpointError.unrecognized(path: path, reason: "not a regular file or directory")
        }
    }

    private static func loadFile(_ path: String) throws -> LoadedCheckpoint {
        let lowered = path.lowercased()
        if pickleExtensions.contains(where: lowered.hasSuffix) { throw CheckpointError.pickleRefused(path: path) }
        if lowered.hasSuffix(".gguf") { return try loadGGUF(path) }
        if lowered.hasSuffix(".safetensors") {
            let file = try SafetensorsFile(path: path)
            let config = try ModelConfig.load(directory: FileSystem.directoryName(of: path))
            return LoadedCheckpoint(format: .safetensors, path: path, sourceFiles: [path],
                                    architecture: config?.architecture.name ?? "unknown",
                                    tensors: file.tensors, config: config)
        }
        // Sniff the magic of files with other names.
        let magic = try MappedFile(path: path).withBytes { Array($0.prefix(4)) }
        if magic == Array("GGUF".utf8) { return try loadGGUF(path) }
        // Pickle protocol 2+ starts with 0x80; torch.save's zip container with "PK\x03\x04".
        if magic.first == 0x80 || magic == [0x50, 0x4B, 0x03, 0x04] {
            throw CheckpointError.pickleRefused(path: path)
        }
        throw CheckpointError.unrecognized(path: path, reason: "expected a .safetensors or .gguf file")
    }

    private static func loadDirectory(_ path: String) throws -> LoadedCheckpoint {
        let names = FileSystem.contents(of: path) ?? []
        if names.contains(where: { $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json" }) {
            let checkpoint = try SafetensorsCheckpoint.open(directory: path)
            let config = try ModelConfig.load(directory: path)
            return LoadedCheckpoint(format: .safetensors, path: path, sourceFiles: checkpoint.files,
                                    architecture: config?.architecture.name ?? "unknown",
                                    tensors: checkpoint.tensors, config: config)
        }
        let ggufFiles = names.filter { $0.lowercased().hasSuffix(".gguf") }
        if ggufFiles.count == 1 { return try loadGGUF(FileSystem.join(path, ggufFiles[0])) }
        if ggufFiles.count > 1 {
            throw CheckpointError.unrecognized(path: path, reason: "holds \(ggufFiles.count) GGUF files (\(ggufFiles.joined(separator: ", "))); name one")
        }
        if let pickle = names.first(where: { name in pickleExtensions.contains(where: name.lowercased().hasSuffix) }) {
            throw CheckpointError.pickleRefused(path: FileSystem.join(path, pickle))
        }
        throw CheckpointError.unrecognized(path: path, reason: "the directory has no .safetensors or .gguf file")
    }

    private static func loadGGUF(_ path: String) throws -> LoadedCheckpoint {
        let file = try GGUFFile(path: path)
        let architecture = file.architecture ?? "unknown"
        let tensors = try file.huggingFaceTensors()
        let tied = !tensors.contains { $0.name == "lm_head.weight" }
        let config = architecture == "llama"
            ? try ModelConfig(llama: file.llamaHyperparameters(), tieWordEmbeddings: tied,
                              bosTokenID: file.metadata["tokenizer.ggml.bos_token_id"]?.integer,
                              eosTokenIDs: file.metadata["tokenizer.ggml.eos_token_id"]?.integer.map { [$0] } ?? [])
            : nil
        return LoadedCheckpoint(format: .gguf, path: path, sourceFiles: [path], architecture: architecture,
                                tensors: tensors, config: config, ggufMetadata: file.metadata.entries)
    }
}
