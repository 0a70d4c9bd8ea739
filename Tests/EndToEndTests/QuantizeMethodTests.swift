import Foundation
import JSON
import TestSupport
import XCTest

/// `quantize` through the real daemon on both sample models: every implemented method, the
/// ledger, the resident quantized model (info, list, unload), the untouched source, progress,
/// and the error ordering the issue asks for on real weights.
final class QuantizeMethodTests: XCTestCase {
    /// SmolLM2's first block (7 linears) keeps debug runs short; MiniLM's 36 default targets are small.
    static let smolTargets: JSONValue = ["model.layers.0.*"]


    func testEveryImplementedMethodOnBothModels() throws {
        let session = try sampleModelSession()
        let methods = try session.implementedQuantizers().filter { $0 != "gptq" }
        XCTAssertFalse(methods.isEmpty, "at least one quantizer is implemented")
        let miniBefore = try session.result("model/info", ["model": "mini"])
        let smolBefore = try session.result("model/info", ["model": "smol"])
        for method in methods {
            for (source, targets, expectedCount) in [("mini", JSONValue.null, 36), ("smol", Self.smolTargets, 7)] {
                var params: JSONObject = ["model": .string(source), "method": .string(method), "name": .string("\(source)-\(method)")]
                if targets != .null { params["targets"] = targets }
                let result = try session.result("quantize", .object(params))
                let label = "\(source) \(method)"
                XCTAssertEqual(result["model"]?.stringValue, "\(source)-\(method)", label)
                XCTAssertEqual(result["source"]?.stringValue, source, label)
                XCTAssertEqual(result.ledger.count, expectedCount, label)
                XCTAssertGreaterThan(result["byteCount"]?.intValue ?? 0, 0, label)
                XCTAssertNotNil(result["seconds"]?.doubleValue, label)
                for layer in result.ledger {
                    let name = layer["name"]?.stringValue ?? "?"
                    XCTAssertEqual(layer["method"]?.stringValue, method, name)
                    XCTAssertEqual(layer["shape"]?.arrayValue?.count, 2, name)
                    let bits = Double(layer["bits"]?.intValue ?? 0)
                    let bitsPerWeight = layer["bitsPerWeight"]?.doubleValue ?? 0
                    XCTAssertTrue(bitsPerWeight >= bits && bitsPerWeight < bits + 1.5, "\(label) \(name): \(bitsPerWeight) bits per weight at \(bits) bits")
                    let relative = layer["relativeError"]?.doubleValue ?? -1
                    XCTAssertTrue(relative > 0 && relative < 0.25, "\(label) \(name): relative error \(relative)")
                    XCTAssertGreaterThan(layer["sqnrDb"]?.doubleValue ?? 0, 10, "\(label) \(name)")
                    XCTAssertGreaterThan(layer["maxAbsError"]?.doubleValue ?? 0, 0, "\(label) \(name)")
                    XCTAssertNil(layer["outputRelativeError"], "no calibration, no output error")
                }
                // model/info: quantized layers carry their method; the rest are the source's.
                let info = try session.result("model/info", ["model": .string("\(source)-\(method)")])
                let tensors = info["tensors"]?.arrayValue ?? []
                XCTAssertEqual(tensors.count, (source == "mini" ? miniBefore : smolBefore)["tensors"]?.arrayValue?.count, label)
                XCTAssertEqual(tensors.filter { $0["dtype"]?.stringValue == method }.count, expectedCount, label)
                XCTAssertEqual(info["source"]?.stringValue, source)
                _ = try session.result("model/unload", ["model": .string("\(source)-\(method)")])
            }
        }
        XCTAssertEqual(try session.result("model/info", ["model": "mini"]), miniBefore, "quantize leaves the source as it was")
        XCTAssertEqual(try session.result("model/info", ["model": "smol"]), smolBefore, "quantize leaves the source as it was")
        XCTAssertEqual(session.finish(), 0)
    }

    func testResidentQuantizedModelListUnloadAndDeterminism() throws {
        let session = try sampleModelSession()
        guard let method = try session.implementedQuantizers().first(where: { $0 != "gptq" }) else { throw XCTSkip("no quantizer") }
        let first = try session.result("quantize", ["model": "mini", "method": .string(method)])
        let handle = try XCTUnwrap(first["model"]?.stringValue)
        XCTAssertTrue(handle.hasPrefix("mini-\(method)"), "default handle <source>-<method><bits>: \(handle)")
        let second = try session.result("quantize", ["model": "mini", "method": .string(method)])
        XCTAssertEqual(second["model"]?.stringValue, handle + "-2", "a taken default handle gets a suffix")
        XCTAssertEqual(first.ledger, second.ledger, "the same request gives the same ledger")
        let listed = try session.result("model/list", [:])["models"]?.arrayValue ?? []
        XCTAssertEqual(listed.first { $0["model"]?.stringValue == handle }?["source"], "mini")
        XCTAssertEqual(listed.first { $0["model"]?.stringValue == "mini" }?["source"], nil)
        let refused = try session.error("model/unload", ["model": "mini"], code: -32602, param: "model")
        XCTAssertEqual(refused["data"]?["dependents"], .strings([handle, handle + "-2"]))
        try session.error("quantize", ["model": .string(handle), "method": .string(method)], code: -32602, param: "model")
        _ = try session.result("model/unload", ["model": .string(handle)])
        _ = try session.result("model/unload", ["model": .string(handle + "-2")])
        _ = try session.result("model/unload", ["model": "mini"])
        XCTAssertEqual(session.finish(), 0)
    }

    func testProgressNamesEveryLayer() throws {
        let session = try sampleModelSession()
        guard let method = try session.implementedQuantizers().first(where: { $0 != "gptq" }) else { throw XCTSkip("no quantizer") }
        session.notifications = []
        let result = try session.result("quantize", ["model": "smol", "method": .string(method), "targets": Self.smolTargets,
                                                     "workDoneToken": "q"])
        let values = session.notifications.filter { $0["params"]?["token"] == "q" }.compactMap { $0["params"]?["value"] }
        XCTAssertEqual(values.first?["kind"], "begin")
        XCTAssertEqual(values.last?["kind"], "end")
        let reported = Set(values.filter { $0["kind"] == "report" }.compactMap { $0["message"]?.stringValue })
        XCTAssertEqual(reported, Set(result.ledger.compactMap { $0["name"]?.stringValue }), "one report per layer, named")
        XCTAssertEqual(session.finish(), 0)
    }

    /// quantize/plan stays under its budget, and quantize {plan} realises exactly what it planned.
    func testPlanIsWithinBudgetAndQuantizeRealisesIt() throws {
        let session = try sampleModelSession()
        let methods = try session.implementedQuantizers()
        guard methods.contains("int") else { throw XCTSkip("int is not implemented") }
        let options: [JSONValue] = [["method": "int", "bits": 3], ["method": "int", "bits": 8, "groupSize": 0]]
            + (methods.contains("nf4") ? [["method": "nf4"] as JSONValue] : [])
        for (source, targets) in [("mini", JSONValue.null), ("smol", QuantizeMethodTests.smolTargets)] {
            var params: JSONObject = ["model": .string(source), "budgetBitsPerWeight": 5, "candidates": .array(options)]
            if targets != .null { params["targets"] = targets }
            let planned = try session.result("quantize/plan", .object(params))
            let bits = try XCTUnwrap(planned["bitsPerWeight"]?.doubleValue)
            XCTAssertLessThanOrEqual(bits, 5, source)
            XCTAssertGreaterThan(bits, 3.5, "\(source): a 5-bit budget buys more than the cheapest candidate")
            let plan = try XCTUnwrap(planned["plan"]?.arrayValue)
            var quantizeParams: JSONObject = ["model": .string(source), "plan": .array(plan), "name": .string("\(source)-planned")]
            if targets != .null { quantizeParams["targets"] = targets }
            let realised = try session.result("quantize", .object(quantizeParams))
            XCTAssertEqual(realised.ledger.count, plan.count, source)
            XCTAssertEqual(realised["bitsPerWeight"]?.doubleValue ?? 0, bits, accuracy: 1e-12, "\(source): the plan's bits are what quantize stores")
            for (entry, layer) in zip(plan, realised.ledger) {
                XCTAssertEqual(entry["pattern"], layer["name"], source)
                XCTAssertEqual(entry["method"], layer["method"], source)
                XCTAssertEqual(entry["bits"], layer["bits"], source)
            }
            params["budgetBitsPerWeight"] = 1
            try session.error("quantize/plan", .object(params), code: -32602, param: "budgetBitsPerWeight")
        }
        XCTAssertEqual(session.finish(), 0)
    }

    /// Rotation and outliers are recorded in the ledger; outliers cost bits and buy accuracy.
    func testRotateAndOutliersAreRecorded() throws {
        let session = try sampleModelSession()
        guard try session.implementedQuantizers().contains("int") else { throw XCTSkip("int is not implemented") }
        let layer0: JSONValue = ["encoder.layer.0.*"]
        let plain = try session.result("quantize", ["model": "mini", "method": "int", "targets": layer0, "name": "plain"])
        let outliers = try session.result("quantize", ["model": "mini", "method": "int", "outliers": ["fraction": 0.01],
                                                       "targets": layer0, "name": "outliers"])
        let rotated = try session.result("quantize", ["model": "mini", "method": "int", "rotate": "hadamard", "targets": layer0,
                                                      "name": "rotated"])
        XCTAssertGreaterThan(outliers["bitsPerWeight"]?.doubleValue ?? 0, plain["bitsPerWeight"]?.doubleValue ?? 0, "outliers are counted")
        for (kept, base) in zip(outliers.ledger, plain.ledger) {
            XCTAssertEqual(kept["outliers"], ["fraction": 0.01])
            XCTAssertLessThan(kept["relativeError"]?.doubleValue ?? 1, base["relativeError"]?.doubleValue ?? 0, "\(kept["name"] ?? "?")")
        }
        for layer in rotated.ledger {
            XCTAssertEqual(layer["rotate"], ["kind": "hadamard", "seed": 0], "the seed is recorded")
            XCTAssertLessThan(layer["relativeError"]?.doubleValue ?? 1, 0.25)
        }
        XCTAssertEqual(session.finish(), 0)
    }

    /// NF4 beats absmax (symmetric) INT4 at the same block of 64 on every real layer, and
    /// errors rise as bits fall: 4 → 3 → 2.
    func testErrorOrderingOnRealWeights() throws {
        let session = try sampleModelSession()
        let methods = Set(try session.implementedQuantizers())
        var tested = 0
        // MiniLM's first two layers (12 linears) and SmolLM2's first block keep debug runs short.
        for (source, targets) in [("mini", ["encoder.layer.[01].*"] as JSONValue), ("smol", Self.smolTargets)] {
            func errors(_ params: JSONObject) throws -> [String: Double] {
                var params = params
                params["model"] = .string(source)
                if targets != .null { params["targets"] = targets }
                let result = try session.result("quantize", .object(params))
                _ = try session.result("model/unload", ["model": result["model"] ?? .null])
                return Dictionary(uniqueKeysWithValues: result.ledger.map {
                    ($0["name"]?.stringValue ?? "", $0["relativeError"]?.doubleValue ?? .nan)
                })
            }
            if methods.contains("nf4") && methods.contains("int") {
                tested += 1
                let nf4 = try errors(["method": "nf4", "groupSize": 64])
                let int4 = try errors(["method": "int", "bits": 4, "groupSize": 64, "symmetric": true])
                for (layer, error) in nf4 {
                    XCTAssertLessThan(error, try XCTUnwrap(int4[layer]), "\(source) \(layer): nf4 vs absmax int4")
                }
            }
            for method in ["int", "nf"] where methods.contains(method) {
                tested += 1
                let byBits = try [4, 3, 2].map { try errors(["method": .string(method), "bits": .int($0)]) }
                for (layer, four) in byBits[0] {
                    let three = try XCTUnwrap(byBits[1][layer]), two = try XCTUnwrap(byBits[2][layer])
                    XCTAssertTrue(four < three && three < two, "\(source) \(layer) \(method): 4/3/2-bit errors \(four), \(three), \(two)")
                }
            }
        }
        if tested == 0 { throw XCTSkip("needs nf4 and int, or int or nf") }
        XCTAssertEqual(session.finish(), 0)
    }
}
