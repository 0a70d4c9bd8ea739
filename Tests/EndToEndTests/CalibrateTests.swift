import Foundation
import JSON
import TestSupport
import XCTest

/// `calibrate` records layer-input statistics that `quantize` consumes: GPTQ through the daemon
/// and `outputRelativeError` in the ledger.
final class CalibrateTests: XCTestCase {
    func testGPTQWithACalibrationSetBeatsRoundToNearestOnOutputError() throws {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        let calibration = try XCTUnwrap(session.request("calibrate", [
            "model": "base", "text": .string(EvaluateTests.text), "contextLength": 64, "sampleCount": 3,
            "name": "cal", "workDoneToken": "c",
        ])["result"])
        XCTAssertEqual(calibration["calibration"], "cal")
        XCTAssertEqual(calibration["windowCount"], 3)
        XCTAssertEqual(calibration["layers"]?.arrayValue?.count, 210, "every linear layer of SmolLM2's 30 blocks")
        let widths = Dictionary(uniqueKeysWithValues: (calibration["layers"]?.arrayValue ?? []).compactMap { layer in
            layer["name"]?.stringValue.map { ($0, layer["inputWidth"]?.intValue ?? 0) }
        })
        XCTAssertEqual(widths["model.layers.0.self_attn.q_proj.weight"], 576)
        XCTAssertEqual(widths["model.layers.0.mlp.down_proj.weight"], 1536)

        let targets: JSONValue = ["model.layers.0.self_attn.*", "model.layers.0.mlp.down_proj.weight"]
        func ledger(_ method: String, _ name: String) throws -> [JSONValue] {
            let result = try session.request("quantize", ["model": "base", "method": .string(method), "bits": 3, "groupSize": 64,
                                                          "targets": targets, "calibration": "cal", "name": .string(name)])
            return try XCTUnwrap(result["result"]?["layers"]?.arrayValue, "\(result)")
        }
        let gptq = try ledger("gptq", "g3")
        let rtn = try ledger("int", "r3")
        XCTAssertEqual(gptq.count, 5)
        for (g, r) in zip(gptq, rtn) {
            let gptqError = try XCTUnwrap(g["outputRelativeError"]?.doubleValue, "\(g)")
            let rtnError = try XCTUnwrap(r["outputRelativeError"]?.doubleValue, "\(r)")
            XCTAssertEqual(g["name"], r["name"])
            XCTAssertLessThan(gptqError, rtnError, "\(g["name"]?.stringValue ?? ""): GPTQ minimises the calibrated output error")
        }

        let unknown = try session.request("quantize", ["model": "base", "method": "int", "calibration": "nope"])
        XCTAssertEqual(unknown["error"]?["code"], -32001)
        XCTAssertEqual(unknown["error"]?["data"]?["param"], "calibration")
        let short = try session.request("calibrate", ["model": "base", "text": "a"])
        XCTAssertEqual(short["error"]?["data"]?["param"], "text")
        XCTAssertEqual(session.finish(), 0)
    }

    /// BERT (all-MiniLM-L6-v2): calibrate through the encoder's forward pass, then GPTQ int3 of
    /// layer 0 beats int3 round-to-nearest on the calibrated output error.
    func testMiniLMCalibrationDrivesGPTQ() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM sample model not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(miniLM), "name": "bert"])["result"])
        let calibration = try XCTUnwrap(session.request("calibrate", [
            "model": "bert", "text": .string(EvaluateTests.text), "contextLength": 128, "sampleCount": 8, "name": "cal",
        ])["result"])
        // The text is 304 WordPiece ids: [CLS] 126 ids [SEP], [CLS] 126 ids [SEP], [CLS] 52 ids [SEP].
        XCTAssertEqual(calibration["windowCount"], 3)
        XCTAssertEqual(calibration["tokenCount"], 310)
        let widths = Dictionary(uniqueKeysWithValues: (calibration["layers"]?.arrayValue ?? []).compactMap { layer in
            layer["name"]?.stringValue.map { ($0, layer["inputWidth"]?.intValue ?? 0) }
        })
        XCTAssertEqual(widths.count, 36, "6 linear weights in each of MiniLM's 6 layers")
        XCTAssertEqual(widths["encoder.layer.0.attention.self.query.weight"], 384)
        XCTAssertEqual(widths["encoder.layer.5.output.dense.weight"], 1536)

        func ledger(_ method: String, _ name: String) throws -> [JSONValue] {
            let result = try session.request("quantize", ["model": "bert", "method": .string(method), "bits": 3,
                                                          "targets": ["encoder.layer.0.*"], "calibration": "cal",
                                                          "name": .string(name)])
            return try XCTUnwrap(result["result"]?["layers"]?.arrayValue, "\(result)")
        }
        let gptq = try ledger("gptq", "g3")
        let rtn = try ledger("int", "r3")
        XCTAssertEqual(gptq.count, 6, "q, k, v, attention.output.dense, intermediate.dense, output.dense")
        XCTAssertEqual(gptq.count, rtn.count)
        for (g, r) in zip(gptq, rtn) {
            let gptqError = try XCTUnwrap(g["outputRelativeError"]?.doubleValue, "\(g)")
            let rtnError = try XCTUnwrap(r["outputRelativeError"]?.doubleValue, "\(r)")
            XCTAssertEqual(g["name"], r["name"])
            XCTAssertLessThan(gptqError, rtnError, "\(g["name"]?.stringValue ?? ""): GPTQ minimises the calibrated output error")
        }
        let empty = try session.request("calibrate", ["model": "bert", "text": " "])
        XCTAssertEqual(empty["error"]?["data"]?["param"], "text")
        XCTAssertEqual(session.finish(), 0)
    }
}
