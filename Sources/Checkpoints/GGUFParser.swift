import LoquatSupport
import Tensors

/// Reads the GGUF header, metadata and tensor infos with the bounds llama.cpp enforces
/// (`ggml/src/gguf.cpp`, formats.md §2.1–2.3). Every failure is a `GGUFError` carrying the file
/// path and the offset where the bad field starts. No count read from the file allocates before
/// it has been checked against the bytes that are left.
struct GGUFParser {
    static let magic: UInt32 = 0x4655_4747  // "GGUF" read little-endian
    static let maximumStringByteCount: UInt64 = 1 << 30
    static let maximumArrayCount: UInt64 = 1 << 30
    static let maximumArrayDepth = 8
    static let maximumDimensionCount: UInt32 = 4
    /// `GGML_MAX_NAME`: names must be shorter than this, counting bytes.
    static let maximumNameByteCount = 64
    static let defaultAlignment = 32

    let path: String
    var reader: ByteReader

    init(path: String, bytes: UnsafeRawBufferPointer) {
        self.path = path
        self.reader = ByteReader(bytes)
    }

    var offset: Int { reader.offset }

    func error(_ kind: GGUFError.Kind, at offset: Int? = nil) -> GGUFError {
        GGUFError(path: path, offset: offset ?? reader.offset, kind)
    }

    /// Runs one bounded read, turning a short read into `GGUFError.truncated`.
    private mutating func bounded<T>(_ body: (inout ByteReader) throws -> T) throws -> T {
        do {
            return try body(&reader)
        } catch let short as ByteReaderError {
            throw GGUFError(path: path, offset: short.offset,
                            .truncated(what: short.what, requestedByteCount: short.requestedByteCount,
                                       availableByteCount: short.availableByteCount))
        }
    }

    mutating func readUInt32(_ what: String) throws -> UInt32 { try bounded { try $0.readUInt32(what) } }
    mutating func readUInt64(_ what: String) throws -> UInt64 { try bounded { try $0.readUInt64(what) } }

    /// `gguf_string`: u64 length, then that many UTF-8 bytes, no terminator.
    mutating func readString(_ what: String) throws -> String {
        let start = offset
        let length = try readUInt64("\(what) length")
        guard length <= Self.maximumStringByteCount else {
            throw error(.stringTooLong(what: what, byteCount: length), at: start)
        }
        guard length <= UInt64(reader.remainingByteCount) else {
            throw error(.stringPastEnd(what: what, byteCount: length, availableByteCount: reader.remainingByteCount),
                        at: start)
        }
        let bytes = try bounded { try $0.readBytes(Int(length), what) }
        guard let string = String(validatingUTF8Bytes: bytes) else { throw error(.invalidUTF8(what: what), at: start) }
        return string
    }

    mutating func readValueType(key: String) throws -> GGUFValueType {
        let start = offset
        let raw = try readUInt32("type of \(key)")
        guard let type = GGUFValueType(rawValue: raw) else { throw error(.unknownValueType(key: key, typeID: raw), at: start) }
        return type
    }

    /// One value of `type`; arrays recurse up to `maximumArrayDepth`.
    mutating func readValue(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try bounded { try $0.readUInt8(key) })
        case .int8: return .int8(try bounded { try $0.readInt8(key) })
        case .uint16: return .uint16(try bounded { try $0.readUInt16(key) })
        case .int16: return .int16(try bounded { try $0.readInt16(key) })
        case .uint32: return .uint32(try bounded { try $0.readUInt32(key) })
        case .int32: return .int32(try bounded { try $0.readInt32(key) })
        case .uint64: return .uint64(try bounded { try $0.readUInt64(key) })
        case .int64: return .int64(try bounded { try $0.readInt64(key) })
        case .float32: return .float32(try bounded { try $0.readFloat32(key) })
        case .float64: return .float64(try bounded { try $0.readFloat64(key) })
        case .bool:
            let start = offset
            let byte = try bounded { try $0.readUInt8(key) }
            guard byte <= 1 else { throw error(.invalidBool(key: key, byte: byte), at: start) }
            return .bool(byte == 1)
        case .string: return .string(try readString("value of \(key)"))
        case .array: return try readArray(key: key, depth: depth)
        }
    }

    /// `u32 element_type`, `u64 count`, then `count` payloads.
    mutating func readArray(key: String, depth: Int) throws -> GGUFValue {
        let start = offset
        guard depth < Self.maximumArrayDepth else { throw error(.arrayNestedTooDeeply(key: key), at: start) }
        let elementType = try readValueType(key: key)
        let count = try readUInt64("element count of \(key)")
        guard count <= Self.maximumArrayCount else { throw error(.arrayTooLong(key: key, count: count), at: start) }
        let remaining = reader.remainingByteCount
        guard count * UInt64(elementType.minimumByteCount) <= UInt64(remaining) else {
            throw error(.arrayPastEnd(key: key, count: count, availableByteCount: remaining), at: start)
        }
        var values: [GGUFValue] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count {
            values.append(try readValue(elementType, key: key, depth: depth + 1))
        }
        return .array(elementType: elementType, values: values)
    }

    /// Throws unless `count` records of at least `minimumByteCount` bytes fit in what is left.
    func checkCount(_ count: UInt64, minimumByteCount: Int, what: String) throws -> Int {
        let remaining = reader.remainingByteCount
        guard count <= UInt64(remaining / minimumByteCount) else {
            let requested = count > UInt64(Int.max / minimumByteCount) ? Int.max : Int(count) * minimumByteCount
            throw error(.truncated(what: "\(count) \(what)", requestedByteCount: requested, availableByteCount: remaining))
        }
        return Int(count)
    }

    /// Magic, version, tensor count and KV count.
    mutating func readHeader() throws -> (version: UInt32, tensorCount: Int, keyValueCount: Int) {
        let magic = try readUInt32("magic")
        guard magic == Self.magic else { throw error(.badMagic(magic), at: 0) }
        let version = try readUInt32("version")
        guard version == 2 || version == 3 else { throw error(.unsupportedVersion(version), at: 4) }
        let tensorCount = try readUInt64("tensor count")
        let keyValueCount = try readUInt64("metadata key-value count")
        // A KV needs at least a key length, a type and one payload byte; a tensor info at
        // least a name length, n_dims, a type and an offset.
        let kvs = try checkCount(keyValueCount, minimumByteCount: 13, what: "metadata key-values")
        let tensors = try checkCount(tensorCount, minimumByteCount: 24, what: "tensor infos")
        return (version, tensors, kvs)
    }

    mutating func readMetadata(count: Int) throws -> GGUFMetadata {
        var entries: [GGUFKeyValue] = []
        entries.reserveCapacity(count)
        var seen = Set<String>()
        for index in 0..<count {
            let start = offset
            let key = try readString("key of metadata entry \(index)")
            guard seen.insert(key).inserted else { throw error(.duplicateKey(key), at: start) }
            let type = try readValueType(key: key)
            entries.append(GGUFKeyValue(key, try readValue(type, key: key)))
        }
        return try GGUFMetadata(entries, path: path)
    }

    /// `general.alignment`: UINT32, a non-zero power of two; 32 when absent.
    func alignment(in metadata: GGUFMetadata) throws -> Int {
        guard let value = metadata["general.alignment"] else { return Self.defaultAlignment }
        guard let alignment = value.uint32 else {
            throw error(.badAlignment(detail: "has type \(value.typeName), expected UINT32"), at: nil)
        }
        guard alignment != 0, alignment & (alignment - 1) == 0 else {
            throw error(.badAlignment(detail: "\(alignment) is not a power of two"), at: nil)
        }
        return Int(alignment)
    }
}
