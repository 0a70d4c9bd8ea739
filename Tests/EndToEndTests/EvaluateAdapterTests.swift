import Foundation
import JSON
import TestSupport
import XCTest

/// `evaluate` with an unmerged adapter: `x·Wᵀ + s·(x·Aᵀ)·Bᵀ` in every adapted projection.
final class EvaluateAdapterTests: XCTestCase {
    static let tinyAdapter = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../AdaptersTests/Fixtures/peft/tiny-llama/adapter-lora").standardized.path

    func testZeroAdapterChangesNothingAndCLoQLowersTheKLD() throws {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        XCTAssertNotNil(try session.request("quantize", ["model": "base", "method": "nf", "bits": 3, "targets": ["model.layers.0.*", "model.layers.1.*"],
                                                         "name": "q"])["result"])
        func evaluate(_ model: String, adapter: String? = nil) throws -> JSONValue {
            var params: JSONObject = ["model": .string(model), "reference": "base", "metrics": ["perplexity", "kld"],
                                      "text": .string(EvaluateTests.text), "contextLength": 96, "maxChunks": 2]
            if let adapter { params["adapter"] = .string(adapter) }
            return try XCTUnwrap(session.request("evaluate", .object(params))["result"])
        }
        let plain = try evaluate("q")
        XCTAssertNotNil(try session.request("initAdapter", ["model": "q", "method": "lora", "rank": 16, "name": "zero"])["result"])
        let zero = try evaluate("q", adapter: "zero")
        XCTAssertEqual(zero["adapter"], "zero")
        XCTAssertEqual(zero["perplexity"]?["value"]?.doubleValue, plain["perplexity"]?["value"]?.doubleValue, "a zero B changes nothing, to the bit")
        XCTAssertEqual(zero["kld"]?["mean"]?.doubleValue, plain["kld"]?["mean"]?.doubleValue)

        XCTAssertNotNil(try session.request("calibrate", ["model": "base", "textFile": .string(InitAdapterTests.textFile), "contextLength": 256,
                                                          "sampleCount": 2, "targets": ["model.layers.0.*", "model.layers.1.*"], "name": "cal"])["result"])
        XCTAssertNotNil(try session.request("initAdapter", ["model": "q", "method": "cloq", "rank": 16, "calibration": "cal", "name": "cl"])["result"])
        let compensated = try evaluate("q", adapter: "cl")
        XCTAssertLessThan(try XCTUnwrap(compensated["kld"]?["mean"]?.doubleValue), try XCTUnwrap(plain["kld"]?["mean"]?.doubleValue))

        let loftq = try XCTUnwrap(session.request("initAdapter", ["model": "q", "method": "loftq", "rank": 16, "name": "lq", "modelName": "q-lq"])["result"])
        XCTAssertEqual(loftq["model"], "q-lq")
        let adapted = try evaluate("q-lq", adapter: "lq")
        XCTAssertNotNil(try session.request("initAdapter", ["model": "q", "method": "loftq", "rank": 16, "useDoRA": true, "name": "lqd", "modelName": "q-lqd"])["result"])
        let dora = try evaluate("q-lqd", adapter: "lqd")
        // At initialisation m = ‖base + sBA‖, so DoRA computes what the plain adapter does (up to rounding).
        XCTAssertEqual(try XCTUnwrap(dora["kld"]?["mean"]?.doubleValue), try XCTUnwrap(adapted["kld"]?["mean"]?.doubleValue), accuracy: 1e-4)

        // An adapter built for another model: the shape mismatch names the layer.
        XCTAssertNotNil(try session.request("adapter/load", ["path": .string(Self.tinyAdapter), "name": "tiny"])["result"])
        let wrong = try session.request("evaluate", ["model": "q", "adapter": "tiny", "metrics": ["perplexity"], "text": .string(EvaluateTests.text)])
        XCTAssertEqual(wrong["error"]?["code"], -32003, "\(wrong)")
        XCTAssertEqual(wrong["error"]?["data"]?["param"], "adapter")
        XCTAssertNotNil(wrong["error"]?["data"]?["layer"]?.stringValue)
        XCTAssertEqual(session.finish(), 0)
    }
}
