import JSON

/// A JSON-RPC error object: `code`, `message`, and `data` naming what was wrong.
///
/// Codes: the JSON-RPC 2.0 set (-32700 … -32603), LSP's -32800 RequestCancelled, and Loquat's
/// own range (-32001 … -32005; see protocol/README.md).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    public let data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(code) \(message)" + (data.flatMap { try? JSON.serializeToString($0) }.map { " \($0)" } ?? "") }

    public var jsonValue: JSONValue {
        var object: JSONObject = ["code": .int(code), "message": .string(message)]
        if let data { object["data"] = data }
        return .object(object)
    }

    public enum Code {
        public static let parseError = -32700
        public static let invalidRequest = -32600
        public static let methodNotFound = -32601
        public static let invalidParams = -32602
        public static let internalError = -32603
        public static let requestCancelled = -32800
        public static let notFound = -32001
        public static let unsupported = -32002
        public static let shapeMismatch = -32003
        public static let ioError = -32004
        public static let overMemoryBudget = -32005
    }

    public static func parseError(_ reason: String, data: JSONValue? = nil) -> RPCError {
        RPCError(code: Code.parseError, message: "Parse error: \(reason)", data: data)
    }

    public static func invalidRequest(_ reason: String) -> RPCError {
        RPCError(code: Code.invalidRequest, message: "Invalid request: \(reason)", data: ["reason": .string(reason)])
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: Code.methodNotFound, message: "Method not found: \(method)",
                 data: ["method": .string(method), "reason": .string("no method named \(method)")])
    }

    /// Invalid params; `data.param` names the parameter so a client can point at it.
    public static func invalidParams(_ param: String, _ reason: String) -> RPCError {
        RPCError(code: Code.invalidParams, message: "Invalid params: \(param): \(reason)",
                 data: ["param": .string(param), "reason": .string(reason)])
    }

    public static func cancelled(_ method: String) -> RPCError {
        RPCError(code: Code.requestCancelled, message: "Request cancelled",
                 data: ["method": .string(method), "reason": "cancelled by $/cancelRequest"])
    }
}
