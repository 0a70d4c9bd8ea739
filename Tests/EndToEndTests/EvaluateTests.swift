import Foundation
import JSON
import TestSupport
import XCTest

/// `evaluate` through the real daemon on SmolLM2: perplexity, and KLD / top-1 / Δp against a
/// reference computed on the fly.
final class EvaluateTests: XCTestCase {
    /// Public-domain prose (the opening of "Pride and Prejudice", 1813), repeated to fill windows.
    static let text = String(repeating: """
        It is a truth universally acknowledged, that a single man in possession of a good fortune, \
        must be in want of a wife. However little known the feelings or views of such a man may be on \
        his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding \
        families, that he is considered the rightful property of some one or other of their daughters.

        """, count: 4)

    private func session() throws -> DaemonSession {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        return session
    }

    func testPerplexityAndReferenceMetrics() throws {
        let session = try session()
        let evaluation: JSONValue = ["model": "base", "metrics": ["perplexity"], "text": .string(Self.text),
                                     "contextLength": 64, "maxChunks": 2, "scoring": "all", "workDoneToken": "p"]
        let base = try XCTUnwrap(session.request("evaluate", evaluation)["result"], "\(session.notifications)")
        let perplexity = try XCTUnwrap(base["perplexity"]?["value"]?.doubleValue)
        XCTAssertTrue(perplexity > 1 && perplexity < 1000, "\(perplexity)")
        XCTAssertEqual(base["perplexity"]?["scoring"], "all")
        XCTAssertEqual(base["perplexity"]?["chunkCount"], 2)
        XCTAssertTrue(session.notifications.contains { ($0["params"]?["value"]?["message"]?.stringValue ?? "").hasPrefix("perplexity ") },
                      "progress carries the running perplexity")

        let same = try XCTUnwrap(session.request("evaluate", ["model": "base", "reference": "base", "metrics": ["kld", "top1Agreement"],
                                                              "text": .string(Self.text), "contextLength": 64, "maxChunks": 1])["result"])
        XCTAssertEqual(same["kld"]?["mean"]?.doubleValue, 0, "a model against itself has KLD 0")
        XCTAssertEqual(same["top1Agreement"]?.doubleValue, 1)

        XCTAssertNotNil(try session.request("quantize", ["model": "base", "method": "nf4", "name": "nf4"])["result"])
        let quantized = try XCTUnwrap(session.request("evaluate", ["model": "nf4", "reference": "base",
                                                                   "metrics": ["perplexity", "kld", "deltaProbability"],
                                                                   "text": .string(Self.text), "contextLength": 64, "maxChunks": 2])["result"])
        XCTAssertGreaterThan(quantized["kld"]?["mean"]?.doubleValue ?? 0, 0, "NF4 moves the distribution")
        XCTAssertGreaterThan(quantized["perplexity"]?["value"]?.doubleValue ?? 0, perplexity, "NF4 perplexity is above full precision")
        XCTAssertNotNil(quantized["deltaProbability"]?["mean"]?.doubleValue)
        XCTAssertEqual(session.finish(), 0)
    }

    func testBadInputs() throws {
        let session = try session()
        func error(_ params: JSONValue) throws -> JSONValue {
            try XCTUnwrap(session.request("evaluate", params)["error"], "\(params) should fail")
        }
        let longContext = try error(["model": "base", "metrics": ["perplexity"], "text": "hello world", "contextLength": 100_000])
        XCTAssertEqual(longContext["data"]?["param"], "contextLength")
        let shortText = try error(["model": "base", "metrics": ["perplexity"], "text": "a", "contextLength": 64])
        XCTAssertEqual(shortText["code"], -32602)
        XCTAssertEqual(shortText["data"]?["param"], "text")
        XCTAssertEqual(try error(["model": "base", "metrics": ["perplexity"], "text": ""])["data"]?["param"], "text")
        XCTAssertEqual(try error(["model": "base", "metrics": ["kld"], "text": "some text"])["data"]?["param"], "reference")
        XCTAssertEqual(try error(["model": "base", "metrics": ["entropy"], "text": "some text"])["data"]?["param"], "metrics")
        // base is full precision with no source: there is nothing to measure the error against.
        XCTAssertEqual(try error(["model": "base", "metrics": ["outputError"], "text": "some text"])["data"]?["param"], "reference")
        XCTAssertEqual(try error(["model": "base", "reference": "base", "metrics": ["outputError"]])["data"]?["param"], "calibration")
        if let miniLM = SampleModels.miniLMDirectory {
            XCTAssertNotNil(try session.request("model/load", ["path": .string(miniLM), "name": "bert"])["result"])
            let bert = try error(["model": "bert", "metrics": ["perplexity"], "text": "some text"])
            XCTAssertEqual(bert["code"], -32002)
            XCTAssertEqual(bert["data"]?["modelType"], "bert")
        }
        XCTAssertNotNil(try session.request("model/list")["result"], "the daemon keeps serving")
    }
}
