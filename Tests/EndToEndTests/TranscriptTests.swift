import Foundation
import JSON
import TestSupport
import XCTest

/// Replays protocol/examples/*.jsonl against the built daemon. Each line is one of
/// `{"send": message}`, `{"sendRaw": "text"}` (sent as one line, for malformed input) or
/// `{"expect": partial}`, which must match the next message that is not a `$/progress`
/// notification. Objects match as subsets, arrays element by element, and the string "<any>"
/// matches any value. `${MINILM}`, `${SMOLLM2}` and `${TMP}` are substituted first; a
/// transcript that needs a missing sample model is skipped.
final class TranscriptTests: XCTestCase {
    static var examplesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("protocol/examples")
    }

    func testEveryTranscriptReplays() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.examplesDirectory.path)
            .filter { $0.hasSuffix(".jsonl") }.sorted()
        XCTAssertFalse(files.isEmpty)
        for file in files { try replay(file) }
    }

    private func replay(_ file: String) throws {
        var text = try String(contentsOf: Self.examplesDirectory.appendingPathComponent(file), encoding: .utf8)
        let temporary = makeTemporaryDirectory("transcript")
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let substitutions: [(String, String?)] = [("${MINILM}", SampleModels.miniLMDirectory),
                                                  ("${SMOLLM2}", SampleModels.smolLM2GGUF), ("${TMP}", temporary)]
        for (placeholder, value) in substitutions where text.contains(placeholder) {
            guard let value else {
                print("skipping \(file): sample model for \(placeholder) is missing")
                return
            }
            text = text.replacingOccurrences(of: placeholder, with: value)
        }
        let session = try DaemonSession()
        for (lineNumber, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let step = try JSON.parse(String(line))
            if let message = step["send"] {
                try session.send(message)
            } else if let raw = step["sendRaw"]?.stringValue {
                session.sendRaw(Array((raw + "\n").utf8))
            } else if let expected = step["expect"] {
                var actual = try session.readMessage()
                while actual["method"] == "$/progress" { actual = try session.readMessage() }
                if let mismatch = Self.mismatch(expected: expected, actual: actual, path: "$") {
                    XCTFail("\(file):\(lineNumber + 1): \(mismatch)\n  got: \(try JSON.serializeToString(actual))")
                    return
                }
            } else {
                XCTFail("\(file):\(lineNumber + 1): a step needs send, sendRaw or expect")
            }
        }
        XCTAssertEqual(session.finish(), 0, "\(file): the daemon exits cleanly at end of input")
    }

    /// nil when `actual` matches `expected`, else where it differs.
    static func mismatch(expected: JSONValue, actual: JSONValue, path: String) -> String? {
        if expected == .string("<any>") { return nil }
        switch (expected, actual) {
        case let (.object(want), .object(have)):
            for (key, value) in want {
                guard let other = have[key] else { return "\(path).\(key) is missing" }
                if let problem = mismatch(expected: value, actual: other, path: "\(path).\(key)") { return problem }
            }
            return nil
        case let (.array(want), .array(have)):
            guard want.count == have.count else { return "\(path) has \(have.count) elements, expected \(want.count)" }
            for (index, pair) in zip(want, have).enumerated() {
                if let problem = mismatch(expected: pair.0, actual: pair.1, path: "\(path)[\(index)]") { return problem }
            }
            return nil
        default:
            if let a = expected.doubleValue, let b = actual.doubleValue { return a == b ? nil : "\(path) is \(b), expected \(a)" }
            return expected == actual ? nil : "\(path) is \((try? JSON.serializeToString(actual)) ?? "?"), expected \((try? JSON.serializeToString(expected)) ?? "?")"
        }
    }
}
