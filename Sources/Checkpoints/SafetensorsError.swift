/// Everything that can go wrong reading or writing safetensors files and sharded checkpoint
/// directories. Each case carries the file it is about and, where there is one, the tensor,
/// and the description names both, so a message can be shown to a user as it is.
///
/// The reading cases follow the reference Rust reader's checks, in its order
/// (`SafeTensors::read_metadata`, formats.md §1.3): `headerTooSmall`, `headerTooLarge`,
/// `invalidHeaderLength`, `headerNotUTF8`, `invalidHeaderJSON` / `invalidHeaderStructure` /
/// `unknownDType`, then per tensor in data-offset order `invalidOffsets`, `sizeOverflow`,
/// `misalignedSlice`, `byteCountMismatch`, and finally `incompleteBuffer`.
public enum SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    // MARK: Reading one file

    /// The file could not be opened or mapped (missing, a directory, permissions).
    case unreadable(path: String, reason: String)
    /// Fewer than the 8 bytes of the header length.
    case headerTooSmall(path: String, fileByteCount: Int)
    /// The declared header length exceeds `SafetensorsHeader.maximumByteCount` (100,000,000).
    case headerTooLarge(path: String, headerByteCount: UInt64, limit: Int)
    /// `8 + N` runs past the end of the file.
    case invalidHeaderLength(path: String, headerByteCount: Int, fileByteCount: Int)
    /// The header bytes are not valid UTF-8.
    case headerNotUTF8(path: String)
    /// The header is not JSON at all (syntax error, duplicate key, trailing garbage).
    case invalidHeaderJSON(path: String, reason: String)
    /// The header is JSON but not of the safetensors shape; `tensor` is nil for the top level
    /// and `"__metadata__"` for the metadata map.
    case invalidHeaderStructure(path: String, tensor: String?, reason: String)
    /// A dtype string that safetensors does not define.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// In data-offset order, `data_offsets` do not start where the previous tensor ended
    /// (`expectedBegin`), or end before they begin: a gap or an overlap.
    case invalidOffsets(path: String, tensor: String, begin: Int, end: Int, expectedBegin: Int)
    /// The element count or bit count of a shape does not fit in 64 bits.
    case sizeOverflow(path: String, tensor: String, dtype: String, shape: [Int])
    /// A sub-byte dtype whose bits do not fill whole bytes.
    case misalignedSlice(path: String, tensor: String, dtype: String, shape: [Int])
    /// `end − begin` differs from what the shape and dtype need.
    case byteCountMismatch(path: String, tensor: String, dtype: String, shape: [Int], begin: Int, end: Int, expectedByteCount: Int)
    /// The tensors do not cover the data section exactly: trailing bytes (`dataEnd` smaller)
    /// or missing bytes (`dataEnd` larger than `dataByteCount`).
    case incompleteBuffer(path: String, dataEnd: Int, dataByteCount: Int)
    /// A valid safetensors dtype that Loquat has no `DType` for (F4, F6, F8_E8M0, FNUZ, C64).
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// Lookup of a tensor the file or checkpoint does not hold.
    case tensorNotFound(path: String, tensor: String)

    // MARK: Sharded directories

    /// No safetensors file to open in a directory, or several without an index.
    case noCheckpoint(directory: String, reason: String)
    /// `model.safetensors.index.json` is unreadable or malformed.
    case invalidIndex(path: String, reason: String)
    /// The index names a tensor in a shard that does not hold it.
    case tensorMissingFromShard(index: String, tensor: String, shard: String)
    /// The index names a shard file that does not exist.
    case shardMissing(index: String, tensor: String, shard: String)

    // MARK: Writing

    /// Two input tensors share a name.
    case duplicateTensorName(path: String, tensor: String)
    /// The output path is the file an input tensor is mapped from.
    case wouldOverwriteInput(path: String, tensor: String)
    /// Creating, writing or renaming the output failed (also: it exists and overwrite is off).
    case writeFailed(path: String, reason: String)

    /// The file (or directory, or index) the error is about.
    public var path: String {
        switch self {
        case let .unreadable(path, _), let .headerTooSmall(path, _), let .headerTooLarge(path, _, _),
             let .invalidHeaderLength(path, _, _), let .headerNotUTF8(path), let .invalidHeaderJSON(path, _),
             let .invalidHeaderStructure(path, _, _), let .unknownDType(path, _, _), let .invalidOffsets(path, _, _, _, _),
             let .sizeOverflow(path, _, _, _), let .misalignedSlice(path, _, _, _), let .byteCountMismatch(path, _, _, _, _, _, _),
             let .incompleteBuffer(path, _, _), let .unsupportedDType(path, _, _), let .tensorNotFound(path, _),
             let .noCheckpoint(path, _), let .invalidIndex(path, _), let .tensorMissingFromShard(path, _, _),
             let .shardMissing(path, _, _), let .duplicateTensorName(path, _), let .wouldOverwriteInput(path, _),
             let .writeFailed(path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot open: \(reason)"
        case let .headerTooSmall(path, fileByteCount):
            return "\(path): file of \(fileByteCount) bytes is too small for the 8-byte header length"
        case let .headerTooLarge(path, headerByteCount, limit):
            return "\(path): header length \(headerByteCount) exceeds the limit of \(limit) bytes"
        case let .invalidHeaderLength(path, headerByteCount, fileByteCount):
            return "\(path): header of \(headerByteCount) bytes does not fit in a file of \(fileByteCount) bytes"
        case let .headerNotUTF8(path):
            return "\(path): header is not valid UTF-8"
        case let .invalidHeaderJSON(path, reason):
            return "\(path): header is not valid JSON: \(reason)"
        case let .invalidHeaderStructure(path, tensor, reason):
            if let tensor { return "\(path): header entry '\(tensor)': \(reason)" }
            return "\(path): header: \(reason)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)': unknown dtype \"\(dtype)\""
        case let .invalidOffsets(path, tensor, begin, end, expectedBegin):
            let problem = end < begin ? "end before begin"
                : begin > expectedBegin ? "gap of \(begin - expectedBegin) bytes before it"
                : "overlaps the previous tensor"
            return "\(path): tensor '\(tensor)': data_offsets [\(begin),\(end)] should begin at \(expectedBegin) (\(problem))"
        case let .sizeOverflow(path, tensor, dtype, shape):
            return "\(path): tensor '\(tensor)': size of \(dtype) \(Self.render(shape)) overflows"
        case let .misalignedSlice(path, tensor, dtype, shape):
            return "\(path): tensor '\(tensor)': \(dtype) \(Self.render(shape)) does not fill a whole number of bytes"
        case let .byteCountMismatch(path, tensor, dtype, shape, begin, end, expected):
            return "\(path): tensor '\(tensor)': data_offsets [\(begin),\(end)] hold \(end - begin) bytes but \(dtype) \(Self.render(shape)) needs \(expected)"
        case let .incompleteBuffer(path, dataEnd, dataByteCount):
            let problem = dataEnd < dataByteCount ? "\(dataByteCount - dataEnd) trailing bytes"
                : "\(dataEnd - dataByteCount) bytes missing"
            return "\(path): tensors end at data offset \(dataEnd) but the data section holds \(dataByteCount) bytes (\(problem))"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)': dtype \(dtype) is valid safetensors but not supported by Loquat"
        case let .tensorNotFound(path, tensor):
            return "\(path): no tensor '\(tensor)'"
        case let .noCheckpoint(directory, reason):
            return "\(directory): \(reason)"
        case let .invalidIndex(path, reason):
            return "\(path): \(reason)"
        case let .tensorMissingFromShard(index, tensor, shard):
            return "\(index): tensor '\(tensor)' is mapped to \(shard), which does not hold it"
        case let .shardMissing(index, tensor, shard):
            return "\(index): tensor '\(tensor)' is mapped to \(shard), which does not exist"
        case let .duplicateTensorName(path, tensor):
            return "\(path): tensor name '\(tensor)' appears more than once"
        case let .wouldOverwriteInput(path, tensor):
            return "\(path): refusing to overwrite the file that tensor '\(tensor)' is read from"
        case let .writeFailed(path, reason):
            return "\(path): \(reason)"
        }
    }

    /// `[2,2]`, as the header writes shapes.
    static func render(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ",") + "]" }
}
