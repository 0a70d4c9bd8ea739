import LoquatSupport
import Tensors

/// Everything that can be wrong with a GGUF file, read or written. Each error names the file and
/// what was wrong (key, tensor, offset) so that a client sees which input to fix.
///
/// The checks mirror llama.cpp's reader (`ggml/src/gguf.cpp`, formats.md §2.3): a file we accept
/// is a file llama.cpp accepts, and a file we write passes the same checks.
public struct GGUFError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case cannotOpen(reason: String)
        case badMagic(UInt32)
        case unsupportedVersion(UInt32)
        /// The file ends before `what` (`requestedByteCount` bytes) could be read.
        case truncated(what: String, requestedByteCount: Int, availableByteCount: Int)
        /// A string's declared length exceeds the 1 GiB limit.
        case stringTooLong(what: String, byteCount: UInt64)
        /// A string's declared length runs past the end of the file.
        case stringPastEnd(what: String, byteCount: UInt64, availableByteCount: Int)
        case invalidUTF8(what: String)
        /// An array's element count exceeds 2^30.
        case arrayTooLong(key: String, count: UInt64)
        /// An array's element count cannot fit in the rest of the file.
        case arrayPastEnd(key: String, count: UInt64, availableByteCount: Int)
        case arrayNestedTooDeeply(key: String)
        case unknownValueType(key: String, typeID: UInt32)
        case invalidBool(key: String, byte: UInt8)
        case duplicateKey(String)
        case duplicateTensorName(String)
        case tensorNameTooLong(String)
        case badAlignment(detail: String)
        case tooManyDimensions(tensor: String, dimensionCount: UInt32)
        case invalidDimension(tensor: String, ne: [UInt64])
        /// A ggml type id that is retired, unknown, or not implemented here.
        case unsupportedTensorType(tensor: String, typeID: UInt32, typeName: String?)
        case rowNotWholeBlocks(tensor: String, rowLength: Int, blockSize: Int)
        case sizeOverflow(what: String)
        case misalignedOffset(tensor: String, offset: UInt64, alignment: Int)
        case unexpectedOffset(tensor: String, offset: UInt64, expected: Int)
        case tensorPastEnd(tensor: String, endOffset: Int, fileByteCount: Int)
        case tensorNotFound(String)
        case missingKey(String)
        case wrongKeyType(key: String, found: String, expected: String)
        case unsupportedArchitecture(String)
        case invalidValue(key: String, detail: String)
        /// Writer-side: a tensor cannot be written as asked.
        case cannotWrite(tensor: String, detail: String)
        case writeFailed(reason: String)
    }

    public let path: String
    /// File offset where the problem was found, when it is about a place in the file.
    public let offset: Int?
    public let kind: Kind

    public init(path: String, offset: Int? = nil, _ kind: Kind) {
        self.path = path
        self.offset = offset
        self.kind = kind
    }

    public var description: String {
        let place = offset.map { " at offset \($0)" } ?? ""
        return "GGUF \(path)\(place): \(kind.message)"
    }
}

extension GGUFError.Kind {
    var message: String {
        switch self {
        case let .cannotOpen(reason): return "cannot open: \(reason)"
        case let .badMagic(magic):
            return "not a GGUF file (magic 0x\(String(magic, radix: 16)), expected 0x46554747 \"GGUF\")"
        case let .unsupportedVersion(version): return "GGUF version \(version) is not supported (only 2 and 3)"
        case let .truncated(what, requested, available):
            return "file is truncated: \(what) needs \(requested) bytes but only \(available) remain"
        case let .stringTooLong(what, byteCount): return "\(what): string length \(byteCount) exceeds 1 GiB"
        case let .stringPastEnd(what, byteCount, available):
            return "\(what): string length \(byteCount) runs past the end of the file (\(available) bytes remain)"
        case let .invalidUTF8(what): return "\(what) is not valid UTF-8"
        case let .arrayTooLong(key, count): return "key \(key): array of \(count) elements exceeds the 2^30 limit"
        case let .arrayPastEnd(key, count, available):
            return "key \(key): array of \(count) elements cannot fit in the \(available) bytes left in the file"
        case let .arrayNestedTooDeeply(key): return "key \(key): arrays nested too deeply"
        case let .unknownValueType(key, typeID): return "key \(key): unknown value type \(typeID)"
        case let .invalidBool(key, byte): return "key \(key): boolean byte \(byte) is neither 0 nor 1"
        case let .duplicateKey(key): return "duplicate key \(key)"
        case let .duplicateTensorName(name): return "duplicate tensor name \(name)"
        case let .tensorNameTooLong(name):
            return "tensor name \(name) is \(name.utf8.count) bytes; ggml allows at most 63"
        case let .badAlignment(detail): return "general.alignment: \(detail)"
        case let .tooManyDimensions(tensor, count): return "tensor \(tensor): \(count) dimensions (at most 4)"
        case let .invalidDimension(tensor, ne): return "tensor \(tensor): invalid dimensions ne=\(ne)"
        case let .unsupportedTensorType(tensor, typeID, typeName):
            let known = typeName.map { " (\($0))" } ?? " (unknown or retired)"
            return "tensor \(tensor): ggml type id \(typeID)\(known) is not supported"
        case let .rowNotWholeBlocks(tensor, rowLength, blockSize):
            return "tensor \(tensor): row length ne[0]=\(rowLength) is not a multiple of the block size \(blockSize)"
        case let .sizeOverflow(what): return "size of \(what) overflows"
        case let .misalignedOffset(tensor, offset, alignment):
            return "tensor \(tensor): data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .unexpectedOffset(tensor, offset, expected):
            return "tensor \(tensor): data offset \(offset), expected \(expected) (tensor data must be sequential)"
        case let .tensorPastEnd(tensor, end, fileByteCount):
            return "tensor \(tensor): data ends at \(end), past the end of the file (\(fileByteCount) bytes)"
        case let .tensorNotFound(name): return "no tensor named \(name)"
        case let .missingKey(key): return "missing key \(key)"
        case let .wrongKeyType(key, found, expected): return "key \(key) has type \(found), expected \(expected)"
        case let .unsupportedArchitecture(arch): return "architecture \(arch) is not supported (only llama)"
        case let .invalidValue(key, detail): return "key \(key): \(detail)"
        case let .cannotWrite(tensor, detail): return "cannot write tensor \(tensor): \(detail)"
        case let .writeFailed(reason): return "write failed: \(reason)"
        }
    }
}
