import LoquatSupport
import Tensors

/// Writes a `llama` GGUF v3 file that llama.cpp loads (formats.md §2.1–2.3, §2.7–2.9; gguf-py
/// `gguf_writer.py` for the byte order of things).
///
/// - Tensors come in with HF names in PyTorch order; they are renamed, `q_proj` / `k_proj` rows
///   permuted, and put in a canonical order (`LlamaTensorNames.ggufTensors`).
/// - Storage: 1-D tensors are F32; other tensors take `weightType`, except that a block type
///   falls back to F16 for rows (`ne[0]`) that are not a multiple of its block size.
/// - Metadata: `general.architecture`, `general.type`, the `llama.*` hyperparameters,
///   `general.file_type`, `general.quantization_version = 2` when any tensor is block-quantized,
///   `general.alignment` when not 32, then `extraMetadata` in its order minus the keys written
///   here (and minus `split.*`), each with the exact type gguf-py uses.
/// - Layout: header, KVs, tensor infos with sequential offsets, zero padding to the alignment,
///   then each tensor's bytes padded to the alignment (the last one too).
/// The file is written to a temporary sibling, fsynced and renamed into place; output is
/// deterministic for the same inputs.
public struct GGUFWriter: Sendable {
    public var hyperparameters: LlamaHyperparameters
    public var weightType: DType
    public var extraMetadata: [GGUFKeyValue]
    public var alignment: Int
    /// Set for a llama.cpp LoRA adapter file: `general.type = adapter`, `adapter.type = lora`,
    /// `adapter.lora.alpha` (FLOAT32) and no model hyperparameters (formats.md §2.10).
    public var adapterAlpha: Float?

    /// Types accepted as `weightType`.
    public static let weightTypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1,
                                              .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    public init(hyperparameters: LlamaHyperparameters, weightType: DType, extraMetadata: [GGUFKeyValue] = [],
                alignment: Int = 32) {
        self.hyperparameters = hyperparameters
        self.weightType = weightType
        self.extraMetadata = extraMetadata
        self.alignment = alignment
    }

    /// Renames/permutes HF tensors and writes them to `path`.
    public func write(huggingFaceTensors tensors: [Tensor], to path: String, overwrite: Bool) throws {
        let gguf = try LlamaTensorNames.ggufTensors(fromHuggingFace: tensors, hyperparameters: hyperparameters, path: path)
        try write(ggufTensors: gguf, to: path, overwrite: overwrite)
    }

    /// Writes tensors that already carry GGUF names and GGUF row order, in the given order.
    public func write(ggufTensors tensors: [Tensor], to path: String, overwrite: Bool) throws {
        let plan = try layout(for: tensors, path: path)
        let header = try headerBytes(plan: plan, path: path)
        var file: AtomicFileWriter
        do {
            file = try AtomicFileWriter(path: path, overwrite: overwrite)
        } catch {
            throw GGUFError(path: path, .writeFailed(reason: "\(error)"))
        }
        do {
            try file.write(header)
            for (tensor, info) in zip(tensors, plan) {
                let bytes = try convertedBytes(tensor, to: info.dtype, path: path)
                try file.write(bytes)
                let padding = try CheckedArithmetic.alignUp(bytes.count, to: alignment) - bytes.count
                if padding > 0 { try file.write([UInt8](repeating: 0, count: padding)) }
            }
            try file.commit()
        } catch {
            file.abandon()
            if let error = error as? GGUFError { throw error }
            throw GGUFError(path: path, .writeFailed(reason: "\(error)"))
        }
    }

    /// The storage type of each tensor and its offset in the data section.
    public func layout(for tensors: [Tensor], path: String = "<layout>") throws -> [GGUFTensorInfo] {
        guard Self.weightTypes.contains(weightType) else {
            throw GGUFError(path: path, .cannotWrite(tensor: "*", detail: "weight type \(weightType.rawValue) is not writable"))
        }
        guard alignment > 0, alignment & (alignment - 1) == 0, UInt32(exactly: alignment) != nil else {
            throw GGUFError(path: path, .badAlignment(detail: "\(alignment) is not a power of two"))
        }
        var infos: [GGUFTensorInfo] = []
        var seen = Set<String>()
        var offset = 0
        for tensor in tensors {
            guard tensor.name.utf8.count < GGUFParser.maximumNameByteCount else {
                throw GGUFError(path: path, .tensorNameTooLong(tensor.name))
            }
            guard seen.insert(tensor.name).inserted else { throw GGUFError(path: path, .duplicateTensorName(tensor.name)) }
            guard (1...Int(GGUFParser.maximumDimensionCount)).contains(tensor.shape.count) else {
                throw GGUFError(path: path, .cannotWrite(tensor: tensor.name, detail: "rank \(tensor.shape.count) is not 1…4"))
            }
            let dtype = storageType(of: tensor)
            let ne = Array(tensor.shape.reversed())
            let byteCount: Int
            do {
                byteCount = try dtype.byteCount(elementCount: try CheckedArithmetic.product(ne, "elements of \(tensor.name)"))
                infos.append(GGUFTensorInfo(name: tensor.name, dtype: dtype, ne: ne, dataByteOffset: offset, byteCount: byteCount))
                offset = try CheckedArithmetic.alignUp(try CheckedArithmetic.add(offset, byteCount, "data"), to: alignment)
            } catch {
                throw GGUFError(path: path, .cannotWrite(tensor: tensor.name, detail: "\(error)"))
            }
        }
        return infos
    }

    /// F32 for 1-D tensors; `weightType` for the rest. Rows that are not whole blocks fall back
    /// as llama.cpp's quantizer does (formats.md §2.7): Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0,
    /// and Q2_K/Q3_K → Q4_0 (llama.cpp uses IQ4_NL there, which has no encoder here); F16 when
    /// not even 32-element blocks fit. SmolLM2's 576-wide rows take the fallback; only ffn_down
    /// (1536) is a K-quant.
    public func storageType(of tensor: Tensor) -> DType {
        if tensor.shape.count <= 1 { return .f32 }
        let rowLength = tensor.shape.last ?? 1
        if rowLength % weightType.blockSize == 0 { return weightType }
        let fallback: DType
        switch weightType {
        case .q4_K: fallback = .q5_0
        case .q5_K: fallback = .q5_1
        case .q6_K: fallback = .q8_0
        case .q2_K, .q3_K: fallback = .q4_0
        default: return .f16
        }
        return rowLength % fallback.blockSize == 0 ? fallback : .f16
    }

    /// The complete metadata, in the order it is written.
    public func metadata(plan: [GGUFTensorInfo], path: String = "<metadata>") throws -> GGUFMetadata {
        if let adapterAlpha {
            var entries = [GGUFKeyValue("general.architecture", .string("llama")), GGUFKeyValue("general.type", .string("adapter")),
                           GGUFKeyValue("adapter.type", .string("lora")), GGUFKeyValue("adapter.lora.alpha", .float32(adapterAlpha))]
            if alignment != GGUFParser.defaultAlignment { entries.append(GGUFKeyValue("general.alignment", .uint32(UInt32(alignment)))) }
            let owned = Set(entries.map(\.key))
            entries += extraMetadata.filter { !owned.contains($0.key) }
            return try GGUFMetadata(entries, path: path)
        }
        var entries = [
            GGUFKeyValue("general.architecture", .string("llama")),
            GGUFKeyValue("general.type", .string("model")),
        ]
        entries += try hyperparameters.ggufMetadata()
        guard let fileType = GGUFTensorType.fileType(forWeightType: weightType) else {
            throw GGUFError(path: path, .cannotWrite(tensor: "*", detail: "no general.file_type for \(weightType.rawValue)"))
        }
        entries.append(GGUFKeyValue("general.file_type", .uint32(fileType)))
        if plan.contains(where: { $0.dtype.isBlockQuantized }) {
            entries.append(GGUFKeyValue("general.quantization_version", .uint32(2)))
        }
        if alignment != GGUFParser.defaultAlignment {
            entries.append(GGUFKeyValue("general.alignment", .uint32(UInt32(alignment))))
        }
        let owned = Set(entries.map(\.key)).union(Self.ownedKeys)
        entries += extraMetadata.filter { !owned.contains($0.key) && !$0.key.hasPrefix("split.") }
        return try GGUFMetadata(entries, path: path)
    }

    /// Keys this writer decides, never taken from `extraMetadata`.
    static let ownedKeys: Set<String> = [
        "general.architecture", "general.type", "general.file_type", "general.quantization_version",
        "general.alignment", "llama.vocab_size", "llama.context_length", "llama.embedding_length",
        "llama.block_count", "llama.feed_forward_length", "llama.rope.dimension_count",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon",
        "llama.rope.freq_base", "llama.attention.key_length", "llama.attention.value_length",
    ]

    /// Header, KVs, tensor infos and the padding before the data section.
    func headerBytes(plan: [GGUFTensorInfo], path: String) throws -> [UInt8] {
        let metadata = try metadata(plan: plan, path: path)
        var writer = ByteWriter()
        writer.write(GGUFParser.magic)
        writer.write(UInt32(3))
        writer.write(UInt64(plan.count))
        writer.write(UInt64(metadata.count))
        for entry in metadata.entries {
            GGUFValue.writeString(entry.key, into: &writer)
            writer.write(entry.value.type.rawValue)
            entry.value.writePayload(into: &writer)
        }
        for info in plan {
            GGUFValue.writeString(info.name, into: &writer)
            writer.write(UInt32(info.ne.count))
            for extent in info.ne { writer.write(UInt64(extent)) }
            writer.write(info.typeID)
            writer.write(UInt64(info.dataByteOffset))
        }
        writer.pad(toMultipleOf: alignment)
        return writer.bytes
    }

    /// `tensor`'s bytes in `dtype`: passed through when the type already matches, otherwise
    /// decoded to Float32 and encoded row by row.
    func convertedBytes(_ tensor: Tensor, to dtype: DType, path: String) throws -> [UInt8] {
        if tensor.dtype == dtype { return Array(tensor.storage.bytes) }
        do {
            let values = try GGMLBlockCodec.decode(tensor)
            let rowLength = tensor.shape.last ?? 1
            return try GGMLBlockCodec.encode(values, rowCount: values.count / max(rowLength, 1),
                                             columnCount: rowLength, as: dtype)
        } catch {
            throw GGUFError(path: path, .cannotWrite(tensor: tensor.name, detail: "\(error)"))
        }
    }
}
