import Foundation
import JSON
import TestSupport
import XCTest

/// `initAdapter` through the daemon on real SmolLM2 layers: the error orderings of the
/// literature, CLoQ at its closed-form optimum, and every method running.
final class InitAdapterTests: XCTestCase {
    static let textFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ModelsTests/Fixtures/llama/public-domain.txt").standardized.path
    /// Layer 0's attention and gate/up projections: 576 inputs, fewer than the 1024 calibration
    /// tokens, so XᵀX has full rank and the optimum is not an artefact of damping.
    static let targets: JSONValue = ["model.layers.0.self_attn.*", "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"]

    func session() throws -> DaemonSession {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        return session
    }

    func layers(_ response: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws -> [String: JSONValue] {
        let layers = try XCTUnwrap(response["result"]?["layers"]?.arrayValue, "\(response)", file: file, line: line)
        return Dictionary(uniqueKeysWithValues: layers.map { ($0["name"]!.stringValue!, $0) })
    }

    func number(_ layer: JSONValue?, _ key: String) throws -> Double { try XCTUnwrap(layer?[key]?.doubleValue, "\(key) in \(String(describing: layer))") }

    func testErrorOrderingsAndTheCLoQOptimumAtNF4AndNF2() throws {
        let session = try session()
        let calibration = try session.request("calibrate", ["model": "base", "textFile": .string(Self.textFile), "contextLength": 512,
                                                            "sampleCount": 2, "targets": ["model.layers.0.*"], "name": "cal"])
        XCTAssertEqual(calibration["result"]?["tokenCount"], 1024, "\(calibration)")
        for (label, spec) in [("nf4", ["method": "nf4"] as JSONObject), ("nf2", ["method": "nf", "bits": 2])] {
            var quantize = spec
            quantize["model"] = "base"
            quantize["targets"] = Self.targets
            quantize["name"] = .string(label)
            XCTAssertNotNil(try session.request("quantize", .object(quantize))["result"])
            func run(_ method: String, _ extra: JSONObject = [:]) throws -> [String: JSONValue] {
                var params: JSONObject = ["model": .string(label), "method": .string(method), "rank": 16]
                for (key, value) in extra { params[key] = value }
                return try layers(session.request("initAdapter", .object(params)))
            }
            let zero = try run("lora")
            let loftq1 = try run("loftq", ["iterations": 1, "svd": "exact"])
            let loftq5 = try run("loftq", ["iterations": 5, "svd": "exact"])
            let loftq5Randomized = try run("loftq", ["iterations": 5])
            let calibrated: JSONObject = ["calibration": "cal", "svd": "exact", "damping": 1e-6]
            let cloq = try run("cloq", calibrated)
            let others = try ["lqer": run("lqer", calibrated), "qera-approx": run("qera-approx", calibrated),
                              "quailora": run("quailora", calibrated), "lora": run("lora", ["calibration": "cal"]),
                              "loftq-1": run("loftq", ["iterations": 1, "svd": "exact", "calibration": "cal"])]
            XCTAssertEqual(zero.count, 6)
            for (name, layer) in zero {
                let before = try number(layer, "weightErrorBefore")
                XCTAssertEqual(try number(layer, "weightErrorAfter"), before, "\(label) \(name): zero init adds nothing")
                XCTAssertLessThan(try number(loftq1[name], "weightErrorAfter"), before, "\(label) \(name)")
                XCTAssertLessThanOrEqual(try number(loftq5[name], "weightErrorAfter"), try number(loftq1[name], "weightErrorAfter") * (1 + 1e-6), "\(label) \(name)")
                XCTAssertLessThan(try number(loftq5Randomized[name], "weightErrorAfter"), try number(loftq5[name], "weightErrorAfter") * 1.01, "\(label) \(name)")
                XCTAssertEqual(loftq5Randomized[name]?["svd"], "randomized")
                let achieved = try number(cloq[name], "outputErrorAfter"), optimum = try number(cloq[name], "outputErrorOptimum")
                XCTAssertEqual(achieved, optimum, accuracy: 1e-4 * optimum, "\(label) \(name): CLoQ reaches √(Σ_{i>r} σᵢ²)")
                XCTAssertLessThan(achieved, try number(cloq[name], "outputErrorBefore"))
                for (method, result) in others {
                    XCTAssertLessThanOrEqual(achieved, try number(result[name], "outputErrorAfter") * (1 + 1e-6), "\(label) \(name): cloq ≤ \(method)")
                }
            }
        }
        XCTAssertEqual(session.finish(), 0)
    }

    /// Every method runs through the daemon; base-changing methods register a new model; DoRA,
    /// rsLoRA and the patterns survive adapter/save → adapter/load.
    func testEveryMethodRunsAndAdaptersRoundTripThroughPEFTFiles() throws {
        let session = try session()
        XCTAssertNotNil(try session.request("calibrate", ["model": "base", "textFile": .string(Self.textFile), "contextLength": 256,
                                                          "sampleCount": 1, "targets": ["model.layers.1.*"], "name": "cal"])["result"])
        XCTAssertNotNil(try session.request("quantize", ["model": "base", "method": "int", "bits": 3, "groupSize": 64,
                                                         "targets": ["model.layers.1.*"], "name": "q"])["result"])
        let changesBase: Set<String> = ["pissa", "olora", "loftq", "lq-lora"]
        for method in ["lora", "gaussian", "pissa", "olora", "loftq", "lqer", "qera-approx", "cloq", "quailora", "lq-lora", "qa-lora", "auto"] {
            let response = try session.request("initAdapter", ["model": "q", "method": .string(method), "rank": 8, "calibration": "cal",
                                                               "iterations": 2, "name": .string("a-" + method)])
            let result = try XCTUnwrap(response["result"], "\(method): \(response)")
            XCTAssertEqual(result["layers"]?.arrayValue?.count, 7, method)
            XCTAssertEqual(result["modelChanged"]?.boolValue, changesBase.contains(method) ? true : (method == "auto" ? result["modelChanged"]?.boolValue : false), method)
            for layer in result["layers"]?.arrayValue ?? [] {
                let after = try number(layer, "weightErrorAfter"), before = try number(layer, "weightErrorBefore")
                XCTAssertTrue(after.isFinite, method)
                if !["lora", "gaussian"].contains(method) { XCTAssertLessThan(after, before, "\(method) \(layer["name"]!)") }
            }
        }
        let auto = try session.request("initAdapter", ["model": "q", "method": "auto", "rank": 8, "calibration": "cal"])
        XCTAssertNotNil(auto["result"]?["summary"]?["methods"]?.objectValue, "\(auto)")

        let directory = makeTemporaryDirectory("initadapter-peft")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try session.request("initAdapter", ["model": "q", "method": "cloq", "rank": 8, "alpha": 16, "calibration": "cal",
                                                       "useDoRA": true, "useRSLoRA": true, "rankPattern": ["down_proj": 4],
                                                       "alphaPattern": ["v_proj": 32], "name": "d"])
        let madeLayers = try layers(made)
        XCTAssertEqual(madeLayers["model.layers.1.mlp.down_proj.weight"]?["rank"], 4)
        XCTAssertEqual(madeLayers["model.layers.1.self_attn.v_proj.weight"]?["alpha"]?.doubleValue, 32)
        XCTAssertEqual(try number(madeLayers["model.layers.1.self_attn.v_proj.weight"], "scale"), 32 / 8.0.squareRoot(), accuracy: 1e-12)
        let saved = try session.request("adapter/save", ["adapter": "d", "path": .string(directory + "/d")])
        XCTAssertEqual(saved["result"]?["maxAbsDeltaDifference"]?.doubleValue, 0, "\(saved)")
        let again = try session.request("adapter/save", ["adapter": "d", "path": .string(directory + "/d")])
        XCTAssertEqual(again["error"]?["code"], -32004, "no overwrite without overwrite: true: \(again)")
        let loaded = try XCTUnwrap(session.request("adapter/load", ["path": .string(directory + "/d"), "model": "q", "name": "d2"])["result"])
        XCTAssertEqual(loaded["useDoRA"], true)
        XCTAssertEqual(loaded["useRSLoRA"], true)
        XCTAssertEqual(loaded["rankPattern"]?["down_proj"], 4)
        let config = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/d/adapter_config.json"))))
        XCTAssertEqual(config["use_dora"], true)
        XCTAssertEqual(config["use_rslora"], true)
        XCTAssertEqual(config["alpha_pattern"]?["v_proj"], 32)
        XCTAssertEqual(config["r"], 8)
        XCTAssertEqual(config["lora_alpha"], 16)
        XCTAssertEqual(session.finish(), 0)
    }

    func testBadInputIsRefusedWithTheParameterNamed() throws {
        let session = try session()
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM not fetched") }
        XCTAssertNotNil(try session.request("model/load", ["path": .string(miniLM), "name": "bert"])["result"])
        XCTAssertNotNil(try session.request("quantize", ["model": "base", "method": "nf4", "targets": ["model.layers.0.*"], "name": "q"])["result"])
        XCTAssertNotNil(try session.request("calibrate", ["model": "bert", "text": .string(EvaluateTests.text), "contextLength": 64,
                                                          "sampleCount": 1, "name": "bert-cal"])["result"])
        func expect(_ params: JSONValue, code: Int, param: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let response = try session.request("initAdapter", params)
            XCTAssertEqual(response["error"]?["code"]?.intValue, code, "\(response)", file: file, line: line)
            XCTAssertEqual(response["error"]?["data"]?["param"]?.stringValue, param, "\(response)", file: file, line: line)
        }
        try expect(["model": "q", "method": "loftq", "rank": 0], code: -32602, param: "rank")
        try expect(["model": "q", "method": "loftq", "rank": 200], code: -32602, param: "rank")       // k_proj is [192, 576]
        try expect(["model": "q", "method": "cloq", "rank": 8], code: -32602, param: "calibration")
        try expect(["model": "q", "method": "cloq", "rank": 8, "calibration": "bert-cal"], code: -32602, param: "calibration")
        try expect(["model": "q", "method": "loftq", "rank": 8, "base": "bert"], code: -32602, param: "base")
        try expect(["model": "base", "method": "loftq", "rank": 8], code: -32602, param: "model")
        try expect(["model": "q", "method": "magic", "rank": 8], code: -32602, param: "method")
        try expect(["model": "q", "method": "qa-lora", "rank": 8], code: -32602, param: "model")     // nf4 has no zero points
        let unknown = try session.request("adapter/save", ["adapter": "nope", "path": "/tmp/x"])
        XCTAssertEqual(unknown["error"]?["code"], -32001)
        XCTAssertEqual(unknown["error"]?["data"]?["param"], "adapter")
        let missing = try session.request("adapter/load", ["path": "/nonexistent/adapter"])
        XCTAssertEqual(missing["error"]?["code"], -32001, "\(missing)")
        // The daemon is still fine and nothing was registered by the failures.
        XCTAssertEqual(try session.request("adapter/list")["result"]?["adapters"]?.arrayValue?.count, 0)
        XCTAssertEqual(session.finish(), 0)
    }
}
