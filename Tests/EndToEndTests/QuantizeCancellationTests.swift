import Foundation
import JSON
import TestSupport
import XCTest

final class QuantizeCancellationTests: XCTestCase {
    /// `$/cancelRequest` during `quantize` stops it between layers: -32800, nothing registered,
    /// and the daemon keeps serving.
    func testCancelledQuantizeRegistersNothing() throws {
        let session = try sampleModelSession()
        let methods = try session.implementedQuantizers()
        // The slowest calibration-free method gives the cancel the most layers to land between.
        guard let method = ["hqq", "nf", "int", "nf4"].first(where: methods.contains) else { throw XCTSkip("no quantizer") }
        let response = try session.requestCancellingAtFirstReport("quantize",
                                                                  ["model": "smol", "method": .string(method), "workDoneToken": "t"], id: 7)
        XCTAssertEqual(response["error"]?["code"], -32800, "\(response)")
        let models = try session.result("model/list", [:])["models"]?.arrayValue?.compactMap { $0["model"]?.stringValue }
        XCTAssertEqual(models, ["mini", "smol"], "a cancelled quantize registers nothing")
        let again = try session.result("quantize", ["model": "smol", "method": .string(method), "targets": ["model.layers.0.*"]])
        XCTAssertEqual(again.ledger.count, 7, "the daemon keeps serving")
        XCTAssertEqual(session.finish(), 0)
    }
}
