import LoquatSupport

/// The type tag of a GGUF metadata value (formats.md §2.1, ggml `include/gguf.h`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The gguf-py spelling, used in error messages.
    public var name: String {
        switch self {
        case .uint8: return "UINT8"
        case .int8: return "INT8"
        case .uint16: return "UINT16"
        case .int16: return "INT16"
        case .uint32: return "UINT32"
        case .int32: return "INT32"
        case .float32: return "FLOAT32"
        case .bool: return "BOOL"
        case .string: return "STRING"
        case .array: return "ARRAY"
        case .uint64: return "UINT64"
        case .int64: return "INT64"
        case .float64: return "FLOAT64"
        }
    }

    /// Fewest bytes one value of this type occupies on disk: a string needs at least its u64
    /// length, an array at least its u32 element type and u64 count.
    var minimumByteCount: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }
}

/// One GGUF metadata value. Arrays keep their element type so that an empty array, or an array
/// carried from one file to another, is written back with the same type.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double), bool(Bool), string(String)
    indirect case array(elementType: GGUFValueType, values: [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// Spelling for messages: `UINT32`, or `ARRAY[STRING]`.
    public var typeName: String {
        if case let .array(elementType, _) = self { return "ARRAY[\(elementType.name)]" }
        return type.name
    }

    public var string: String? { if case let .string(v) = self { return v } else { return nil } }
    public var uint32: UInt32? { if case let .uint32(v) = self { return v } else { return nil } }
    public var int32: Int32? { if case let .int32(v) = self { return v } else { return nil } }
    public var uint64: UInt64? { if case let .uint64(v) = self { return v } else { return nil } }
    public var float32: Float? { if case let .float32(v) = self { return v } else { return nil } }
    public var bool: Bool? { if case let .bool(v) = self { return v } else { return nil } }
    public var array: [GGUFValue]? { if case let .array(_, v) = self { return v } else { return nil } }

    public var arrayElementType: GGUFValueType? {
        if case let .array(elementType, _) = self { return elementType } else { return nil }
    }

    /// Any integer type as `Int`, when it fits (lenient reading of counts).
    public var integer: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return v <= UInt64(Int.max) ? Int(v) : nil
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// FLOAT32 or FLOAT64 as `Double`.
    public var floatingPoint: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return nil
        }
    }

    /// The elements of a string array.
    public var stringArray: [String]? {
        guard case let .array(.string, values) = self else { return nil }
        return values.map { $0.string! }
    }

    /// A string array value.
    public static func strings(_ values: [String]) -> GGUFValue {
        .array(elementType: .string, values: values.map { .string($0) })
    }

    /// Serializes the payload (without the type tag) as GGUF stores it, little-endian.
    public func writePayload(into writer: inout ByteWriter) {
        switch self {
        case let .uint8(v): writer.write(v)
        case let .int8(v): writer.write(v)
        case let .uint16(v): writer.write(v)
        case let .int16(v): writer.write(v)
        case let .uint32(v): writer.write(v)
        case let .int32(v): writer.write(v)
        case let .uint64(v): writer.write(v)
        case let .int64(v): writer.write(v)
        case let .float32(v): writer.write(v)
        case let .float64(v): writer.write(v)
        case let .bool(v): writer.write(UInt8(v ? 1 : 0))
        case let .string(v): GGUFValue.writeString(v, into: &writer)
        case let .array(elementType, values):
            writer.write(elementType.rawValue)
            writer.write(UInt64(values.count))
            for value in values { value.writePayload(into: &writer) }
        }
    }

    static func writeString(_ string: String, into writer: inout ByteWriter) {
        writer.write(UInt64(string.utf8.count))
        writer.write(utf8: string)
    }
}

/// One key-value pair of GGUF metadata.
public struct GGUFKeyValue: Sendable, Equatable {
    public let key: String
    public let value: GGUFValue
    public init(_ key: String, _ value: GGUFValue) {
        self.key = key
        self.value = value
    }
}

/// GGUF metadata in file order, with lookup by key.
public struct GGUFMetadata: Sendable, Equatable {
    public let entries: [GGUFKeyValue]
    private let indexByKey: [String: Int]

    /// Throws `GGUFError.duplicateKey` when a key appears twice.
    public init(_ entries: [GGUFKeyValue], path: String = "<memory>") throws {
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() {
            guard index.updateValue(position, forKey: entry.key) == nil else {
                throw GGUFError(path: path, .duplicateKey(entry.key))
            }
        }
        self.entries = entries
        self.indexByKey = index
    }

    public var keys: [String] { entries.map(\.key) }
    public var count: Int { entries.count }

    public subscript(key: String) -> GGUFValue? {
        indexByKey[key].map { entries[$0].value }
    }

    public static func == (lhs: GGUFMetadata, rhs: GGUFMetadata) -> Bool { lhs.entries == rhs.entries }
}
