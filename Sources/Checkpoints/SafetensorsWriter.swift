import LoquatSupport
import Tensors

/// Writes safetensors files byte-compatible with the reference writer (layout in
/// `SafetensorsLayout`, formats.md §1.4) and sharded Hugging Face directories (§1.5).
///
/// Every file is written atomically (temporary sibling, fsync, rename); an existing file is
/// replaced only with `overwrite: true`, and never when an input tensor is mapped from it.
/// Tensor bytes are streamed from their storage (mapped or owned) without an intermediate copy.
public enum SafetensorsWriter {
    /// What transformers and PEFT write; `format` is added when the caller's map lacks it.
    public static let defaultMetadata: [String: String] = ["format": "pt"]
    /// huggingface_hub's default `max_shard_size` ("5GB" = 5·10⁹ bytes).
    public static let defaultMaximumShardByteCount = 5_000_000_000

    /// Writes one file. Returns its layout (offsets and header) for reports.
    @discardableResult
    public static func write(tensors: [Tensor], metadata: [String: String] = defaultMetadata,
                             to path: String, overwrite: Bool) throws -> SafetensorsLayout {
        var metadata = metadata
        if metadata["format"] == nil { metadata["format"] = "pt" }
        let layout = try SafetensorsLayout(tensors: tensors, metadata: metadata, path: path)
        if overwrite { try SafetensorsInputGuard.check(writing: path, tensors: tensors) }
        var writer: AtomicFileWriter
        do {
            writer = try AtomicFileWriter(path: path, overwrite: overwrite)
        } catch let error as AtomicFileWriter.WriteError {
            throw SafetensorsError.writeFailed(path: path, reason: error.reason)
        }
        do {
            try writer.write(layout.lengthPrefix)
            try writer.write(layout.header)
            for tensor in layout.tensors where tensor.byteCount > 0 {
                try writer.write(tensor.storage.bytes)
            }
            try writer.commit()
        } catch let error as AtomicFileWriter.WriteError {
            writer.abandon()
            throw SafetensorsError.writeFailed(path: path, reason: error.reason)
        }
        return layout
    }

    /// The complete file as bytes (tests, small adapters).
    public static func serialize(tensors: [Tensor], metadata: [String: String] = defaultMetadata) throws -> [UInt8] {
        var metadata = metadata
        if metadata["format"] == nil { metadata["format"] = "pt" }
        let layout = try SafetensorsLayout(tensors: tensors, metadata: metadata, path: "<memory>")
        var bytes = layout.lengthPrefix + layout.header
        bytes.reserveCapacity(layout.fileByteCount)
        for tensor in layout.tensors { bytes.append(contentsOf: tensor.storage.bytes) }
        return bytes
    }

    // MARK: Sharded directories

    /// The shards `writeSharded` would make: huggingface_hub's greedy split in input order — a
    /// tensor larger than the limit gets a shard of its own; otherwise a new shard starts when
    /// the next tensor would push the current one over the limit.
    public static func planShards(_ tensors: [Tensor], maximumShardByteCount: Int) -> [[Tensor]] {
        var shards: [[Tensor]] = []
        var current: [Tensor] = []
        var currentByteCount = 0
        for tensor in tensors {
            if tensor.byteCount > maximumShardByteCount {
                shards.append([tensor])
                continue
            }
            if currentByteCount + tensor.byteCount > maximumShardByteCount && !current.isEmpty {
                shards.append(current)
                current = []
                currentByteCount = 0
            }
            current.append(tensor)
            currentByteCount += tensor.byteCount
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// `model-00001-of-00003.safetensors` (1-based, five digits), or `model.safetensors` alone.
    public static func shardFileName(index: Int, count: Int) -> String {
        guard count > 1 else { return SafetensorsCheckpoint.singleFileName }
        func fiveDigits(_ value: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
        }
        return "model-\(fiveDigits(index + 1))-of-\(fiveDigits(count)).safetensors"
    }

    /// Writes `tensors` into `directory` (created if needed) as transformers' `save_pretrained`
    /// does: one `model.safetensors` when everything fits in one shard, otherwise numbered shards
    /// plus `model.safetensors.index.json` (`metadata.total_size` = sum of tensor bytes,
    /// `weight_map` sorted by name, Python `json.dumps(indent=2, sort_keys=True)` formatting).
    /// Refuses to shard into a directory holding a `model.safetensors`, which loaders would pick
    /// instead of the index. Returns the paths written, index last.
    @discardableResult
    public static func writeSharded(tensors: [Tensor], metadata: [String: String] = defaultMetadata, to directory: String,
                                    maximumShardByteCount: Int = defaultMaximumShardByteCount,
                                    overwrite: Bool) throws -> [String] {
        precondition(maximumShardByteCount > 0)
        var names = Set<String>()
        for tensor in tensors where !names.insert(tensor.name).inserted {
            throw SafetensorsError.duplicateTensorName(path: directory, tensor: tensor.name)
        }
        do {
            try FileSystem.createDirectory(directory)
        } catch let error as AtomicFileWriter.WriteError {
            throw SafetensorsError.writeFailed(path: directory, reason: error.reason)
        }
        let shards = planShards(tensors, maximumShardByteCount: maximumShardByteCount)
        let fileNames = shards.indices.map { shardFileName(index: $0, count: shards.count) }
        // Check every target before writing any, so a refusal leaves nothing half done.
        var targets = fileNames.map { FileSystem.join(directory, $0) }
        if shards.count > 1 { targets.append(FileSystem.join(directory, SafetensorsCheckpoint.indexFileName)) }
        let single = FileSystem.join(directory, SafetensorsCheckpoint.singleFileName)
        if shards.count > 1 && FileSystem.kind(of: single) != .missing {
            throw SafetensorsError.writeFailed(path: single, reason: "an existing \(SafetensorsCheckpoint.singleFileName) would be loaded instead of the new shards (transformers prefers it to the index); remove it first")
        }
        for target in targets {
            if !overwrite && FileSystem.kind(of: target) != .missing {
                throw SafetensorsError.writeFailed(path: target, reason: "file exists; pass \"overwrite\": true to replace it")
            }
            try SafetensorsInputGuard.check(writing: target, tensors: tensors)
        }
        for (shard, path) in zip(shards, targets) {
            try write(tensors: shard, metadata: metadata, to: path, overwrite: overwrite)
        }
        guard shards.count > 1 else { return targets }
        var weightMap: [(tensor: String, file: String)] = []
        for (shard, fileName) in zip(shards, fileNames) {
            weightMap += shard.map { (tensor: $0.name, file: fileName) }
        }
        let totalByteCount = tensors.reduce(0) { $0 + $1.byteCount }
        let index = indexText(totalByteCount: totalByteCount, weightMap: weightMap)
        do {
            try AtomicFileWriter.write(index, to: targets.last!, overwrite: overwrite)
        } catch let error as AtomicFileWriter.WriteError {
            throw SafetensorsError.writeFailed(path: targets.last!, reason: error.reason)
        }
        return targets
    }

    /// The index as Python's `json.dumps(index, indent=2, sort_keys=True) + "\n"` prints it
    /// (keys sorted by code point, non-ASCII escaped as `\uXXXX`).
    static func indexText(totalByteCount: Int, weightMap: [(tensor: String, file: String)]) -> [UInt8] {
        let sorted = weightMap.sorted { Array($0.tensor.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.tensor.unicodeScalars.map(\.value)) }
        var text = "{\n  \"metadata\": {\n    \"total_size\": \(totalByteCount)\n  },\n  \"weight_map\": {"
        for (position, entry) in sorted.enumerated() {
            text += position == 0 ? "\n" : ",\n"
            text += "    " + pythonJSONString(entry.tensor) + ": " + pythonJSONString(entry.file)
        }
        text += sorted.isEmpty ? "}\n}\n" : "\n  }\n}\n"
        return Array(text.utf8)
    }

    /// A string literal as Python's json module writes it with `ensure_ascii=True`.
    static func pythonJSONString(_ string: String) -> String {
        var result = "\""
        for unit in string.utf16 {
            switch unit {
            case 0x22: result += "\\\""
            case 0x5C: result += "\\\\"
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0x08: result += "\\b"
            case 0x0C: result += "\\f"
            case 0x20..<0x7F: result.unicodeScalars.append(Unicode.Scalar(unit)!)
            default:
                let hex = String(unit, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return result + "\""
    }
}
