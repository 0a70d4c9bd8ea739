#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import JSON
import Synchronization

/// Handles the methods of a server. Runs on the connection's work queue, one call at a time in
/// arrival order, so a pipeline of requests sees the effects of the ones before it.
public protocol RPCMethodHandler: Sendable {
    /// Returns the result, or throws: an `RPCError` goes to the client as it is, anything
    /// else as -32603 with its description.
    func handle(_ call: IncomingCall, context: RequestContext) throws -> JSONValue
}

/// A JSON-RPC 2.0 connection over two file descriptors, with the LSP lifecycle:
/// `shutdown` (then every request but `exit` is refused) and `exit` (code 0 after shutdown,
/// else 1). The reader thread never blocks on compute: it parses frames, answers
/// `$/cancelRequest` at once, and queues calls for the work queue.
public final class Connection: @unchecked Sendable {
    public struct Limits: Sendable {
        public var maximumMessageByteCount: Int
        public init(maximumMessageByteCount: Int = 256 << 20) { self.maximumMessageByteCount = maximumMessageByteCount }
    }

    public let writer: MessageWriter
    private let reader: FrameReader
    private let handler: RPCMethodHandler
    private let limits: Limits
    private let workQueue = DispatchQueue(label: "loquat.work")
    private let pending = Mutex<[String: CancellationToken]>([:])
    private let isShutDown = Mutex(false)

    public init(input: Int32, output: Int32, handler: RPCMethodHandler, limits: Limits = Limits()) {
        self.writer = MessageWriter(descriptor: output)
        self.reader = FrameReader(descriptor: input, maximumMessageByteCount: limits.maximumMessageByteCount)
        self.handler = handler
        self.limits = limits
    }

    /// Serves until end of input (returns 0 once queued work is done) or `exit` (terminates the
    /// process with the LSP exit code).
    public func run() -> Int32 {
        while true {
            switch reader.next() {
            case let .message(body):
                adoptFraming()
                let parsed = body.withUnsafeBytes { MessageParser.parse($0, maximumByteCount: limits.maximumMessageByteCount) }
                dispatch(parsed)
            case let .frameError(error):
                adoptFraming()
                reply(MessageParser.response(id: nil, result: .failure(error)))
            case let .end(truncated):
                workQueue.sync {}
                if let truncated { writer.send(MessageParser.response(id: nil, result: .failure(truncated))) }
                return 0
            }
        }
    }

    /// Replies use the client's framing, fixed by its first message (set once: the writer's
    /// lock is contended by replies in flight).
    private var framingAdopted = false
    private func adoptFraming() {
        guard !framingAdopted, let framing = reader.framing else { return }
        writer.setFraming(framing)
        framingAdopted = true
    }

    private func dispatch(_ message: ParsedMessage) {
        switch message {
        case let .failure(error):
            reply(MessageParser.response(id: nil, result: .failure(error)))
        case let .single(parsed):
            guard let call = accept(parsed) else { return }
            workQueue.async {
                if let response = self.process(call) { self.writer.send(response) }
            }
        case let .batch(elements):
            // Invalid elements are answered inside the batch, in order; `accept` is only for
            // valid calls so that it does not send them on its own.
            let calls = elements.map { element -> ParsedCall in
                if case let .call(call) = element { return accept(.call(call)).map(ParsedCall.call) ?? .ignored }
                return element
            }
            workQueue.async {
                var responses: [JSONValue] = []
                for call in calls {
                    switch call {
                    case let .call(call): if let response = self.process(call) { responses.append(response) }
                    case let .invalid(id, error): responses.append(MessageParser.response(id: id, result: .failure(error)))
                    case .ignored: break
                    }
                }
                if !responses.isEmpty { self.writer.send(.array(responses)) }
            }
        }
    }

    /// Handles what must not wait behind compute (cancellation) and registers the rest.
    /// Returns the call to queue, or nil when it was fully handled here.
    private func accept(_ parsed: ParsedCall) -> IncomingCall? {
        switch parsed {
        case .ignored:
            return nil
        case let .invalid(id, error):
            reply(MessageParser.response(id: id, result: .failure(error)))
            return nil
        case let .call(call):
            if call.method == "$/cancelRequest" {
                if let target = call.params?["id"], let key = Self.key(target) {
                    pending.withLock { $0[key] }?.cancel()
                }
                if let id = call.id { reply(MessageParser.response(id: id, result: .success(.null))) }
                return nil
            }
            if let id = call.id, let key = Self.key(id) {
                pending.withLock { $0[key] = CancellationToken() }
            }
            return call
        }
    }

    /// Sends a reply that needs no work, behind the replies already queued, so that replies
    /// leave in the order their requests arrived.
    private func reply(_ response: JSONValue) {
        workQueue.async { self.writer.send(response) }
    }

    /// Runs one call on the work queue; nil for notifications.
    private func process(_ call: IncomingCall) -> JSONValue? {
        let key = call.id.flatMap(Self.key)
        let token = key.flatMap { key in pending.withLock { $0[key] } } ?? CancellationToken()
        defer { if let key { _ = pending.withLock { $0.removeValue(forKey: key) } } }
        let result = execute(call, token: token)
        guard let id = call.id else {
            if case let .failure(error) = result, error.code != RPCError.Code.methodNotFound {
                Log.writeToStandardError("notification \(call.method) failed: \(error)")
            }
            return nil
        }
        return MessageParser.response(id: id, result: result)
    }

    private func execute(_ call: IncomingCall, token: CancellationToken) -> Result<JSONValue, RPCError> {
        if call.method == "exit" {
            let code: Int32 = isShutDown.withLock { $0 } ? 0 : 1
            exit(code)
        }
        if token.isCancelled { return .failure(.cancelled(call.method)) }
        if isShutDown.withLock({ $0 }) {
            return .failure(.invalidRequest("the server is shut down; only \"exit\" is accepted"))
        }
        if call.method == "shutdown" {
            isShutDown.withLock { $0 = true }
            return .success(.null)
        }
        let context = RequestContext(method: call.method, cancellation: token, workDoneToken: call.workDoneToken, writer: writer)
        do {
            return .success(try handler.handle(call, context: context))
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            return .failure(RPCError(code: RPCError.Code.internalError, message: "Internal error: \(error)",
                                     data: ["reason": .string("\(error)")]))
        }
    }

    /// Ids are matched by type and value, so `1` and `"1"` stay distinct.
    private static func key(_ id: JSONValue) -> String? {
        switch id {
        case let .integer(value): return "i\(value)"
        case let .number(value): return "n\(value.bitPattern)"
        case let .string(value): return "s" + value
        case .null: return "null"
        default: return nil
        }
    }
}
