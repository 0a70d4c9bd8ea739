import XCTest
import JSON
@testable import JSONRPC

final class ProtocolTests: XCTestCase {
    private func replies(_ messages: [String]) throws -> [JSONValue] {
        try lines(runConnection(Array((messages.joined(separator: "\n") + "\n").utf8)))
    }

    func testInvalidRequestsUnknownMethodsAndHandlerErrors() throws {
        let result = try replies([
            #"{"jsonrpc":"1.0","id":1,"method":"echo"}"#,
            #"{"jsonrpc":"2.0","id":2}"#,
            #"{"jsonrpc":"2.0","id":3,"method":7}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"echo","params":3}"#,
            #"{"jsonrpc":"2.0","id":5,"method":"nope"}"#,
            #"{"jsonrpc":"2.0","id":6,"method":"fail"}"#,
            #"{"jsonrpc":"2.0","id":7,"method":"crash"}"#,
            #"{"jsonrpc":"2.0","id":{"x":1},"method":"echo"}"#,
            #""just a string""#,
        ])
        let codes = result.map { $0["error"]?["code"]?.intValue }
        XCTAssertEqual(codes, [-32600, -32600, -32600, -32600, -32601, -32602, -32603, -32600, -32600])
        XCTAssertEqual(result[0]["id"], .integer(1), "the id is echoed when it could be read")
        XCTAssertEqual(result[4]["error"]?["data"]?["method"], "nope")
        XCTAssertEqual(result[5]["error"]?["data"]?["param"], "x")
        XCTAssertEqual(result[7]["id"], .null)
    }

    func testBatches() throws {
        let result = try replies([
            #"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","method":"echo"},1,{"jsonrpc":"2.0","id":2,"method":"nope"}]"#,
            "[]",
            #"[{"jsonrpc":"2.0","method":"echo"}]"#,
            #"{"jsonrpc":"2.0","id":3,"method":"echo"}"#,
        ])
        XCTAssertEqual(result.count, 3, "an all-notification batch gets no reply")
        let batch = try XCTUnwrap(result[0].arrayValue)
        XCTAssertEqual(batch.count, 3)
        XCTAssertEqual(batch[0]["result"], [1])
        XCTAssertEqual(batch[1]["error"]?["code"], .integer(-32600))
        XCTAssertEqual(batch[2]["error"]?["code"], .integer(-32601))
        XCTAssertEqual(result[1]["error"]?["code"], .integer(-32600), "an empty batch is one invalid request")
        XCTAssertEqual(result[2]["id"], .integer(3))
    }

    func testShutdownRefusesLaterRequests() throws {
        let result = try replies([
            #"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"echo"}"#,
        ])
        XCTAssertEqual(result[0]["result"], .null)
        XCTAssertEqual(result[1]["error"]?["code"], .integer(-32600))
    }

    func testCancellationAnswersWithRequestCancelledAndProgressIsReported() throws {
        let slow = #"{"jsonrpc":"2.0","id":"s","method":"slow","params":{"workDoneToken":"tok"}}"#
        let cancel = #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"s"}}"#
        let chunks = [Array((slow + "\n").utf8), Array((cancel + "\n").utf8)]
        let output = try lines(runConnection([], writeDelay: 100_000, chunks: chunks))
        let progress = output.filter { $0["method"] == "$/progress" }
        XCTAssertEqual(progress.first?["params"]?["token"], "tok")
        XCTAssertEqual(progress.first?["params"]?["value"]?["kind"], "begin")
        XCTAssertTrue(progress.dropFirst().allSatisfy { $0["params"]?["value"]?["kind"] == "report" })
        let response = try XCTUnwrap(output.last)
        XCTAssertEqual(response["id"], "s")
        XCTAssertEqual(response["error"]?["code"], .integer(-32800))
    }

    func testNoProgressWithoutAToken() throws {
        let output = try replies([#"{"jsonrpc":"2.0","id":1,"method":"slow"}"#])
        XCTAssertEqual(output.count, 1)
        XCTAssertEqual(output[0]["result"], "done")
    }
}
