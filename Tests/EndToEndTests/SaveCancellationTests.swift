import Foundation
import JSON
import TestSupport
import XCTest

final class SaveCancellationTests: XCTestCase {
    /// A cancelled save answers -32800 and leaves no directory or file behind.
    func testCancelledSaveLeavesNothingBehind() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("sample models not fetched") }
        let directory = makeTemporaryDirectory("cancel")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(miniLM), "name": "m"])["result"])
        let target = directory + "/out"
        let response = try session.requestCancellingAtFirstReport("model/save",
                                                                  ["model": "m", "path": .string(target), "dtype": "BF16", "workDoneToken": "t"], id: 7)
        XCTAssertEqual(response["error"]?["code"], -32800, "\(response)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
        XCTAssertEqual(try session.request("initialize", id: 8)["result"]?["serverInfo"]?["name"], "loquatd")
        XCTAssertEqual(try session.request("initialize", id: 9)["error"]?["code"], -32600, "initialize is accepted once")
    }
}
