import Checkpoints
import JSON
import JSONRPC
import LoquatSupport
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// A save that is refused before anything is written.
struct SaveError: Error, CustomStringConvertible {
    let code: Int
    let title: String
    let path: String
    let reason: String
    var description: String { "\(path): \(reason)" }
}

extension LoquatServer {
    /// `model/save {model, path, format?, dtype?, overwrite?}` → `{model, path, format, files, tensorCount, byteCount}`.
    ///
    /// - safetensors: a path ending in `.safetensors` is one file; anything else is a Hugging
    ///   Face directory (`model.safetensors`, `config.json`, tokenizer files copied from the
    ///   source directory). `dtype` is F32, F16 or BF16; without it plain tensors keep their
    ///   dtype and GGUF block types are dequantized to F32.
    /// - gguf: one file; `dtype` F32, F16, Q8_0 or Q4_0 for matrices (1-D tensors stay F32).
    ///
    /// Every file is written atomically beside a `loquat.json` provenance record. An existing
    /// file is replaced only with `overwrite: true`, and a source file of a resident model
    /// never is.
    func saveModel(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        if case let .object(params)? = call.params, let handle = params["model"]?.stringValue,
           let model = try? workspace.model(handle), let quantized = model.quantized {
            return try saveQuantizedModel(call, context, model: model, quantized: quantized)
        }
        let params = try Params(call, allowed: ["model", "path", "format", "dtype", "overwrite"])
        let model = try workspace.model(try params.requiredString("model"))
        let path = try params.requiredString("path")
        let format = try params.optionalChoice("format", ["safetensors", "gguf"])
            ?? (path.lowercased().hasSuffix(".gguf") ? "gguf" : "safetensors")
        let overwrite = try params.optionalBool("overwrite") ?? false
        let progress = context.progress(title: "Saving \(model.handle)")
        progress.begin(message: path)
        defer { progress.end() }

        let plan: SavePlan
        if format == "gguf" {
            let dtypeName = try params.optionalChoice("dtype", GGUFWriter.weightTypes.map(\.rawValue)) ?? "F16"
            plan = SavePlan.gguf(path: path, dtype: DType(rawValue: dtypeName)!)
        } else {
            let dtypeName = try params.optionalChoice("dtype", ["F32", "F16", "BF16"])
            plan = SavePlan.safetensors(path: path, dtype: dtypeName.flatMap(DType.init(rawValue:)))
        }
        return try withCleanupOnFailure(plan, overwrite: overwrite) { written in
            try writeSave(plan, of: model, format: format, overwrite: overwrite, call: call,
                          context: context, progress: progress, written: &written)
        }
    }

    /// Refuses unsafe targets, then runs `write`, which appends every file it writes. A failed
    /// or cancelled save leaves nothing behind: files of this call go, and the directory too
    /// when this call made it. Replaced files were renamed over atomically, so an earlier
    /// version is never half-overwritten.
    func withCleanupOnFailure(_ plan: SavePlan, overwrite: Bool, _ write: (inout [String]) throws -> JSONValue) throws -> JSONValue {
        let path = plan.path
        try refuseUnsafeTargets(plan.outputFiles, overwrite: overwrite)
        let createdDirectory = plan.isDirectory && FileSystem.kind(of: path) == .missing
        let existedBefore = Set(plan.isDirectory ? (FileSystem.contents(of: path) ?? []).map { FileSystem.join(path, $0) }
                                                 : [path, plan.provenancePath].filter { FileSystem.kind(of: $0) != .missing })
        if plan.isDirectory { try FileSystem.createDirectory(path) }
        var written: [String] = []
        do {
            return try write(&written)
        } catch {
            for file in written where !existedBefore.contains(file) { unlink(file) }
            if createdDirectory { rmdir(path) }
            throw error
        }
    }

    /// Writes `model` per `plan`; `layers` is the per-layer report for `loquat.json`.
    func writeSave(_ plan: SavePlan, of model: ResidentModel, format: String, overwrite: Bool, call: IncomingCall,
                   context: RequestContext, progress: ProgressReporter, layers: [JSONValue] = [],
                   written: inout [String]) throws -> JSONValue {
        let checkpoint = model.checkpoint
        let path = plan.path
        let request: JSONValue = ["method": .string(call.method), "params": call.params ?? .null]
        switch plan {
        case let .safetensors(_, dtype):
            // GGUF-only tensors (llama.cpp's rope_freqs) have no Hugging Face counterpart.
            let tensors = try checkpoint.tensors.filter { !LlamaTensorNames.ggufOnlyNames.contains($0.name) }.enumerated().map { index, tensor in
                try context.checkCancellation()
                progress.report(message: tensor.name, completed: index, total: checkpoint.tensors.count)
                return try Self.convertForSafetensors(tensor, to: dtype)
            }
            try SafetensorsWriter.write(tensors: tensors, metadata: ["format": "pt"], to: plan.weightsPath, overwrite: overwrite)
            written.append(plan.weightsPath)
            try writeDirectoryCompanions(plan, of: checkpoint, overwrite: overwrite, extraConfig: nil, written: &written)
        case let .gguf(_, dtype):
            try context.checkCancellation()
            try checkpoint.writeGGUF(to: path, weightType: dtype, overwrite: overwrite)
            written.append(path)
        }
        try writeProvenance(plan, request: request, source: checkpoint, layers: layers, written: &written)
        return saveResult(model.handle, path: path, format: format, tensorCount: checkpoint.tensors.count, written: written)
    }

    /// `config.json` (plus `extraConfig` members) and the tokenizer files, for a directory save.
    func writeDirectoryCompanions(_ plan: SavePlan, of base: LoadedCheckpoint, overwrite: Bool, extraConfig: JSONObject?,
                                  written: inout [String]) throws {
        guard plan.isDirectory else { return }
        if case var .object(config)? = base.config?.jsonObject() {
            for (key, value) in extraConfig ?? JSONObject() { config[key] = value }
            let configPath = FileSystem.join(plan.path, "config.json")
            try AtomicFileWriter.write(try JSON.serialize(.object(config)) + [0x0A], to: configPath, overwrite: overwrite)
            written.append(configPath)
        }
        written += try copyCompanionFiles(of: base, into: plan.path, overwrite: overwrite)
    }

    func saveResult(_ handle: String, path: String, format: String, tensorCount: Int, written: [String]) -> JSONValue {
        let byteCount = Self.byteCount(of: written)
        return ["model": .string(handle), "path": .string(path), "format": .string(format),
                "files": .strings(written), "tensorCount": .int(tensorCount), "byteCount": .int(byteCount)]
    }

    /// The summed size of the files written (a file that cannot be opened counts 0).
    static func byteCount(of written: [String]) -> Int {
        written.reduce(0) { $0 + ((try? MappedFile(path: $1))?.withBytes(\.count) ?? 0) }
    }

    /// `loquat.json` (or `<file>.loquat.json`): the request, the source's path, format and
    /// content hash, the files written and the per-layer report. Appended to `written`.
    func writeProvenance(_ plan: SavePlan, request: JSONValue, source checkpoint: LoadedCheckpoint, layers: [JSONValue],
                         written: inout [String]) throws {
        let record: JSONValue = [
            "loquat": .string(Self.version),
            "request": request,
            "source": ["path": .string(checkpoint.path), "format": .string(checkpoint.format.rawValue),
                       "contentHash": .string(try ContentHash.ofFiles(checkpoint.sourceFiles))],
            "files": .strings(written.map(FileSystem.fileName(of:))),
            "layers": .array(layers),
        ]
        try AtomicFileWriter.write(try JSON.serialize(record) + [0x0A], to: plan.provenancePath, overwrite: true)
        written.append(plan.provenancePath)
    }

    /// Refuses outputs that exist (without overwrite) or that are the source of any resident
    /// model (ever): writing there would change bytes that mmap'd tensors point into.
    func refuseUnsafeTargets(_ outputs: [String], overwrite: Bool) throws {
        let sources = workspace.allModels().flatMap(\.checkpoint.sourceFiles)
        let sourceIdentities = sources.compactMap { source in FileSystem.identity(of: source).map { (source, $0) } }
        for output in outputs {
            if let identity = FileSystem.identity(of: output) {
                if let source = sourceIdentities.first(where: { $0.1 == identity }) {
                    throw SaveError(code: RPCError.Code.invalidParams, title: "Invalid params: path", path: output,
                                    reason: (source.0 == output ? "is" : "is the same file as \(source.0), which is")
                                        + " the source of a loaded model; inputs are never overwritten")
                }
                if !overwrite {
                    throw SaveError(code: RPCError.Code.ioError, title: "I/O error", path: output,
                                    reason: "file exists; pass \"overwrite\": true to replace it")
                }
            }
        }
    }

    /// Tokenizer and generation files travel with a Hugging Face directory: copied from an HF
    /// source, or converted from a GGUF source's `tokenizer.ggml.*` keys (byte-level BPE). A GGUF
    /// tokenizer that has no tokenizer.json form is logged and left out: the weights directory is
    /// still what was asked for.
    func copyCompanionFiles(of checkpoint: LoadedCheckpoint, into directory: String, overwrite: Bool) throws -> [String] {
        if checkpoint.format == .gguf {
            let files: [(name: String, bytes: [UInt8])]
            do {
                files = try checkpoint.tokenizerHuggingFaceFiles() ?? []
            } catch let error as TokenizerMetadataError where error.kind == .unsupported {
                Log.warning("saving without tokenizer files: \(error)")
                return []
            }
            var written: [String] = []
            for file in files {
                let target = FileSystem.join(directory, file.name)
                try AtomicFileWriter.write(file.bytes, to: target, overwrite: overwrite)
                written.append(target)
            }
            return written
        }
        let sourceDirectory = FileSystem.kind(of: checkpoint.path) == .directory
            ? checkpoint.path : FileSystem.directoryName(of: checkpoint.path)
        let names = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                     "generation_config.json", "merges.txt", "vocab.json"]
        var copied: [String] = []
        for name in names {
            let source = FileSystem.join(sourceDirectory, name)
            guard FileSystem.kind(of: source) == .file else { continue }
            let target = FileSystem.join(directory, name)
            if FileSystem.identity(of: source).map({ identity in FileSystem.identity(of: target).map { $0 == identity } ?? false }) == true { continue }
            let bytes = try MappedFile(path: source).withBytes { Array($0) }
            try AtomicFileWriter.write(bytes, to: target, overwrite: overwrite)
            copied.append(target)
        }
        return copied
    }

    static func convertForSafetensors(_ tensor: Tensor, to dtype: DType?) throws -> Tensor {
        let target: DType
        if let dtype, tensor.dtype.isFloatingPoint || tensor.dtype.isBlockQuantized {
            target = dtype
        } else if tensor.dtype.isBlockQuantized {
            target = .f32
        } else {
            return tensor
        }
        if target == tensor.dtype { return tensor }
        let values = try tensor.float32Values()
        let bytes = try values.withUnsafeBufferPointer { try Tensor.encode($0, as: target) }
        return try Tensor(name: tensor.name, dtype: target, shape: tensor.shape, storage: TensorStorage.bytes(bytes))
    }
}

/// Where a save writes.
enum SavePlan {
    case safetensors(path: String, dtype: DType?)
    case gguf(path: String, dtype: DType)

    var path: String {
        switch self { case let .safetensors(path, _), let .gguf(path, _): return path }
    }

    var isDirectory: Bool {
        if case .safetensors = self { return !path.lowercased().hasSuffix(".safetensors") }
        return false
    }

    var weightsPath: String { isDirectory ? FileSystem.join(path, "model.safetensors") : path }

    /// `loquat.json` in the directory, or `<file>.loquat.json` beside a single file.
    var provenancePath: String { isDirectory ? FileSystem.join(path, "loquat.json") : path + ".loquat.json" }

    var outputFiles: [String] {
        isDirectory ? [weightsPath, FileSystem.join(path, "config.json")] : [path]
    }
}
