#if canImport(Glibc)
import Glibc
#endif
import JSON
import Synchronization

/// Writes whole frames to the protocol descriptor; one lock keeps frames from interleaving
/// when progress notifications and responses come from different threads.
public final class MessageWriter: Sendable {
    private let descriptor: Int32
    private let state: Mutex<Framing>

    public init(descriptor: Int32, framing: Framing = .newlineDelimited) {
        self.descriptor = descriptor
        self.state = Mutex(framing)
    }

    /// Replies follow the framing the client used; the reader sets it once detected.
    public func setFraming(_ framing: Framing) { state.withLock { $0 = framing } }

    public func send(_ message: JSONValue) {
        let body: [UInt8]
        do {
            body = try JSON.serialize(message)
        } catch {
            Log.writeToStandardError("cannot serialize a message: \(error)")
            return
        }
        state.withLock { framing in
            var frame: [UInt8]
            switch framing {
            case .newlineDelimited:
                frame = body
                frame.append(0x0A)
            case .contentLength:
                frame = Array("Content-Length: \(body.count)\r\n\r\n".utf8)
                frame.append(contentsOf: body)
            }
            frame.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }

    public func notify(method: String, params: JSONValue) {
        send(["jsonrpc": "2.0", "method": .string(method), "params": params])
    }
}

enum Log {
    static func writeToStandardError(_ message: String) {
        let line = Array("loquatd[error]: \(message)\n".utf8)
        line.withUnsafeBytes { _ = write(2, $0.baseAddress!, $0.count) }
    }
}
