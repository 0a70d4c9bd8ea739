import JSON
import Synchronization

/// A flag set by `$/cancelRequest`; handlers check it between layers (a BLAS call cannot be
/// interrupted) and throw `RPCError.cancelled` via `checkCancellation()`.
public final class CancellationToken: Sendable {
    private let flag = Mutex(false)
    public init() {}
    public var isCancelled: Bool { flag.withLock { $0 } }
    func cancel() { flag.withLock { $0 = true } }
}

/// What a handler gets besides its params: cancellation and progress for this request.
public struct RequestContext: Sendable {
    public let method: String
    public let cancellation: CancellationToken
    let workDoneToken: JSONValue?
    let writer: MessageWriter

    /// Throws -32800 when the client cancelled this request.
    public func checkCancellation() throws {
        if cancellation.isCancelled { throw RPCError.cancelled(method) }
    }

    /// A progress reporter when the request carried a `workDoneToken`, else one that sends
    /// nothing, so handlers report unconditionally.
    public func progress(title: String) -> ProgressReporter {
        ProgressReporter(token: workDoneToken, title: title, writer: writer)
    }
}

/// LSP work-done progress: `$/progress {token, value: {kind: begin|report|end, …}}`.
/// `report` carries a percentage (0–100), a message (the layer name) and an ETA in seconds.
public final class ProgressReporter: Sendable {
    private let token: JSONValue?
    private let title: String
    private let writer: MessageWriter
    private let startTime: ContinuousClock.Instant

    init(token: JSONValue?, title: String, writer: MessageWriter) {
        self.token = token
        self.title = title
        self.writer = writer
        self.startTime = .now
    }

    public var isActive: Bool { token != nil }

    public func begin(message: String? = nil) {
        var value: JSONObject = ["kind": "begin", "title": .string(title), "cancellable": true, "percentage": 0]
        if let message { value["message"] = .string(message) }
        send(value)
    }

    /// `completed` of `total` units done; the ETA extrapolates the elapsed time linearly.
    public func report(message: String, completed: Int, total: Int) {
        guard token != nil, total > 0 else { return }
        let fraction = Double(completed) / Double(total)
        var value: JSONObject = ["kind": "report", "cancellable": true, "message": .string(message),
                                 "percentage": .int(Int((fraction * 100).rounded(.down)))]
        if fraction > 0 {
            let elapsed = ContinuousClock.now - startTime
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            value["etaSeconds"] = .double((seconds / fraction - seconds * 1).rounded(toPlaces: 3))
        }
        send(value)
    }

    public func end(message: String? = nil) {
        var value: JSONObject = ["kind": "end"]
        if let message { value["message"] = .string(message) }
        send(value)
    }

    private func send(_ value: JSONObject) {
        guard let token else { return }
        writer.notify(method: "$/progress", params: ["token": token, "value": .object(value)])
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (self * scale).rounded() / scale
    }
}
