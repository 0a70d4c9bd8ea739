import XCTest
import JSON
@testable import JSONRPC

final class FramingTests: XCTestCase {
    func testNewlineDelimitedRequestsAreAnsweredInOrderWithTheirIds() throws {
        let input = #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":1}}"# + "\n"
            + #"{"jsonrpc":"2.0","id":"two","method":"echo","params":[true]}"# + "\r\n\n"
            + #"{"jsonrpc":"2.0","method":"echo","params":{}}"# + "\n"
            + #"{"jsonrpc":"2.0","id":3.5,"method":"echo"}"#
        let replies = try lines(runConnection(Array(input.utf8)))
        XCTAssertEqual(replies.count, 3)
        XCTAssertEqual(replies[0]["id"], .integer(1))
        XCTAssertEqual(replies[0]["result"], ["a": 1])
        XCTAssertEqual(replies[1]["id"], .string("two"))
        XCTAssertEqual(replies[2]["id"], .number(3.5))
        XCTAssertEqual(replies[2]["result"], .null)
    }

    func testContentLengthFramingIsDetectedAndUsedForReplies() throws {
        let input = "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + frame(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"é":"ü"}}"#)
            + frame(#"{"jsonrpc":"2.0","id":2,"method":"echo"}"#)
        let output = runConnection(Array(input.utf8), chunks: input.utf8.map { [$0] })
        let replies = try frames(output)
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies[0]["result"], ["é": "ü"])
        XCTAssertEqual(replies[1]["id"], .integer(2))
    }

    func testMalformedJSONGivesParseErrorAndTheNextRequestStillWorks() throws {
        let input = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\n" + #"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"ok":true}}"# + "\n"
        let replies = try lines(runConnection(Array(input.utf8)))
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies[0]["error"]?["code"], .integer(-32700))
        XCTAssertEqual(replies[0]["id"], .null)
        XCTAssertNotNil(replies[0]["error"]?["data"]?["reason"]?.stringValue)
        XCTAssertEqual(replies[1]["result"], ["ok": true])
    }

    func testNegativeHugeAndOverflowingContentLengthsAreRefusedWithoutAllocating() throws {
        let good = frame(#"{"jsonrpc":"2.0","id":9,"method":"echo","params":{"after":true}}"#)
        for header in ["Content-Length: -5\r\n\r\n{}", "Content-Length: 99999999999999999999999\r\n\r\n{}",
                       "Content-Length: 12abc\r\n\r\n{}", "X-Nothing: 1\r\n\r\n"] {
            let replies = try frames(runConnection(Array((header + good).utf8)))
            XCTAssertEqual(replies.count, 2, header)
            XCTAssertEqual(replies[0]["error"]?["code"], .integer(-32700), header)
            XCTAssertEqual(replies[1]["result"], ["after": true], header)
        }
        // Declared far above the cap: refused, the declared bytes are skipped as they stream.
        let huge = "Content-Length: 4000000000000\r\n\r\n" + "x"
        let replies = try frames(runConnection(Array(huge.utf8), limit: 1024))
        XCTAssertEqual(replies.count, 1)
        XCTAssertEqual(replies[0]["error"]?["data"]?["limit"], .integer(1024))
    }

    func testBodyTruncatedAtEndOfInputIsReportedAndEarlierRequestsAnswered() throws {
        let input = frame(#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#) + "Content-Length: 100\r\n\r\n{\"jsonrpc\""
        let replies = try frames(runConnection(Array(input.utf8)))
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies[0]["id"], .integer(1))
        XCTAssertEqual(replies[1]["error"]?["code"], .integer(-32700))
        XCTAssertEqual(replies[1]["error"]?["data"]?["expectedByteCount"], .integer(100))
    }

    func testOverlongLineIsRefusedAndSkipped() throws {
        let long = #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"s":""# + String(repeating: "a", count: 5000) + "\"}}\n"
        let input = long + #"{"jsonrpc":"2.0","id":2,"method":"echo"}"# + "\n"
        let replies = try lines(runConnection(Array(input.utf8), limit: 1000))
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies[0]["error"]?["code"], .integer(-32600))
        XCTAssertEqual(replies[1]["id"], .integer(2))
    }
}
