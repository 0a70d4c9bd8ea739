import LoquatSupport
import Tensors

/// One safetensors file, memory-mapped and validated (formats.md §1). Tensors are windows into
/// the mapping, not copies: opening a file costs the header parse, and pages are read only when
/// a tensor's bytes are touched. Tensors keep the mapping alive on their own, so they may
/// outlive this value.
public struct SafetensorsFile: Sendable {
    public let path: String
    public let mapping: MappedFile
    public let header: SafetensorsHeader
    /// Tensors in data-offset order (the order of their bytes in the file).
    public let tensors: [Tensor]
    private let indexByName: [String: Int]

    /// The `__metadata__` map (`{"format": "pt"}` for files written by transformers).
    public var metadata: [String: String] { header.metadata }
    public var names: [String] { tensors.map(\.name) }
    /// The file's size in bytes.
    public var fileByteCount: Int { mapping.bytes.count }

    /// Maps and validates `path`. Errors are `SafetensorsError`s naming the file.
    public init(path: String) throws {
        let mapping: MappedFile
        do {
            mapping = try MappedFile(path: path)
        } catch let error as MappedFile.OpenError {
            throw SafetensorsError.unreadable(path: path, reason: error.reason)
        }
        try self.init(mapping: mapping)
    }

    /// Validates an existing mapping.
    public init(mapping: MappedFile) throws {
        let path = mapping.path
        let header = try SafetensorsHeader.parse(mapping.bytes, path: path)
        var tensors: [Tensor] = []
        tensors.reserveCapacity(header.entries.count)
        var indexByName: [String: Int] = [:]
        indexByName.reserveCapacity(header.entries.count)
        for entry in header.entries {
            guard let dtype = DType(safetensorsName: entry.dtypeName) else {
                throw SafetensorsError.unsupportedDType(path: path, tensor: entry.name, dtype: entry.dtypeName)
            }
            let storage = TensorStorage(mapped: mapping, byteOffset: header.dataByteOffset + entry.dataBegin,
                                        byteCount: entry.byteCount)
            // The header validation already proved shape × dtype = byte count.
            indexByName[entry.name] = tensors.count
            tensors.append(try Tensor(name: entry.name, dtype: dtype, shape: entry.shape, storage: storage))
        }
        self.path = path
        self.mapping = mapping
        self.header = header
        self.tensors = tensors
        self.indexByName = indexByName
    }

    /// The tensor called `name`, or nil.
    public func tensor(named name: String) -> Tensor? { indexByName[name].map { tensors[$0] } }

    /// The tensor called `name`, or `SafetensorsError.tensorNotFound`.
    public func requireTensor(named name: String) throws -> Tensor {
        guard let tensor = tensor(named: name) else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        return tensor
    }

    public subscript(name: String) -> Tensor? { tensor(named: name) }

    public func contains(_ name: String) -> Bool { indexByName[name] != nil }

    /// Whether `tensor`'s bytes lie inside this file's mapping (it was read from this file).
    public func holdsStorage(of tensor: Tensor) -> Bool {
        guard let start = tensor.storage.bytes.baseAddress, let base = mapping.bytes.baseAddress else { return false }
        return start >= base && start < base + mapping.bytes.count
    }
}
