import Foundation
import JSON
import XCTest

final class LifecycleTests: XCTestCase {
    func testExitCodeFollowsShutdown() throws {
        let polite = try DaemonSession()
        XCTAssertEqual(try polite.request("shutdown")["result"], .null)
        try polite.send(["jsonrpc": "2.0", "method": "exit"])
        polite.process.waitUntilExit()
        XCTAssertEqual(polite.process.terminationStatus, 0)

        let abrupt = try DaemonSession()
        try abrupt.send(["jsonrpc": "2.0", "method": "exit"])
        abrupt.process.waitUntilExit()
        XCTAssertEqual(abrupt.process.terminationStatus, 1)
    }

    func testContentLengthFramingEndToEndWithAHostileHeader() throws {
        let session = try DaemonSession()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"model/list"}"#
        let input = "Content-Length: 18446744073709551616\r\n\r\n" + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        session.sendRaw(Array(input.utf8))
        let output = String(decoding: session.closeAndReadAll(), as: UTF8.self)
        XCTAssertTrue(output.hasPrefix("Content-Length: "), output)
        XCTAssertTrue(output.contains("-32700"), output)
        XCTAssertTrue(output.contains(#""id":1,"result":{"models":[]}"#), output)
        XCTAssertEqual(session.process.terminationStatus, 0)
    }

    func testStrayWritesToStdoutDoNotCorruptTheStream() throws {
        let session = try DaemonSession(environment: ["LOQUAT_DEBUG_STRAY_STDOUT": "1"])
        let response = try session.request("model/list")
        XCTAssertEqual(response["result"]?["models"], [])
        XCTAssertEqual(session.finish(), 0)
    }

    func testInitializeReportsTheBLASCore() throws {
        let session = try DaemonSession()
        let result = try XCTUnwrap(try session.request("initialize", ["processId": .int(Int(getpid()))])["result"])
        XCTAssertFalse(result["runtime"]?["blasCore"]?.stringValue?.isEmpty ?? true)
        XCTAssertGreaterThan(result["runtime"]?["blasThreads"]?.intValue ?? 0, 0)
        XCTAssertEqual(result["serverInfo"]?["name"], "loquatd")
    }
}
