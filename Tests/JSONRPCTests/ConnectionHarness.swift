#if canImport(Glibc)
import Glibc
#endif
import Foundation
import JSON
@testable import JSONRPC

/// Echoes params back, fails on demand, and sleeps for cancellation tests.
struct EchoHandler: RPCMethodHandler {
    func handle(_ call: IncomingCall, context: RequestContext) throws -> JSONValue {
        switch call.method {
        case "echo": return call.params ?? .null
        case "fail": throw RPCError.invalidParams("x", "always fails")
        case "crash": throw NSError(domain: "test", code: 7)
        case "slow":
            let progress = context.progress(title: "slow")
            progress.begin()
            for step in 0..<50 {
                try context.checkCancellation()
                progress.report(message: "step \(step)", completed: step, total: 50)
                usleep(10_000)
            }
            progress.end()
            return "done"
        default: throw RPCError.methodNotFound(call.method)
        }
    }
}

/// Runs a connection over pipes: writes `input` (then closes stdin) and returns the raw output.
func runConnection(_ input: [UInt8], limit: Int = 1 << 20, writeDelay: useconds_t = 0, chunks: [[UInt8]]? = nil) -> [UInt8] {
    var inputPipe: [Int32] = [0, 0]
    var outputPipe: [Int32] = [0, 0]
    pipe(&inputPipe)
    pipe(&outputPipe)
    let connection = Connection(input: inputPipe[0], output: outputPipe[1], handler: EchoHandler(),
                                limits: .init(maximumMessageByteCount: limit))
    let writerFD = inputPipe[1]
    let parts = chunks ?? [input]
    let writer = Thread {
        for part in parts {
            part.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(writerFD, raw.baseAddress! + offset, raw.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
            if writeDelay > 0 { usleep(writeDelay) }
        }
        close(writerFD)
    }
    writer.start()
    // Replies in these tests are small, so they fit in the pipe buffer until run() returns.
    _ = connection.run()
    close(outputPipe[1])
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(outputPipe[0], $0.baseAddress!, $0.count) }
        if count <= 0 { break }
        output.append(contentsOf: buffer[0..<count])
    }
    close(inputPipe[0]); close(outputPipe[0])
    return output
}

/// Splits newline-delimited output into parsed messages.
func lines(_ output: [UInt8]) throws -> [JSONValue] {
    try output.split(separator: 0x0A).map { try JSON.parse(Array($0)) }
}

/// Splits Content-Length framed output into parsed messages.
func frames(_ output: [UInt8]) throws -> [JSONValue] {
    var messages: [JSONValue] = []
    var rest = output[...]
    while let headerEnd = rest.firstRange(of: Array("\r\n\r\n".utf8)) {
        let header = String(decoding: rest[rest.startIndex..<headerEnd.lowerBound], as: UTF8.self)
        let length = Int(header.replacingOccurrences(of: "Content-Length: ", with: ""))!
        let body = rest[headerEnd.upperBound..<(headerEnd.upperBound + length)]
        messages.append(try JSON.parse(Array(body)))
        rest = rest[(headerEnd.upperBound + length)...]
    }
    return messages
}

func frame(_ body: String) -> String { "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" }
