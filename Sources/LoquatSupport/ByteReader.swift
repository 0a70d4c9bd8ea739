/// A bounded little-endian reader over raw bytes. Every read checks the remaining length
/// first, so a truncated or hostile file gives `ByteReaderError` naming the offset, never a
/// read past the end.
public struct ByteReaderError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let requestedByteCount: Int
    public let availableByteCount: Int
    public let what: String
    public var description: String {
        "\(what): needs \(requestedByteCount) bytes at offset \(offset) but only \(availableByteCount) remain"
    }
}

public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remainingByteCount: Int { bytes.count - offset }

    mutating func take(_ byteCount: Int, _ what: String) throws -> Int {
        guard byteCount >= 0, byteCount <= remainingByteCount else {
            throw ByteReaderError(offset: offset, requestedByteCount: byteCount,
                                  availableByteCount: max(0, remainingByteCount), what: what)
        }
        let start = offset
        offset += byteCount
        return start
    }

    public mutating func readInteger<T: FixedWidthInteger>(_ type: T.Type, _ what: String = "integer") throws -> T {
        let start = try take(MemoryLayout<T>.size, what)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    public mutating func readUInt8(_ what: String = "u8") throws -> UInt8 { try readInteger(UInt8.self, what) }
    public mutating func readUInt16(_ what: String = "u16") throws -> UInt16 { try readInteger(UInt16.self, what) }
    public mutating func readUInt32(_ what: String = "u32") throws -> UInt32 { try readInteger(UInt32.self, what) }
    public mutating func readUInt64(_ what: String = "u64") throws -> UInt64 { try readInteger(UInt64.self, what) }
    public mutating func readInt8(_ what: String = "i8") throws -> Int8 { try readInteger(Int8.self, what) }
    public mutating func readInt16(_ what: String = "i16") throws -> Int16 { try readInteger(Int16.self, what) }
    public mutating func readInt32(_ what: String = "i32") throws -> Int32 { try readInteger(Int32.self, what) }
    public mutating func readInt64(_ what: String = "i64") throws -> Int64 { try readInteger(Int64.self, what) }

    public mutating func readFloat32(_ what: String = "f32") throws -> Float {
        Float(bitPattern: try readUInt32(what))
    }

    public mutating func readFloat64(_ what: String = "f64") throws -> Double {
        Double(bitPattern: try readUInt64(what))
    }

    /// A slice of `byteCount` bytes, without copying.
    public mutating func readBytes(_ byteCount: Int, _ what: String = "bytes") throws -> UnsafeRawBufferPointer {
        let start = try take(byteCount, what)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + byteCount)])
    }

    /// `byteCount` bytes decoded as UTF-8; invalid sequences are an error, not replaced.
    public mutating func readUTF8(_ byteCount: Int, _ what: String = "string") throws -> String {
        let slice = try readBytes(byteCount, what)
        guard let string = String(validatingUTF8Bytes: slice) else {
            throw ByteReaderError(offset: offset - byteCount, requestedByteCount: byteCount,
                                  availableByteCount: byteCount, what: "\(what) is not valid UTF-8")
        }
        return string
    }

    public mutating func skip(_ byteCount: Int, _ what: String = "padding") throws {
        _ = try take(byteCount, what)
    }
}

extension String {
    /// Strict UTF-8 decoding: nil for invalid input instead of U+FFFD replacement.
    public init?(validatingUTF8Bytes bytes: UnsafeRawBufferPointer) {
        guard let decoded = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else { return nil }
        self = decoded
    }
}
