import JSON

/// A request or notification from the client. `id` is echoed back exactly (same JSON type and
/// value); a notification has no id and is never answered.
public struct IncomingCall: Sendable {
    public let id: JSONValue?
    public let method: String
    public let params: JSONValue?

    public init(id: JSONValue?, method: String, params: JSONValue?) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    /// `params.workDoneToken`, an integer or string, when the client asked for progress.
    public var workDoneToken: JSONValue? {
        guard let token = params?["workDoneToken"] else { return nil }
        switch token {
        case .integer, .string: return token
        default: return nil
        }
    }
}

/// One top-level message after validation: a single call, a batch, or an error that must be
/// answered with `id: null`.
enum ParsedMessage {
    case single(ParsedCall)
    case batch([ParsedCall])
    case failure(RPCError)
}

/// One element of a message: a valid call, an invalid one (answered with the id when it could be
/// read, else null), or a client response that we ignore.
enum ParsedCall {
    case call(IncomingCall)
    case invalid(id: JSONValue?, RPCError)
    case ignored
}

enum MessageParser {
    /// Validates JSON-RPC 2.0 structure (jsonrpc, method, id, params types).
    static func parse(_ body: UnsafeRawBufferPointer, maximumByteCount: Int) -> ParsedMessage {
        let value: JSONValue
        do {
            value = try JSON.parse(body, maximumByteCount: maximumByteCount)
        } catch let error as JSONError {
            return .failure(parseError(error))
        } catch {
            return .failure(.parseError("\(error)"))
        }
        switch value {
        case let .array(elements):
            if elements.isEmpty { return .failure(.invalidRequest("empty batch")) }
            return .batch(elements.map(call(from:)))
        default:
            return .single(call(from: value))
        }
    }

    static func parseError(_ error: JSONError) -> RPCError {
        switch error {
        case let .invalid(message, line, column, position):
            return .parseError(message, data: ["reason": .string(message), "line": .int(line),
                                               "column": .int(column), "position": .int(position)])
        case let .tooLarge(byteCount, limit):
            return .parseError("message too large", data: ["reason": .string(error.description), "byteCount": .int(byteCount), "limit": .int(limit)])
        case .serializationFailed:
            return .parseError("\(error)")
        }
    }

    /// Validates one message object. Responses from the client are ignored: the server sends
    /// no requests of its own.
    static func call(from value: JSONValue) -> ParsedCall {
        guard let object = value.objectValue else {
            return .invalid(id: nil, .invalidRequest("a message must be an object, got \(value.typeName)"))
        }
        var id = object["id"]
        if let candidate = id {
            switch candidate {
            case .string, .integer, .number, .null: break
            default:
                id = nil
                return .invalid(id: nil, .invalidRequest("\"id\" must be a string, number or null"))
            }
        }
        guard object["jsonrpc"] == .string("2.0") else {
            return .invalid(id: id, .invalidRequest("\"jsonrpc\" must be \"2.0\""))
        }
        guard let methodValue = object["method"] else {
            if object["result"] != nil || object["error"] != nil { return .ignored }
            return .invalid(id: id, .invalidRequest("missing \"method\""))
        }
        guard let method = methodValue.stringValue else {
            return .invalid(id: id, .invalidRequest("\"method\" must be a string"))
        }
        let params = object["params"]
        if let params {
            switch params {
            case .object, .array: break
            default: return .invalid(id: id, .invalidRequest("\"params\" must be an object or an array"))
            }
        }
        return .call(IncomingCall(id: id, method: method, params: params))
    }

    static func response(id: JSONValue?, result: Result<JSONValue, RPCError>) -> JSONValue {
        var object: JSONObject = ["jsonrpc": "2.0", "id": id ?? .null]
        switch result {
        case let .success(value): object["result"] = value
        case let .failure(error): object["error"] = error.jsonValue
        }
        return .object(object)
    }
}
