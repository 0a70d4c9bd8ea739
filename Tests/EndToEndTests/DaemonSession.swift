import Foundation
import JSON
import XCTest

/// The built daemon: `$LOQUATD`, else the debug build beside the tests.
func daemonPath() throws -> String {
    if let path = ProcessInfo.processInfo.environment["LOQUATD"], !path.isEmpty { return path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for candidate in [".build/debug/loquatd", ".build/release/loquatd"] {
        let path = root.appendingPathComponent(candidate).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw XCTSkip("no loquatd binary: set LOQUATD or build the loquatd product")
}

/// One running daemon over pipes, speaking newline-delimited JSON (or raw bytes).
final class DaemonSession {
    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private var pending: [UInt8] = []

    init(environment extra: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: try daemonPath())
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        try process.run()
    }

    func sendRaw(_ bytes: [UInt8]) {
        stdinPipe.fileHandleForWriting.write(Data(bytes))
    }

    func send(_ message: JSONValue) throws {
        sendRaw(try JSON.serialize(message) + [0x0A])
    }

    /// Sends a request and returns its response, skipping notifications (collected in `notifications`).
    var notifications: [JSONValue] = []
    func request(_ method: String, _ params: JSONValue = [:], id: JSONValue = 1) throws -> JSONValue {
        try send(["jsonrpc": "2.0", "id": id, "method": .string(method), "params": params])
        while true {
            let message = try readMessage()
            if message["method"] != nil { notifications.append(message); continue }
            return message
        }
    }

    /// Sends a request with a `workDoneToken`, cancels it as soon as its first progress `report`
    /// arrives, and returns the response (for cancellation tests).
    func requestCancellingAtFirstReport(_ method: String, _ params: JSONValue, id: JSONValue) throws -> JSONValue {
        try send(["jsonrpc": "2.0", "id": id, "method": .string(method), "params": params])
        var cancelled = false
        while true {
            let message = try readMessage()
            guard message["method"] == "$/progress" else { return message }
            if !cancelled && message["params"]?["value"]?["kind"] == "report" {
                try send(["jsonrpc": "2.0", "method": "$/cancelRequest", "params": ["id": id]])
                cancelled = true
            }
        }
    }

    /// Reads one newline-delimited message.
    func readMessage() throws -> JSONValue {
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                return try JSON.parse(line)
            }
            let data = stdoutPipe.fileHandleForReading.availableData
            if data.isEmpty { throw DaemonClosed(stderr: stderrText()) }
            pending.append(contentsOf: data)
        }
    }

    /// Everything left on stdout after the daemon exits.
    func closeAndReadAll() -> [UInt8] {
        stdinPipe.fileHandleForWriting.closeFile()
        var output = pending
        output.append(contentsOf: stdoutPipe.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        return output
    }

    func stderrText() -> String {
        String(decoding: stderrPipe.fileHandleForReading.availableData, as: UTF8.self)
    }

    func finish() -> Int32 {
        stdinPipe.fileHandleForWriting.closeFile()
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

struct DaemonClosed: Error, CustomStringConvertible {
    let stderr: String
    var description: String { "the daemon closed its output; stderr: \(stderr)" }
}
