#if canImport(Glibc)
import Glibc
#endif
import JSON

/// How messages are delimited on the stream, detected from the first non-blank byte: `{` or
/// `[` means newline-delimited JSON (one message per line), anything else the LSP base
/// protocol (`Content-Length: N\r\n\r\n` + N bytes of body). Replies use the same framing.
public enum Framing: Sendable, Equatable {
    case newlineDelimited
    case contentLength
}

/// What the reader produced: a message body, a framing error to answer with `id: null` (the
/// stream stays usable), or the end of input (with an error when it cut a message short).
enum FrameEvent {
    case message([UInt8])
    case frameError(RPCError)
    case end(truncated: RPCError?)
}

/// Reads frames from a file descriptor with bounded memory: a declared length above
/// `maximumMessageByteCount` is skipped by streaming, never allocated.
final class FrameReader {
    private let descriptor: Int32
    let maximumMessageByteCount: Int
    private(set) var framing: Framing?
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false
    /// Reused for every read, so a read does not allocate and zero 64 KiB.
    private var chunk = [UInt8](repeating: 0, count: 65536)
    private static let maximumHeaderByteCount = 8192

    init(descriptor: Int32, maximumMessageByteCount: Int) {
        self.descriptor = descriptor
        self.maximumMessageByteCount = maximumMessageByteCount
    }

    private var available: Int { buffer.count - start }

    /// Reads more bytes; false at end of input.
    private func fill() -> Bool {
        if atEnd { return false }
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { atEnd = true; return false }
            buffer.append(contentsOf: chunk[0..<count])
            return true
        }
    }

    /// Index of `byte` at or after `start + from`, reading more input as needed, but never
    /// buffering more than `limit` bytes past `start`; nil at end of input or past the limit.
    private func find(_ byte: UInt8, from: Int = 0, limit: Int) -> Int? {
        // Offsets are kept relative to `start`: `fill()` may compact the buffer.
        var scannedOffset = from
        while true {
            if let index = buffer[(start + scannedOffset)..<buffer.count].firstIndex(of: byte) { return index }
            scannedOffset = available
            if available > limit { return nil }
            if !fill() { return nil }
        }
    }

    func next() -> FrameEvent {
        // Skip blank bytes between messages and detect the framing from the first real byte.
        while true {
            while start < buffer.count, [0x20, 0x09, 0x0A, 0x0D].contains(buffer[start]) { start += 1 }
            if start < buffer.count { break }
            if !fill() { return .end(truncated: nil) }
        }
        if framing == nil {
            framing = (buffer[start] == UInt8(ascii: "{") || buffer[start] == UInt8(ascii: "[")) ? .newlineDelimited : .contentLength
        }
        return framing == .newlineDelimited ? nextLine() : nextContentLengthFrame()
    }

    // MARK: newline-delimited

    private func nextLine() -> FrameEvent {
        if let newline = find(0x0A, limit: maximumMessageByteCount), newline - start <= maximumMessageByteCount + 1 {
            var end = newline
            if end > start && buffer[end - 1] == 0x0D { end -= 1 }
            let body = Array(buffer[start..<end])
            start = newline + 1
            return .message(body)
        }
        if atEnd && available <= maximumMessageByteCount {
            // The last line has no newline: still a message.
            let body = Array(buffer[start..<buffer.count])
            start = buffer.count
            return .message(body)
        }
        // Longer than the cap: drop it up to the next newline without keeping it.
        var dropped = 0
        while true {
            if let newline = buffer[start..<buffer.count].firstIndex(of: 0x0A) {
                dropped += newline - start
                start = newline + 1
                break
            }
            dropped += available
            start = buffer.count
            if !fill() { break }
        }
        return .frameError(RPCError(code: RPCError.Code.invalidRequest, message: "Invalid request: message exceeds the size limit",
                                    data: ["reason": "a line exceeds the message size limit", "byteCount": .int(dropped), "limit": .int(maximumMessageByteCount)]))
    }

    // MARK: Content-Length

    private func headerError(_ reason: String, limit: Int? = nil) -> FrameEvent {
        var data: JSONObject = ["reason": .string(reason)]
        if let limit { data["limit"] = .int(limit) }
        return .frameError(RPCError(code: RPCError.Code.parseError, message: "Parse error: bad frame header: \(reason)",
                                    data: .object(data)))
    }

    private func nextContentLengthFrame() -> FrameEvent {
        var contentLength: Int?
        var lengthProblem: String?
        var headerByteCount = 0
        while true {
            guard let newline = find(0x0A, limit: Self.maximumHeaderByteCount) else {
                if atEnd {
                    start = buffer.count
                    return .end(truncated: RPCError.parseError("input ended inside a frame header"))
                }
                resynchronize()
                return headerError("header longer than \(Self.maximumHeaderByteCount) bytes")
            }
            var lineEnd = newline
            if lineEnd > start && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let line = String(decoding: buffer[start..<lineEnd], as: UTF8.self)
            headerByteCount += newline + 1 - start
            start = newline + 1
            if line.isEmpty { break }
            if headerByteCount > Self.maximumHeaderByteCount {
                resynchronize()
                return headerError("header longer than \(Self.maximumHeaderByteCount) bytes")
            }
            guard let colon = line.firstIndex(of: ":") else {
                resynchronize()
                return headerError("not a header line: \(line.prefix(80))")
            }
            let name = line[..<colon].trimmingSpaces.lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            switch name {
            case "content-length":
                if let parsed = Int(value), parsed >= 0, value.allSatisfy(\.isASCIIDigitForHeader) {
                    contentLength = parsed
                } else {
                    lengthProblem = value.hasPrefix("-") ? "negative Content-Length \(value)" : "Content-Length \(value.prefix(40)) is not a byte count that fits"
                }
            case "content-type":
                let parameters = value.lowercased().split(separator: ";").map { $0.trimmingSpaces }
                if let charsetParameter = parameters.first(where: { $0.hasPrefix("charset=") }) {
                    let charset = charsetParameter.dropFirst("charset=".count).trimmingCharacters(in: " \"")
                    if charset != "utf-8" && charset != "utf8" { lengthProblem = lengthProblem ?? "unsupported charset \(charset)" }
                }
            default:
                continue
            }
        }
        if let lengthProblem, contentLength == nil {
            resynchronize()
            return headerError(lengthProblem)
        }
        guard let contentLength else {
            resynchronize()
            return headerError("missing Content-Length")
        }
        if contentLength > maximumMessageByteCount {
            skip(contentLength)
            return headerError("Content-Length \(contentLength) exceeds the limit", limit: maximumMessageByteCount)
        }
        while available < contentLength {
            if !fill() {
                let got = available
                start = buffer.count
                return .end(truncated: RPCError(code: RPCError.Code.parseError, message: "Parse error: input ended inside a message body",
                                                data: ["expectedByteCount": .int(contentLength), "receivedByteCount": .int(got)]))
            }
        }
        let body = Array(buffer[start..<(start + contentLength)])
        start += contentLength
        if let lengthProblem { return headerError(lengthProblem) }
        return .message(body)
    }

    /// Discards `byteCount` bytes as they arrive, never holding more than one read.
    private func skip(_ byteCount: Int) {
        var remaining = byteCount
        while remaining > 0 {
            if available == 0 && !fill() { return }
            let step = min(remaining, available)
            start += step
            remaining -= step
        }
    }

    /// After a header we cannot trust, drops input up to the next `Content-Length` header.
    private func resynchronize() {
        let needle = Array("content-length".utf8)
        while true {
            var index = start
            while index + needle.count <= buffer.count {
                if (0..<needle.count).allSatisfy({ buffer[index + $0] | 0x20 == needle[$0] }) {
                    start = index
                    return
                }
                index += 1
            }
            start = max(start, buffer.count - needle.count + 1)
            if !fill() { start = buffer.count; return }
        }
    }
}

private extension Character {
    var isASCIIDigitForHeader: Bool { isASCII && isNumber }
}

private extension StringProtocol {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }

    func trimmingCharacters(in set: String) -> String {
        String(self.drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}
