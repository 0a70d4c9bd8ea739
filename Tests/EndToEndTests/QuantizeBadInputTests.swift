import Checkpoints
import Foundation
import JSON
import Tensors
import TestSupport
import XCTest

/// Every refusal of `quantize` and `quantize/plan`: -32602 with `data.param` (and `data.layer`
/// where a layer is to blame), -32001 for unknown handles, and the daemon keeps serving.
final class QuantizeBadInputTests: XCTestCase {
    func testBadParametersNameTheParameter() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        _ = try session.result("model/load", ["path": .string(miniLM), "name": "mini"])
        let method = try session.implementedQuantizers().first(where: { $0 != "gptq" }) ?? "int"
        let cases: [(JSONValue, String)] = [
            (["model": "mini", "method": "int", "bits": 9], "bits"),
            (["model": "mini", "method": "int", "bits": 1], "bits"),
            (["model": "mini", "method": "nf", "bits": 5], "bits"),
            (["model": "mini", "method": "nf4", "bits": 3], "bits"),
            (["model": "mini", "method": "fp8", "bits": 4], "bits"),
            (["model": "mini", "method": "nf4", "groupSize": 48], "groupSize"),
            (["model": "mini", "method": "int", "groupSize": -1], "groupSize"),
            (["model": "mini", "method": "int4"], "method"),
            (["model": "mini"], "method"),
            (["model": "mini", "method": .string(method), "targets": ["encoder.layer.*.attention.selff.query.weight"]], "targets"),
            (["model": "mini", "method": .string(method), "targets": ["embeddings.LayerNorm.weight"]], "targets"),
            (["model": "mini", "method": .string(method), "targets": ["encoder.[0-"]], "targets"),
            (["model": "mini", "method": .string(method), "exclude": ["decoder.*"]], "exclude"),
            (["model": "mini", "method": .string(method), "exclude": ["*"]], "exclude"),
            (["model": "mini", "method": "gptq"], "calibration"),
            (["model": "mini", "method": .string(method), "rotate": "fourier"], "rotate"),
            (["model": "mini", "method": .string(method), "outliers": ["fraction": 2]], "outliers"),
            (["model": "mini", "method": .string(method), "outliers": ["fraction": 0.01, "threshold": 3]], "outliers"),
            (["model": "mini", "method": "int", "doubleQuant": true], "doubleQuant"),
            (["model": "mini", "method": .string(method), "bitz": 4], "bitz"),
            (["model": "mini", "method": .string(method), "name": "mini"], "name"),
            (["model": "mini", "plan": [["pattern": "nothing.*", "method": .string(method)]]], "plan[0].pattern"),
            (["model": "mini", "plan": [["pattern": "*", "method": "int", "bits": 12]]], "plan[0].bits"),
            (["model": "mini", "plan": [["method": .string(method)]]], "plan[0].pattern"),
        ]
        for (params, param) in cases {
            try session.error("quantize", params, code: -32602, param: param)
        }
        try session.error("quantize", ["model": "nothing", "method": .string(method)], code: -32001)
        let calibration = try session.error("quantize", ["model": "mini", "method": .string(method), "calibration": "calib-1"], code: -32001)
        XCTAssertEqual(calibration["data"]?["handle"], "calib-1")
        try session.error("quantize/plan", ["model": "mini", "candidates": [["method": .string(method)]]], code: -32602,
                          param: "budgetBitsPerWeight")
        try session.error("quantize/plan", ["model": "mini", "budgetBitsPerWeight": 4, "candidates": []], code: -32602,
                          param: "candidates")
        try session.error("quantize/plan", ["model": "mini", "budgetBitsPerWeight": 4, "candidates": [["method": "gptq"]]],
                          code: -32602, param: "candidates[0].method")
        XCTAssertTrue(try session.result("model/list", [:])["models"]?.arrayValue?.count == 1, "no failed request registered anything")
        XCTAssertEqual(session.finish(), 0)
    }

    /// A group size that does not divide a row is refused before any work, naming the layer.
    func testGroupSizeThatDoesNotDivideNamesTheLayer() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        _ = try session.result("model/load", ["path": .string(miniLM), "name": "mini"])
        guard try session.implementedQuantizers().contains("int") else { throw XCTSkip("int is not implemented") }
        // MiniLM rows are 384 or 1536 long; 100 divides neither.
        let error = try session.error("quantize", ["model": "mini", "method": "int", "groupSize": 100], code: -32602, param: "groupSize")
        XCTAssertNotNil(error["data"]?["layer"]?.stringValue)
        XCTAssertEqual(session.finish(), 0)
    }

    /// A NaN in one weight of a crafted checkpoint: -32602 naming the layer, row and column.
    func testNonFiniteWeightNamesTheLayer() throws {
        let directory = makeTemporaryDirectory("quantize-nan")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var bad = [Float](repeating: 0.25, count: 16 * 64)
        bad[5 * 64 + 9] = .nan
        var infinite = [Float](repeating: -0.5, count: 16 * 64)
        infinite[0] = -.infinity
        let path = directory + "/model.safetensors"
        try SafetensorsWriter.write(tensors: [
            Tensor(name: "model.layers.0.self_attn.q_proj.weight", shape: [16, 64], float32: [Float](repeating: 0.5, count: 16 * 64)),
            Tensor(name: "model.layers.0.self_attn.k_proj.weight", shape: [16, 64], float32: bad),
            Tensor(name: "model.layers.1.mlp.up_proj.weight", shape: [16, 64], float32: infinite),
        ], to: path, overwrite: false)
        let session = try DaemonSession()
        _ = try session.result("model/load", ["path": .string(path), "name": "crafted"])
        guard let method = try session.implementedQuantizers().first(where: { $0 != "gptq" }) else { throw XCTSkip("no quantizer") }
        // No config.json: the architecture is unknown, so there are no default targets.
        try session.error("quantize", ["model": "crafted", "method": .string(method)], code: -32602, param: "targets")
        let nan = try session.error("quantize", ["model": "crafted", "method": .string(method), "targets": ["model.layers.0.*"]],
                                    code: -32602)
        XCTAssertEqual(nan["data"]?["layer"], "model.layers.0.self_attn.k_proj.weight")
        XCTAssertEqual(nan["data"]?["row"], 5)
        XCTAssertEqual(nan["data"]?["column"], 9)
        let inf = try session.error("quantize", ["model": "crafted", "method": .string(method), "targets": ["*up_proj*"]], code: -32602)
        XCTAssertEqual(inf["data"]?["layer"], "model.layers.1.mlp.up_proj.weight")
        let fine = try session.result("quantize", ["model": "crafted", "method": .string(method), "targets": ["*q_proj*"]])
        XCTAssertEqual(fine.ledger.count, 1, "the daemon keeps serving")
        XCTAssertEqual(session.finish(), 0)
    }
}
