/// A JSON document as a Swift value. Objects keep their key order (jansson preserves insertion
/// order), so what we serialize is deterministic and reads the way it was written.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal (no fraction, no exponent) that fits in 64 bits.
    case integer(Int64)
    /// Any other number.
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var stringValue: String? { if case let .string(value) = self { return value } else { return nil } }
    public var boolValue: Bool? { if case let .bool(value) = self { return value } else { return nil } }
    public var arrayValue: [JSONValue]? { if case let .array(value) = self { return value } else { return nil } }
    public var objectValue: JSONObject? { if case let .object(value) = self { return value } else { return nil } }
    public var isNull: Bool { self == .null }

    /// An integer, also from a number with no fractional part.
    public var intValue: Int? {
        switch self {
        case let .integer(value): return Int(exactly: value)
        case let .number(value): return value.rounded() == value ? Int(exactly: value) : nil
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .integer(value): return Double(value)
        case let .number(value): return value
        default: return nil
        }
    }

    /// Member lookup on objects; nil for anything else.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// The JSON type name, for error messages ("expected a string, got an array").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer, .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// An ordered JSON object. Lookups are linear, which is faster than hashing for the small
/// objects of a protocol; `JSON.parse` rejects duplicate keys, so a key appears once.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var entries: [(key: String, value: JSONValue)]

    public init() { entries = [] }
    public init(_ entries: [(key: String, value: JSONValue)]) { self.entries = entries }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        entries = elements.map { (key: $0.0, value: $0.1) }
    }

    public var count: Int { entries.count }
    public var keys: [String] { entries.map(\.key) }

    public subscript(key: String) -> JSONValue? {
        get { entries.first(where: { $0.key == key })?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append((key: key, value: newValue))
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { entries.makeIterator() }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// Convenience constructors for building results.
    public static func int(_ value: Int) -> JSONValue { .integer(Int64(value)) }
    /// A Double, or `null` when it is not finite (JSON has no NaN or infinity).
    public static func double(_ value: Double) -> JSONValue { value.isFinite ? .number(value) : .null }
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
    public static func ints(_ values: [Int]) -> JSONValue { .array(values.map(JSONValue.int)) }
}
