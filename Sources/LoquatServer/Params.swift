import JSON
import JSONRPC

/// Typed access to a request's named params. Every failure is -32602 with `data.param` naming
/// the parameter, and unknown keys are refused so that a typo does not silently fall back to a
/// default.
struct Params {
    let method: String
    private let object: JSONObject

    init(_ call: IncomingCall, allowed: Set<String>) throws {
        method = call.method
        switch call.params {
        case nil: object = JSONObject()
        case let .object(value)?: object = value
        case .array?: throw RPCError.invalidParams("params", "\(call.method) takes named params (an object)")
        default: throw RPCError.invalidParams("params", "must be an object")
        }
        if let token = object["workDoneToken"] {
            switch token {
            case .integer, .string: break
            default: throw RPCError.invalidParams("workDoneToken", "must be an integer or a string, got \(token.typeName)")
            }
        }
        let permitted = allowed.union(["workDoneToken"])
        if let unknown = object.keys.first(where: { !permitted.contains($0) }) {
            throw RPCError.invalidParams(unknown, "unknown parameter for \(call.method); expected one of \(permitted.sorted().joined(separator: ", "))")
        }
    }

    func has(_ key: String) -> Bool { object[key] != nil && object[key] != .null }

    func requiredString(_ key: String) throws -> String {
        guard let value = object[key], value != .null else { throw RPCError.invalidParams(key, "missing required parameter") }
        guard let string = value.stringValue else { throw RPCError.invalidParams(key, "expected a string, got \(value.typeName)") }
        guard !string.isEmpty else { throw RPCError.invalidParams(key, "must not be empty") }
        return string
    }

    func optionalString(_ key: String) throws -> String? {
        has(key) ? try requiredString(key) : nil
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard has(key), let value = object[key] else { return nil }
        guard let flag = value.boolValue else { throw RPCError.invalidParams(key, "expected a boolean, got \(value.typeName)") }
        return flag
    }

    /// A positive integer.
    func optionalInt(_ key: String) throws -> Int? {
        guard has(key), let value = object[key] else { return nil }
        guard let number = value.intValue else { throw RPCError.invalidParams(key, "expected an integer, got \(value.typeName)") }
        guard number > 0 else { throw RPCError.invalidParams(key, "must be positive, got \(number)") }
        return number
    }

    /// A string or an array of strings.
    func optionalStrings(_ key: String) throws -> [String]? {
        guard has(key), let value = object[key] else { return nil }
        if let single = value.stringValue { return [single] }
        guard let items = value.arrayValue, !items.isEmpty, items.allSatisfy({ $0.stringValue != nil }) else {
            throw RPCError.invalidParams(key, "expected a string or a non-empty array of strings")
        }
        return items.compactMap(\.stringValue)
    }

    /// A non-empty array of strings, each one of `allowed`.
    func requiredStrings(_ key: String, allowed: [String]) throws -> [String] {
        guard let value = object[key], value != .null else { throw RPCError.invalidParams(key, "missing required parameter") }
        guard let items = value.arrayValue, !items.isEmpty else { throw RPCError.invalidParams(key, "expected a non-empty array of strings") }
        return try items.map { item in
            guard let string = item.stringValue else { throw RPCError.invalidParams(key, "expected strings, got \(item.typeName)") }
            guard allowed.contains(string) else {
                throw RPCError.invalidParams(key, "\"\(string)\" is not one of \(allowed.joined(separator: ", "))")
            }
            return string
        }
    }

    /// A string restricted to `choices` (compared case-insensitively, returned as listed).
    func optionalChoice(_ key: String, _ choices: [String]) throws -> String? {
        guard let value = try optionalString(key) else { return nil }
        guard let match = choices.first(where: { $0.lowercased() == value.lowercased() }) else {
            throw RPCError.invalidParams(key, "\"\(value)\" is not one of \(choices.joined(separator: ", "))")
        }
        return match
    }
}

extension Params {
    /// A required positive integer.
    func requiredInt(_ key: String) throws -> Int {
        guard has(key) else { throw RPCError.invalidParams(key, "missing required parameter") }
        return try optionalInt(key)!
    }

    /// A non-negative integer (seeds).
    func optionalNonNegativeInt(_ key: String) throws -> Int? {
        guard has(key), let value = object[key] else { return nil }
        guard let number = value.intValue, number >= 0 else {
            throw RPCError.invalidParams(key, "expected a non-negative integer, got \(value)")
        }
        return number
    }

    /// A finite number, optionally required to be positive or non-negative.
    func optionalDouble(_ key: String, positive: Bool = false, nonNegative: Bool = false) throws -> Double? {
        guard has(key), let value = object[key] else { return nil }
        guard let number = value.doubleValue, number.isFinite else { throw RPCError.invalidParams(key, "expected a number, got \(value.typeName)") }
        if positive && !(number > 0) { throw RPCError.invalidParams(key, "must be positive, got \(number)") }
        if nonNegative && !(number >= 0) { throw RPCError.invalidParams(key, "must be ≥ 0, got \(number)") }
        return number
    }

    /// `{key: number}` in the order given (PEFT's rank_pattern / alpha_pattern).
    func optionalNumberMap(_ key: String, integers: Bool) throws -> [(String, Double)] {
        guard has(key), let value = object[key] else { return [] }
        guard case let .object(members) = value else { throw RPCError.invalidParams(key, "expected an object of {pattern: number}") }
        return try members.map { name, entry in
            guard let number = entry.doubleValue, number.isFinite, number > 0, !integers || number == number.rounded() else {
                throw RPCError.invalidParams(key, "\"\(name)\": expected a positive \(integers ? "integer" : "number"), got \(entry)")
            }
            return (name, number)
        }
    }
}
