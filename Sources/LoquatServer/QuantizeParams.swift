import JSON
import JSONRPC
import Quantization

/// Reads the quantization options of `quantize` (top level) and of each `plan` / `candidates`
/// entry into a `QuantizationSpec`. Errors are -32602 naming the parameter by its path
/// (`bits`, `plan[2].groupSize`, `outliers.fraction`).
struct SpecReader {
    let object: JSONObject
    /// Prepended to param names in errors: "" at the top level, "plan[2]." inside an entry.
    let prefix: String

    /// The spec keys, shared by the top level, plan entries and planner candidates.
    static let keys: Set<String> = ["method", "bits", "groupSize", "symmetric", "doubleQuant", "clipSearch",
                                    "fp8Format", "rotate", "outliers"]

    func has(_ key: String) -> Bool { object[key].map { $0 != .null } ?? false }

    /// The spec, or nil when `method` is absent and not required.
    func spec(methodRequired: Bool) throws -> QuantizationSpec? {
        guard let methodName = try string("method") else {
            if methodRequired { throw RPCError.invalidParams(prefix + "method", "missing required parameter") }
            for key in Self.keys where has(key) {
                throw RPCError.invalidParams(prefix + key, "given without \"method\"")
            }
            return nil
        }
        guard let method = QuantizationMethod(rawValue: methodName.lowercased()) else {
            throw RPCError.invalidParams(prefix + "method", "\"\(methodName)\" is not a quantization method; known: "
                                         + QuantizationMethod.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let fp8Format: FP8Format
        switch try string("fp8Format")?.lowercased() {
        case nil: fp8Format = .e4m3
        case let name?:
            guard let format = FP8Format(rawValue: name) else {
                throw RPCError.invalidParams(prefix + "fp8Format", "\"\(name)\" is not e4m3 or e5m2")
            }
            fp8Format = format
        }
        if has("fp8Format") && method != .fp8 {
            throw RPCError.invalidParams(prefix + "fp8Format", "applies to method fp8 only")
        }
        let spec = QuantizationSpec(method: method, bits: try integer("bits"), groupSize: try integer("groupSize"),
                                    symmetric: try bool("symmetric"), doubleQuant: try bool("doubleQuant") ?? false,
                                    clipSearch: try bool("clipSearch") ?? false, fp8Format: fp8Format,
                                    rotation: try rotation(), outliers: try outliers())
        do {
            try spec.validate()
        } catch let error as QuantizationError {
            throw RPCError.invalidParams(prefix + (error.parameter ?? "method"), Self.reason(error))
        }
        return spec
    }

    /// `rotate: "hadamard"` (seed 0) or `{kind: "hadamard", seed}`; `seed` is any 64-bit integer.
    private func rotation() throws -> RotationSpec? {
        guard has("rotate"), let value = object["rotate"] else { return nil }
        if let kind = value.stringValue {
            guard kind.lowercased() == "hadamard" else {
                throw RPCError.invalidParams(prefix + "rotate", "\"\(kind)\" is not a rotation; only \"hadamard\" is")
            }
            return RotationSpec(kind: "hadamard", seed: 0)
        }
        guard let members = value.objectValue else {
            throw RPCError.invalidParams(prefix + "rotate", "expected \"hadamard\" or {kind, seed}, got \(value.typeName)")
        }
        let inner = SpecReader(object: members, prefix: prefix + "rotate.")
        if let unknown = members.keys.first(where: { !["kind", "seed"].contains($0) }) {
            throw RPCError.invalidParams(prefix + "rotate." + unknown, "unknown member; expected kind, seed")
        }
        let kind = try inner.string("kind") ?? "hadamard"
        guard kind.lowercased() == "hadamard" else {
            throw RPCError.invalidParams(prefix + "rotate.kind", "\"\(kind)\" is not a rotation; only \"hadamard\" is")
        }
        // A 64-bit seed: JSON integers are signed, so a negative value is the seed's two's-complement
        // bit pattern (the ledger prints seeds ≥ 2^63 that way).
        let seed = try inner.integer("seed") ?? 0
        return RotationSpec(kind: "hadamard", seed: UInt64(bitPattern: Int64(seed)))
    }

    /// `outliers: {fraction}` or `{threshold}`.
    private func outliers() throws -> OutlierSpec? {
        guard has("outliers"), let value = object["outliers"] else { return nil }
        guard let members = value.objectValue else {
            throw RPCError.invalidParams(prefix + "outliers", "expected {fraction} or {threshold}, got \(value.typeName)")
        }
        let inner = SpecReader(object: members, prefix: prefix + "outliers.")
        if let unknown = members.keys.first(where: { !["fraction", "threshold"].contains($0) }) {
            throw RPCError.invalidParams(prefix + "outliers." + unknown, "unknown member; expected fraction or threshold")
        }
        switch (try inner.number("fraction"), try inner.number("threshold")) {
        case let (fraction?, nil): return .fraction(fraction)
        case let (nil, threshold?): return .threshold(threshold)
        default: throw RPCError.invalidParams(prefix + "outliers", "give exactly one of fraction and threshold")
        }
    }

    // MARK: Typed members

    func string(_ key: String) throws -> String? {
        guard has(key), let value = object[key] else { return nil }
        guard let string = value.stringValue, !string.isEmpty else {
            throw RPCError.invalidParams(prefix + key, "expected a non-empty string, got \(value.typeName)")
        }
        return string
    }

    func integer(_ key: String) throws -> Int? {
        guard has(key), let value = object[key] else { return nil }
        guard let integer = value.intValue else {
            throw RPCError.invalidParams(prefix + key, "expected an integer, got \((try? JSON.serializeToString(value)) ?? value.typeName)")
        }
        return integer
    }

    func number(_ key: String) throws -> Double? {
        guard has(key), let value = object[key] else { return nil }
        guard let number = value.doubleValue else { throw RPCError.invalidParams(prefix + key, "expected a number, got \(value.typeName)") }
        return number
    }

    func bool(_ key: String) throws -> Bool? {
        guard has(key), let value = object[key] else { return nil }
        guard let flag = value.boolValue else { throw RPCError.invalidParams(prefix + key, "expected a boolean, got \(value.typeName)") }
        return flag
    }

    /// A list of non-empty strings (a single string is accepted as a list of one).
    func strings(_ key: String) throws -> [String]? {
        guard has(key), let value = object[key] else { return nil }
        if let single = value.stringValue, !single.isEmpty { return [single] }
        guard let array = value.arrayValue else {
            throw RPCError.invalidParams(prefix + key, "expected an array of glob patterns, got \(value.typeName)")
        }
        return try array.enumerated().map { index, element in
            guard let string = element.stringValue, !string.isEmpty else {
                throw RPCError.invalidParams("\(prefix)\(key)[\(index)]", "expected a non-empty string, got \(element.typeName)")
            }
            return string
        }
    }

    /// Entries of an array of objects, each as a reader with its own prefix.
    func objects(_ key: String) throws -> [SpecReader]? {
        guard has(key), let value = object[key] else { return nil }
        guard let array = value.arrayValue else {
            throw RPCError.invalidParams(prefix + key, "expected an array of objects, got \(value.typeName)")
        }
        return try array.enumerated().map { index, element in
            guard let members = element.objectValue else {
                throw RPCError.invalidParams("\(prefix)\(key)[\(index)]", "expected an object, got \(element.typeName)")
            }
            return SpecReader(object: members, prefix: "\(prefix)\(key)[\(index)].")
        }
    }

    /// Refuses members outside `allowed`, naming the first.
    func requireOnly(_ allowed: Set<String>) throws {
        if let unknown = object.keys.first(where: { !allowed.contains($0) }) {
            throw RPCError.invalidParams(prefix + unknown, "unknown member; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    /// The reason without a leading "param: " that QuantizationError's description carries.
    static func reason(_ error: QuantizationError) -> String {
        if case let .invalidParameter(_, reason) = error { return reason }
        return error.description
    }
}
