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

    /// MiniLM: embeddingCosine against the reference (1 for itself, below 1 at NF3, closer with a
    /// CLoQ adapter), and per-layer weight/output errors with and without the adapter.
    func testEmbeddingCosineAndLayerErrorsOnMiniLM() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(miniLM), "name": "bert"])["result"])
        XCTAssertNotNil(try session.request("quantize", ["model": "bert", "method": "nf", "bits": 3, "name": "b3"])["result"])
        let sentences = JSONValue.string(EvaluateTests.text.replacingOccurrences(of: ", ", with: "\n"))
        XCTAssertNotNil(try session.request("calibrate", ["model": "bert", "text": sentences, "contextLength": 64, "name": "cal"])["result"])
        XCTAssertNotNil(try session.request("initAdapter", ["model": "b3", "method": "cloq", "rank": 8, "calibration": "cal", "name": "a"])["result"])
        func evaluate(_ params: JSONObject) throws -> JSONValue {
            var all = params
            all["text"] = sentences
            return try XCTUnwrap(session.request("evaluate", .object(all))["result"], "\(params)")
        }
        let itself = try evaluate(["model": "bert", "reference": "bert", "metrics": ["embeddingCosine"]])
        XCTAssertEqual(itself["embeddingCosine"]?["mean"]?.doubleValue, 1)
        let quantized = try evaluate(["model": "b3", "reference": "bert", "metrics": ["embeddingCosine", "weightError", "outputError"], "calibration": "cal"])
        let adapted = try evaluate(["model": "b3", "adapter": "a", "reference": "bert", "metrics": ["embeddingCosine", "weightError", "outputError"], "calibration": "cal"])
        let plainCosine = try XCTUnwrap(quantized["embeddingCosine"]?["mean"]?.doubleValue)
        XCTAssertLessThan(plainCosine, 0.999)
        XCTAssertGreaterThan(try XCTUnwrap(adapted["embeddingCosine"]?["mean"]?.doubleValue), plainCosine)
        XCTAssertEqual(quantized["layers"]?.arrayValue?.count, 36)
        XCTAssertLessThan(try XCTUnwrap(adapted["outputError"]?["mean"]?.doubleValue), try XCTUnwrap(quantized["outputError"]?["mean"]?.doubleValue))
        XCTAssertEqual(session.finish(), 0)
    }

    /// A model registered after an unload may reuse the freed object's address; the forward-pass
    /// cache must not hand it the old weights.
    func testUnloadThenNewModelUnderTheSameNameIsEvaluatedAfresh() throws {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        func perplexity() throws -> Double {
            try XCTUnwrap(session.request("evaluate", ["model": "q", "metrics": ["perplexity"], "text": .string(EvaluateTests.text),
                                                       "contextLength": 64, "maxChunks": 1])["result"]?["perplexity"]?["value"]?.doubleValue)
        }
        var seen: [Double] = []
        for (method, bits) in [("nf4", 4), ("nf", 2), ("nf4", 4), ("nf", 2)] {
            XCTAssertNotNil(try session.request("quantize", ["model": "base", "method": .string(method), "bits": .int(bits), "name": "q"])["result"])
            seen.append(try perplexity())
            XCTAssertNotNil(try session.request("model/unload", ["model": "q"])["result"])
        }
        XCTAssertEqual(seen[0], seen[2])
        XCTAssertEqual(seen[1], seen[3])
        XCTAssertNotEqual(seen[0], seen[1], "nf4 and nf2 must not share cached weights")
        XCTAssertEqual(session.finish(), 0)
    }
}
