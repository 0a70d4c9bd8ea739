import LoquatSupport
import Tensors

/// A GGUF v2/v3 file opened read-only through `mmap` (formats.md §2; ggml `docs/gguf.md`,
/// `src/gguf.cpp`).
///
/// Layout: `u32 magic "GGUF"`, `u32 version`, `u64 tensor_count`, `u64 kv_count`, the KVs, the
/// tensor infos, zero padding to `alignment`, then the tensor data, each tensor at its aligned
/// offset. Opening validates everything llama.cpp validates; tensors are then windows into the
/// mapping (no copy), in PyTorch order (`shape` = `ne` reversed), with their GGUF names.
public struct GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: GGUFMetadata
    public let tensorInfos: [GGUFTensorInfo]
    /// `general.alignment`, 32 when absent.
    public let alignment: Int
    /// File offset of the data section.
    public let dataByteOffset: Int
    public let file: MappedFile
    private let infoIndexByName: [String: Int]

    /// Maps and validates the file at `path`.
    public init(path: String) throws {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let failure as MappedFile.OpenError {
            throw GGUFError(path: path, .cannotOpen(reason: failure.reason))
        }
        try self.init(mapped: file)
    }

    /// Validates an already mapped file.
    public init(mapped file: MappedFile) throws {
        var parser = GGUFParser(path: file.path, bytes: file.bytes)
        let header = try parser.readHeader()
        let metadata = try parser.readMetadata(count: header.keyValueCount)
        let alignment = try parser.alignment(in: metadata)
        let rawInfos = try parser.readTensorInfos(count: header.tensorCount)
        let dataStart: Int
        do {
            dataStart = try CheckedArithmetic.alignUp(parser.offset, to: alignment)
        } catch {
            throw GGUFError(path: file.path, .sizeOverflow(what: "data section start"))
        }
        let infos = try parser.checkLayout(rawInfos, alignment: alignment, dataStart: dataStart,
                                           fileByteCount: file.bytes.count)
        self.path = file.path
        self.file = file
        self.version = header.version
        self.metadata = metadata
        self.alignment = alignment
        self.dataByteOffset = dataStart
        self.tensorInfos = infos
        var index: [String: Int] = [:]
        for (position, info) in infos.enumerated() { index[info.name] = position }
        self.infoIndexByName = index
    }

    public var tensorNames: [String] { tensorInfos.map(\.name) }

    /// `general.architecture`, e.g. `llama`.
    public var architecture: String? { metadata["general.architecture"]?.string }

    public func tensorInfo(named name: String) -> GGUFTensorInfo? {
        infoIndexByName[name].map { tensorInfos[$0] }
    }

    /// The tensor called `name` (GGUF spelling), backed by the mapping.
    public func tensor(named name: String) throws -> Tensor {
        guard let info = tensorInfo(named: name) else { throw GGUFError(path: path, .tensorNotFound(name)) }
        return try tensor(for: info)
    }

    /// Every tensor in file order, backed by the mapping.
    public func tensors() throws -> [Tensor] {
        try tensorInfos.map { try tensor(for: $0) }
    }

    func tensor(for info: GGUFTensorInfo) throws -> Tensor {
        let storage = TensorStorage(mapped: file, byteOffset: dataByteOffset + info.dataByteOffset,
                                    byteCount: info.byteCount)
        return try Tensor(name: info.name, dtype: info.dtype, shape: info.shape, storage: storage)
    }

    /// Raw bytes of a tensor inside the mapping.
    public func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataByteOffset + info.dataByteOffset
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
    }

    /// Looks up `key` and checks its type, for strict readers of well-known keys.
    public func value(_ key: String, as type: GGUFValueType) throws -> GGUFValue? {
        guard let value = metadata[key] else { return nil }
        guard value.type == type else {
            throw GGUFError(path: path, .wrongKeyType(key: key, found: value.typeName, expected: type.name))
        }
        return value
    }
}
