import Foundation
import JSON
import TestSupport
import XCTest

/// `adapter/save format: "gguf"`: llama.cpp's LoRA layout with the PEFT scale folded into B,
/// read back to the same ΔW; DoRA refused.
final class AdapterGGUFTests: XCTestCase {
    func testGGUFAdapterRoundTripsWithTheSameDeltaAndRefusesDoRA() throws {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        XCTAssertNotNil(try session.request("quantize", ["model": "base", "method": "nf4", "targets": ["model.layers.0.*"], "name": "q"])["result"])
        XCTAssertNotNil(try session.request("initAdapter", ["model": "q", "method": "loftq", "rank": 8, "iterations": 1, "alpha": 4,
                                                            "useRSLoRA": true, "alphaPattern": ["q_proj": 12], "rankPattern": ["k_proj": 4],
                                                            "name": "a"])["result"])
        let directory = makeTemporaryDirectory("adapter-gguf")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let saved = try XCTUnwrap(session.request("adapter/save", ["adapter": "a", "path": .string(directory + "/a.gguf")])["result"])
        XCTAssertEqual(saved["format"], "gguf")
        XCTAssertEqual(saved["tensorCount"], 14)
        XCTAssertLessThanOrEqual(try XCTUnwrap(saved["maxAbsDeltaDifference"]?.doubleValue), 1e-7)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/a.gguf.loquat.json"))

        XCTAssertNotNil(try session.request("initAdapter", ["model": "q", "method": "lora", "rank": 8, "useDoRA": true, "name": "d"])["result"])
        let dora = try session.request("adapter/save", ["adapter": "d", "path": .string(directory + "/d.gguf")])
        XCTAssertEqual(dora["error"]?["code"], -32002, "\(dora)")
        XCTAssertEqual(dora["error"]?["data"]?["param"], "format")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/d.gguf"), "a refused save writes nothing")
        XCTAssertEqual(session.finish(), 0)
    }
}
