import CJansson

/// Errors from parsing JSON text.
public enum JSONError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The text is longer than the caller's cap; nothing was parsed.
    case tooLarge(byteCount: Int, limit: Int)
    /// jansson's diagnosis: message, 1-based line and column, byte position.
    case invalid(message: String, line: Int, column: Int, position: Int)
    /// A value could not be serialized (e.g. a string with invalid UTF-8 cannot occur in Swift,
    /// but jansson can still refuse an allocation).
    case serializationFailed(String)

    public var description: String {
        switch self {
        case let .tooLarge(byteCount, limit): return "JSON text of \(byteCount) bytes exceeds the limit of \(limit) bytes"
        case let .invalid(message, line, column, position):
            return "invalid JSON at line \(line), column \(column) (byte \(position)): \(message)"
        case let .serializationFailed(reason): return "cannot serialize JSON: \(reason)"
        }
    }
}

/// JSON parsing and serialization through jansson, the only user of `CJansson`.
public enum JSON {
    /// Default cap on one JSON text: 256 MiB.
    public static let defaultMaximumByteCount = 256 << 20

    /// Parses one JSON value (any type at the top level). Duplicate object keys are rejected,
    /// as are texts over `maximumByteCount` (checked before jansson sees them).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maximumByteCount: Int = defaultMaximumByteCount) throws -> JSONValue {
        guard bytes.count <= maximumByteCount else { throw JSONError.tooLarge(byteCount: bytes.count, limit: maximumByteCount) }
        var error = json_error_t()
        let flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL
        let empty: [CChar] = [0]
        let loaded: UnsafeMutablePointer<json_t>? = empty.withUnsafeBufferPointer { fallback in
            let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) ?? fallback.baseAddress!
            return json_loadb(base, bytes.count, Int(flags), &error)
        }
        guard let root = loaded else {
            let message = withUnsafeBytes(of: error.text) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            throw JSONError.invalid(message: message, line: Int(error.line), column: Int(error.column), position: Int(error.position))
        }
        defer { json_decref(root) }
        return value(of: root)
    }

    public static func parse(_ bytes: [UInt8], maximumByteCount: Int = defaultMaximumByteCount) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, maximumByteCount: maximumByteCount) }
    }

    public static func parse(_ text: String, maximumByteCount: Int = defaultMaximumByteCount) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try parse(UnsafeRawBufferPointer($0), maximumByteCount: maximumByteCount) }
    }

    /// Compact UTF-8 serialization (no spaces, object key order kept, non-ASCII kept as UTF-8,
    /// doubles with 17 significant digits so they round-trip exactly).
    public static func serialize(_ value: JSONValue) throws -> [UInt8] {
        guard let root = makeJansson(value) else { throw JSONError.serializationFailed("out of memory") }
        defer { json_decref(root) }
        let flags = Int(JSON_COMPACT | JSON_ENCODE_ANY) | jsonRealPrecision(17)
        let byteCount = json_dumpb(root, nil, 0, flags)
        guard byteCount > 0 else { throw JSONError.serializationFailed("jansson could not size the output") }
        var output = [UInt8](repeating: 0, count: byteCount)
        let written = output.withUnsafeMutableBytes { json_dumpb(root, $0.baseAddress!.assumingMemoryBound(to: CChar.self), byteCount, flags) }
        guard written == byteCount else { throw JSONError.serializationFailed("jansson wrote \(written) of \(byteCount) bytes") }
        return output
    }

    public static func serializeToString(_ value: JSONValue) throws -> String {
        String(decoding: try serialize(value), as: UTF8.self)
    }

    /// `JSON_REAL_PRECISION(n)` is a C macro; this is its value.
    private static func jsonRealPrecision(_ digits: Int) -> Int { (digits & 0x1F) << 11 }

    // MARK: jansson ⇄ JSONValue

    private static func value(of node: UnsafeMutablePointer<json_t>) -> JSONValue {
        switch node.pointee.type {
        case JSON_OBJECT:
            var entries: [(key: String, value: JSONValue)] = []
            entries.reserveCapacity(json_object_size(node))
            var iterator = json_object_iter(node)
            while let current = iterator {
                let keyPointer = json_object_iter_key(current)!
                let keyLength = json_object_iter_key_len(current)
                let key = String(decoding: UnsafeRawBufferPointer(start: keyPointer, count: keyLength), as: UTF8.self)
                entries.append((key: key, value: value(of: json_object_iter_value(current))))
                iterator = json_object_iter_next(node, current)
            }
            return .object(JSONObject(entries))
        case JSON_ARRAY:
            let count = json_array_size(node)
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            for index in 0..<count { elements.append(value(of: json_array_get(node, index))) }
            return .array(elements)
        case JSON_STRING:
            let length = json_string_length(node)
            let pointer = json_string_value(node)!
            return .string(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
        case JSON_INTEGER: return .integer(Int64(json_integer_value(node)))
        case JSON_REAL: return .number(json_real_value(node))
        case JSON_TRUE: return .bool(true)
        case JSON_FALSE: return .bool(false)
        default: return .null
        }
    }

    private static func makeJansson(_ value: JSONValue) -> UnsafeMutablePointer<json_t>? {
        switch value {
        case .null: return json_null()
        case let .bool(flag): return flag ? json_true() : json_false()
        case let .integer(number): return json_integer(json_int_t(number))
        case let .number(number): return number.isFinite ? json_real(number) : json_null()
        case let .string(text):
            return text.withCString { json_stringn_nocheck($0, text.utf8.count) }
        case let .array(elements):
            guard let array = json_array() else { return nil }
            for element in elements {
                guard let child = makeJansson(element) else { json_decref(array); return nil }
                json_array_append_new(array, child)
            }
            return array
        case let .object(object):
            guard let node = json_object() else { return nil }
            for (key, element) in object {
                guard let child = makeJansson(element) else { json_decref(node); return nil }
                _ = key.withCString { json_object_setn_new_nocheck(node, $0, key.utf8.count, child) }
            }
            return node
        }
    }
}

extension JSON {
    /// The linked jansson's version, e.g. "2.14".
    public static var libraryVersion: String { String(cString: jansson_version_str()) }
}
