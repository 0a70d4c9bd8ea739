/// Why a Hugging Face `config.json` could not be used. Every case names the file and, where
/// there is one, the field, in the spelling of the file (`num_attention_heads`).
public enum ModelConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    case unreadable(path: String, reason: String)
    case invalidJSON(path: String, reason: String)
    /// The top level is not an object.
    case notAnObject(path: String, actualType: String)
    /// A field the architecture needs and transformers has no default for.
    case missingField(path: String, field: String, architecture: String)
    /// A field of the wrong JSON type (`expected` is e.g. "an integer").
    case wrongType(path: String, field: String, expected: String, actualType: String)
    /// A well-typed value that makes no sense (zero heads, heads not divisible by KV heads).
    case invalidValue(path: String, field: String, reason: String)

    public var path: String {
        switch self {
        case let .unreadable(path, _), let .invalidJSON(path, _), let .notAnObject(path, _),
             let .missingField(path, _, _), let .wrongType(path, _, _, _), let .invalidValue(path, _, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .invalidJSON(path, reason): return "\(path): not valid JSON: \(reason)"
        case let .notAnObject(path, actualType): return "\(path): expected a JSON object, got \(actualType)"
        case let .missingField(path, field, architecture):
            return "\(path): missing field \"\(field)\", which a \(architecture) config needs"
        case let .wrongType(path, field, expected, actualType):
            return "\(path): field \"\(field)\" must be \(expected), got \(actualType)"
        case let .invalidValue(path, field, reason): return "\(path): field \"\(field)\": \(reason)"
        }
    }
}
