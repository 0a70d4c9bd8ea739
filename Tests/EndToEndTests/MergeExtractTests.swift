import Foundation
import JSON
import TestSupport
import XCTest

/// merge, model/unmerge and extractAdapter through the daemon on SmolLM2's first blocks.
final class MergeExtractTests: XCTestCase {
    func session() throws -> DaemonSession {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        return session
    }

    func result(_ session: DaemonSession, _ method: String, _ params: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let response = try session.request(method, params)
        return try XCTUnwrap(response["result"], "\(method): \(response)", file: file, line: line)
    }

    func maxWeightError(_ session: DaemonSession, model: String, reference: String) throws -> Double {
        let r = try result(session, "evaluate", ["model": .string(model), "reference": .string(reference), "metrics": ["weightError"]])
        return try XCTUnwrap(r["weightError"]?["maximum"]?.doubleValue)
    }

    func testMergeIntoFullAndUnmergeAndExtractBack() throws {
        let session = try session()
        _ = try result(session, "quantize", ["model": "base", "method": "nf4", "targets": ["model.layers.0.*"], "name": "q"])
        _ = try result(session, "initAdapter", ["model": "q", "method": "loftq", "rank": 8, "iterations": 2, "alpha": 16, "useRSLoRA": true,
                                                "name": "a", "modelName": "qa"])
        _ = try result(session, "initAdapter", ["model": "q", "method": "loftq", "rank": 8, "iterations": 2, "useDoRA": true,
                                                "name": "d", "modelName": "qd"])
        for (adapter, model) in [("a", "qa"), ("d", "qd")] {
            let merged = try result(session, "merge", ["model": .string(model), "adapters": [["adapter": .string(adapter)]], "into": "full",
                                                       "name": .string(model + "-full")])
            XCTAssertEqual(merged["report"]?["layers"]?.arrayValue?.count, 7)
            let unmerged = try result(session, "model/unmerge", ["model": .string(model + "-full"), "name": .string(model + "-back")])
            XCTAssertEqual(unmerged["layerCount"], 7)
            // The unmerged weights are the dequantized base again, to fp32 precision.
            XCTAssertLessThan(try maxWeightError(session, model: model, reference: model + "-back"), 1e-6, adapter)
        }
        // Extraction recovers the rank-8 delta the merge added.
        let extracted = try result(session, "extractAdapter", ["base": "qa-back", "finetuned": "qa-full", "energy": 0.9999,
                                                               "targets": ["model.layers.0.*"], "name": "x"])
        for layer in extracted["layers"]?.arrayValue ?? [] {
            XCTAssertLessThanOrEqual(try XCTUnwrap(layer["rank"]?.intValue), 8, "\(layer)")
            XCTAssertLessThan(try XCTUnwrap(layer["relativeError"]?.doubleValue), 0.011)
        }
        XCTAssertEqual(extracted["otherDifferences"]?.arrayValue?.count, 0)
        let budget = try result(session, "extractAdapter", ["base": "qa-back", "finetuned": "qa-full", "parameterBudget": 40_000,
                                                            "targets": ["model.layers.0.*"]])
        let used = (budget["layers"]?.arrayValue ?? []).reduce(0) { sum, layer in sum + (layer["rank"]?.intValue ?? 0) }
        XCTAssertGreaterThan(used, 0)

        // (1, −1) linear is exactly zero: merging it changes nothing.
        let zero = try result(session, "merge", ["adapters": [["adapter": "a", "weight": 1], ["adapter": "a", "weight": -1]], "combination": "linear", "name": "zero"])
        XCTAssertEqual(zero["adapter"], "zero")
        _ = try result(session, "merge", ["model": "qa", "adapters": ["zero"], "into": "full", "name": "qa-zero"])
        XCTAssertLessThan(try maxWeightError(session, model: "qa", reference: "qa-zero"), 1e-7)
        _ = try result(session, "initAdapter", ["model": "q", "method": "loftq", "rank": 4, "iterations": 1, "name": "b", "modelName": "qb"])
        let svd = try result(session, "merge", ["adapters": [["adapter": "a", "weight": 1], ["adapter": "b", "weight": 0.5]], "combination": "svd", "rank": 12])
        for layer in svd["report"]?["layers"]?.arrayValue ?? [] {
            XCTAssertLessThan(try XCTUnwrap(layer["truncationError"]?.doubleValue), 1e-5, "svd at r1 + r2 is exact")
        }
        let bases = try session.request("merge", ["adapters": ["a", "x"]])
        XCTAssertEqual(bases["error"]?["data"]?["param"], "adapters", "adapters of different bases: \(bases)")
        let density = try session.request("merge", ["adapters": ["a", "b"], "combination": "ties", "density": 1.5])
        XCTAssertEqual(density["error"]?["data"]?["param"], "density", "\(density)")
        XCTAssertEqual(session.finish(), 0)
    }

    func testMergeIntoQuantizedReportsAndAutoKeepsTheAdapter() throws {
        let session = try session()
        _ = try result(session, "quantize", ["model": "base", "method": "nf4", "targets": ["model.layers.0.*", "model.layers.1.*"], "name": "q"])
        _ = try result(session, "initAdapter", ["model": "q", "method": "loftq", "rank": 16, "name": "a", "modelName": "qa"])
        let requantized = try result(session, "merge", ["model": "qa", "adapters": ["a"], "into": "quantized", "strategy": "requantize", "name": "qr"])
        let losses = (requantized["report"]?["layers"]?.arrayValue ?? []).compactMap { $0["requantizeAdapterLoss"]?.doubleValue }
        XCTAssertEqual(losses.count, 14)
        XCTAssertGreaterThan(losses.reduce(0, +) / Double(losses.count), 0.5, "re-quantizing NF4 loses most of a LoftQ adapter, and the report says so")
        XCTAssertFalse(requantized["report"]?["summary"]?["layersLosingOverTenPercent"]?.arrayValue?.isEmpty ?? true)

        let auto = try result(session, "merge", ["model": "qa", "adapters": ["a"], "into": "quantized", "name": "qm"])
        let sidecar = try XCTUnwrap(auto["sidecar"]?.stringValue, "auto keeps what requantize would lose as a sidecar: \(auto)")
        let text = JSONValue.string(EvaluateTests.text)
        func perplexity(_ model: String, _ adapter: String) throws -> Double {
            try XCTUnwrap(result(session, "evaluate", ["model": .string(model), "adapter": .string(adapter), "metrics": ["perplexity"],
                                                       "text": text, "contextLength": 96])["perplexity"]?["value"]?.doubleValue)
        }
        let unmerged = try perplexity("qa", "a"), merged = try perplexity("qm", sidecar)
        XCTAssertEqual(merged, unmerged, accuracy: 0.01 * unmerged, "auto stays within 1% of the unmerged model")

        // QA-LoRA on INT4 folds exactly into the zero points.
        _ = try result(session, "quantize", ["model": "base", "method": "int", "bits": 4, "groupSize": 32, "symmetric": false,
                                             "targets": ["model.layers.0.*"], "name": "i4"])
        _ = try result(session, "initAdapter", ["model": "i4", "method": "qa-lora", "rank": 8, "name": "qa-lora"])
        let folded = try result(session, "merge", ["model": "i4", "adapters": ["qa-lora"], "into": "quantized", "name": "i4m"])
        for layer in folded["report"]?["layers"]?.arrayValue ?? [] {
            XCTAssertEqual(layer["strategy"], "exact-zero-point")
            // What is lost is the fp16 rounding of the new zeros (σ·ulp16(z′)/2 per weight), about 1 % of ΔW.
            XCTAssertLessThan(try XCTUnwrap(layer["adapterLoss"]?.doubleValue), 0.03, "only fp16 rounding of the zeros")
        }
        _ = try result(session, "merge", ["model": "i4", "adapters": ["qa-lora"], "into": "full", "name": "i4-full"])
        XCTAssertLessThan(try maxWeightError(session, model: "i4m", reference: "i4-full"), 1e-3)
        XCTAssertEqual(session.finish(), 0)
    }

    /// A fine-tune that also changed the embeddings: `modulesToSave` carries them whole through
    /// extraction, the PEFT files (`modules_to_save`), evaluate and merge.
    func testModulesToSaveTravelWhole() throws {
        let session = try session()
        let directory = makeTemporaryDirectory("modules-to-save")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try result(session, "quantize", ["model": "base", "method": "int", "bits": 4, "groupSize": 64,
                                             "targets": ["model.embed_tokens.weight", "model.layers.0.*"], "name": "ft-q"])
        _ = try result(session, "model/save", ["model": "ft-q", "path": .string(directory + "/ft")])
        _ = try result(session, "model/load", ["path": .string(directory + "/ft"), "name": "ft"])
        let extracted = try result(session, "extractAdapter", ["base": "base", "finetuned": "ft", "rank": 8, "targets": ["model.layers.0.*"],
                                                               "modulesToSave": true, "name": "x"])
        let others = extracted["otherDifferences"]?.arrayValue ?? []
        XCTAssertEqual(others.compactMap { $0["name"]?.stringValue }, ["model.embed_tokens.weight"])
        XCTAssertEqual(others.first?["savedWhole"], true)
        let saved = try result(session, "adapter/save", ["adapter": "x", "path": .string(directory + "/x")])
        XCTAssertEqual(saved["maxAbsDeltaDifference"]?.doubleValue, 0)
        let config = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/x/adapter_config.json"))))
        XCTAssertEqual(config["modules_to_save"], ["model.embed_tokens"])
        _ = try result(session, "adapter/load", ["path": .string(directory + "/x"), "name": "x2"])
        let text = JSONValue.string(EvaluateTests.text)
        func perplexity(_ model: String, adapter: String? = nil) throws -> Double {
            var params: JSONObject = ["model": .string(model), "metrics": ["perplexity"], "text": text, "contextLength": 64, "maxChunks": 2]
            if let adapter { params["adapter"] = .string(adapter) }
            return try XCTUnwrap(result(session, "evaluate", .object(params))["perplexity"]?["value"]?.doubleValue)
        }
        _ = try result(session, "merge", ["model": "base", "adapters": ["x2"], "into": "full", "name": "merged"])
        let unmerged = try perplexity("base", adapter: "x2"), merged = try perplexity("merged")
        XCTAssertEqual(unmerged, merged, accuracy: 1e-3 * merged, "evaluate applies modules_to_save as merge does")
        XCTAssertNotEqual(merged, try perplexity("base"))
        let refused = try session.request("merge", ["adapters": [["adapter": "x", "weight": 0.5]]])
        XCTAssertEqual(refused["error"]?["data"]?["param"], "adapters")
        XCTAssertEqual(session.finish(), 0)
    }

    /// extractAdapter's bad input: a fine-tune of another architecture (-32003 naming the tensor)
    /// and a rank the layers cannot hold (-32602 naming the layer).
    func testExtractionRefusesMismatchedModelsAndImpossibleRanks() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM not fetched") }
        let session = try session()
        _ = try result(session, "model/load", ["path": .string(miniLM), "name": "bert"])
        let mismatch = try session.request("extractAdapter", ["base": "base", "finetuned": "bert"])
        XCTAssertEqual(mismatch["error"]?["code"], -32003, "\(mismatch)")
        XCTAssertEqual(mismatch["error"]?["data"]?["param"], "finetuned")
        XCTAssertNotNil(mismatch["error"]?["data"]?["layer"]?.stringValue)
        let rank = try session.request("extractAdapter", ["base": "base", "finetuned": "base", "rank": 1000, "targets": ["model.layers.0.*"]])
        XCTAssertEqual(rank["error"]?["code"], -32602, "\(rank)")
        XCTAssertEqual(rank["error"]?["data"]?["param"], "rank")
        XCTAssertNotNil(rank["error"]?["data"]?["layer"]?.stringValue)
        XCTAssertEqual(session.finish(), 0)
    }
}
