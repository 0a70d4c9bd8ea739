import JSON
import LoquatSupport
import Tensors

/// The safetensors weights of a Hugging Face model directory (formats.md §1.5): either sharded,
///
/// ```
/// model.safetensors.index.json   {"metadata": {"total_size": …}, "weight_map": {tensor: shard file}}
/// model-00001-of-00002.safetensors
/// model-00002-of-00002.safetensors
/// ```
///
/// or one `model.safetensors` (or the only `*.safetensors` file of the directory, e.g. a PEFT
/// `adapter_model.safetensors`). With an index, only `weight_map` is relied on: the tensors are
/// exactly those it names, each taken from the shard it names; each shard is opened once.
///
/// The order of preference is transformers' (`from_pretrained` on a local directory):
/// `model.safetensors` first, then the index. transformers does not delete an old index when it
/// re-saves a model unsharded, so a directory can hold both; the single file is the newer one.
public struct SafetensorsCheckpoint: Sendable {
    public static let indexFileName = "model.safetensors.index.json"
    public static let singleFileName = "model.safetensors"

    public let directory: String
    /// The index file, when the checkpoint is sharded.
    public let indexPath: String?
    /// The opened files: shards in file-name order, or the single file.
    public let shards: [SafetensorsFile]
    /// Shard by shard (file-name order), each in data-offset order.
    public let tensors: [Tensor]
    private let indexByName: [String: Int]

    /// Paths of every file the tensors point into (a save must never overwrite these).
    public var files: [String] { shards.map(\.path) }

    /// Metadata of the first shard (every shard of a transformers save carries the same).
    public var metadata: [String: String] { shards.first?.metadata ?? [:] }

    public func tensor(named name: String) -> Tensor? { indexByName[name].map { tensors[$0] } }

    public func requireTensor(named name: String) throws -> Tensor {
        guard let tensor = tensor(named: name) else { throw SafetensorsError.tensorNotFound(path: indexPath ?? files.first ?? directory, tensor: name) }
        return tensor
    }

    /// Opens a `.safetensors` file, or a directory as `open(directory:)` does.
    public static func open(path: String) throws -> SafetensorsCheckpoint {
        FileSystem.kind(of: path) == .directory ? try open(directory: path) : try open(file: path)
    }

    /// One file on its own.
    public static func open(file path: String) throws -> SafetensorsCheckpoint {
        let file = try SafetensorsFile(path: path)
        return SafetensorsCheckpoint(directory: FileSystem.directoryName(of: path), indexPath: nil, shards: [file], tensors: file.tensors)
    }

    /// Prefers `model.safetensors`, then the index, then the only `*.safetensors` file.
    public static func open(directory: String) throws -> SafetensorsCheckpoint {
        let singlePath = FileSystem.join(directory, singleFileName)
        if FileSystem.kind(of: singlePath) == .file { return try open(file: singlePath) }
        let indexPath = FileSystem.join(directory, indexFileName)
        if FileSystem.kind(of: indexPath) == .file { return try openSharded(directory: directory, indexPath: indexPath) }
        guard let names = FileSystem.contents(of: directory) else {
            throw SafetensorsError.noCheckpoint(directory: directory, reason: "cannot read the directory")
        }
        let candidates = names.filter { $0.hasSuffix(".safetensors") && FileSystem.kind(of: FileSystem.join(directory, $0)) == .file }
        switch candidates.count {
        case 1:
            return try open(file: FileSystem.join(directory, candidates[0]))
        case 0:
            throw SafetensorsError.noCheckpoint(directory: directory, reason: "no \(indexFileName), \(singleFileName) or other .safetensors file")
        default:
            throw SafetensorsError.noCheckpoint(directory: directory,
                                                reason: "\(candidates.count) .safetensors files (\(candidates.joined(separator: ", "))) but no \(indexFileName) saying how they combine")
        }
    }

    private static func openSharded(directory: String, indexPath: String) throws -> SafetensorsCheckpoint {
        let weightMap = try readWeightMap(indexPath)
        // Open each named shard once, in file-name order.
        var shardByName: [String: SafetensorsFile] = [:]
        for shardName in Set(weightMap.map(\.shard)).sorted() {
            let shardPath = FileSystem.join(directory, shardName)
            guard FileSystem.kind(of: shardPath) == .file else {
                let tensor = weightMap.first { $0.shard == shardName }!.tensor
                throw SafetensorsError.shardMissing(index: indexPath, tensor: tensor, shard: shardName)
            }
            shardByName[shardName] = try SafetensorsFile(path: shardPath)
        }
        var wanted: [String: String] = [:]
        for (tensor, shard) in weightMap {
            guard shardByName[shard]!.contains(tensor) else {
                throw SafetensorsError.tensorMissingFromShard(index: indexPath, tensor: tensor, shard: shard)
            }
            wanted[tensor] = shard
        }
        let shardNames = shardByName.keys.sorted()
        var tensors: [Tensor] = []
        tensors.reserveCapacity(weightMap.count)
        for shardName in shardNames {
            tensors += shardByName[shardName]!.tensors.filter { wanted[$0.name] == shardName }
        }
        return SafetensorsCheckpoint(directory: directory, indexPath: indexPath,
                                     shards: shardNames.map { shardByName[$0]! }, tensors: tensors)
    }

    /// `weight_map` of an index, in file order. Shard names must be relative paths that stay
    /// inside the directory.
    static func readWeightMap(_ indexPath: String) throws -> [(tensor: String, shard: String)] {
        let root: JSONValue
        do {
            let mapping = try MappedFile(path: indexPath)
            root = try mapping.withBytes { try JSON.parse($0, maximumByteCount: SafetensorsHeader.maximumByteCount) }
        } catch let error as MappedFile.OpenError {
            throw SafetensorsError.invalidIndex(path: indexPath, reason: "cannot open: \(error.reason)")
        } catch let error as JSONError {
            throw SafetensorsError.invalidIndex(path: indexPath, reason: "not valid JSON: \(error)")
        }
        guard case let .object(object)? = root["weight_map"] else {
            throw SafetensorsError.invalidIndex(path: indexPath, reason: "\"weight_map\" must be an object of tensor name → shard file")
        }
        var result: [(tensor: String, shard: String)] = []
        result.reserveCapacity(object.count)
        for (tensor, value) in object {
            guard case let .string(shard) = value else {
                throw SafetensorsError.invalidIndex(path: indexPath, reason: "weight_map entry '\(tensor)' must be a file name, got \(value.typeName)")
            }
            let components = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard !shard.isEmpty, !shard.hasPrefix("/"), !components.contains("..") else {
                throw SafetensorsError.invalidIndex(path: indexPath, reason: "weight_map entry '\(tensor)' names \"\(shard)\", which is not a file inside the directory")
            }
            result.append((tensor: tensor, shard: shard))
        }
        return result
    }

    private init(directory: String, indexPath: String?, shards: [SafetensorsFile], tensors: [Tensor]) {
        self.directory = directory
        self.indexPath = indexPath
        self.shards = shards
        self.tensors = tensors
        var index: [String: Int] = [:]
        index.reserveCapacity(tensors.count)
        for (position, tensor) in tensors.enumerated() { index[tensor.name] = position }
        self.indexByName = index
    }
}
