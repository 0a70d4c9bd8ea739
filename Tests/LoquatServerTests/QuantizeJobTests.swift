import Checkpoints
import Foundation
import JSON
import JSONRPC
import Quantization
import Tensors
import TestSupport
import XCTest
@testable import LoquatServer

/// `QuantizeJob` and target selection without a daemon: the ledger, errors that name their layer
/// and parameter, cancellation, and the default targets.
final class QuantizeJobTests: XCTestCase {
    private func anyMethod() throws -> QuantizationMethod {
        guard let method = Quantizer.implementedMethods.first(where: { $0 != .gptq }) else {
            throw XCTSkip("no calibration-free quantizer is implemented in this build")
        }
        return method
    }

    func testLedgerMatchesAnIndependentMeasurement() throws {
        let checkpoint = try QuantizedModelFileTests.checkpoint()
        let spec = QuantizationSpec(method: try anyMethod())
        let name = "model.layers.0.mlp.down_proj.weight"
        let reported = Locked<[String]>([])
        let layers = try QuantizeJob(checkpoint: checkpoint, assignments: [(name: name, spec: spec)])
            .run(method: "quantize", report: { layer, _, _ in reported.mutate { $0.append(layer) } }, isCancelled: { false })
        XCTAssertEqual(reported.value, [name], "one progress report per layer, named")
        let layer = try XCTUnwrap(layers.first)
        let original = try XCTUnwrap(checkpoint.tensor(named: name)).float32MatrixAnyDType()
        let reference = ErrorMetrics.weightErrorReference(original: original, approximation: layer.weight.dequantized())
        let report = try XCTUnwrap(layer.report)
        XCTAssertEqual(report.relativeError, reference.relativeError, accuracy: 1e-12)
        XCTAssertEqual(report.maxAbsError, reference.maxAbsError)
        XCTAssertEqual(report.sqnrDecibels, reference.sqnrDecibels, accuracy: 1e-9)
        XCTAssertGreaterThan(report.relativeError, 0)
        XCTAssertLessThan(report.relativeError, 0.5, "a 4/8-bit grid on uniform weights")
        guard case let .object(entry) = QuantizeLedger.entry(layer) else { return XCTFail("entry is an object") }
        for key in ["name", "shape", "method", "bits", "groupSize", "bitsPerWeight", "relativeError", "maxAbsError", "sqnrDb"] {
            XCTAssertNotNil(entry[key], key)
        }
    }

    func testNonFiniteWeightNamesItsLayer() throws {
        let spec = QuantizationSpec(method: try anyMethod())
        var values = [Float](repeating: 0.5, count: 8 * 64)
        values[3 * 64 + 5] = .nan
        let checkpoint = LoadedCheckpoint(format: .safetensors, path: "<memory>", sourceFiles: [], architecture: "llama",
                                          tensors: [Tensor(name: "w.bad", shape: [8, 64], float32: values),
                                                    Tensor(name: "w.good", shape: [8, 64], float32: [Float](repeating: 1, count: 512))],
                                          config: nil)
        let job = QuantizeJob(checkpoint: checkpoint, assignments: [(name: "w.good", spec: spec), (name: "w.bad", spec: spec)])
        XCTAssertThrowsError(try job.run(method: "quantize", report: { _, _, _ in }, isCancelled: { false })) { error in
            let mapped = ErrorMapping.rpcError(error)
            XCTAssertEqual(mapped.code, RPCError.Code.invalidParams)
            XCTAssertEqual(mapped.data?["layer"], "w.bad")
            XCTAssertEqual(mapped.data?["row"], 3)
            XCTAssertEqual(mapped.data?["column"], 5)
            XCTAssertNotNil(mapped.data?["param"])
        }
    }

    func testGroupSizeThatDoesNotDivideIsRefusedBeforeWork() throws {
        guard Quantizer.isImplemented(.int) else { throw XCTSkip("int is not implemented in this build") }
        let checkpoint = try QuantizedModelFileTests.checkpoint()
        let job = QuantizeJob(checkpoint: checkpoint, assignments: [(name: "model.layers.0.self_attn.q_proj.weight",
                                                                     spec: QuantizationSpec(method: .int, groupSize: 48))])
        XCTAssertThrowsError(try job.validate()) { error in
            let mapped = ErrorMapping.rpcError(error)
            XCTAssertEqual(mapped.code, RPCError.Code.invalidParams)
            XCTAssertEqual(mapped.data?["param"], "groupSize")
            XCTAssertEqual(mapped.data?["layer"], "model.layers.0.self_attn.q_proj.weight")
        }
    }

    func testCancellationStopsBetweenLayers() throws {
        let checkpoint = try QuantizedModelFileTests.checkpoint()
        let spec = QuantizationSpec(method: try anyMethod())
        let job = QuantizeJob(checkpoint: checkpoint, assignments: [(name: "model.layers.0.self_attn.q_proj.weight", spec: spec),
                                                                    (name: "model.layers.0.mlp.down_proj.weight", spec: spec)])
        XCTAssertThrowsError(try job.run(method: "quantize", report: { _, _, _ in }, isCancelled: { true })) { error in
            XCTAssertEqual((error as? RPCError)?.code, RPCError.Code.requestCancelled)
        }
    }

    func testDefaultTargetsAreTheBlockLinears() throws {
        let checkpoint = try QuantizedModelFileTests.checkpoint()
        XCTAssertEqual(try QuantizeTargets.select(checkpoint, targets: nil, exclude: []),
                       ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"],
                       "embeddings and norms stay untouched by default")
        XCTAssertEqual(try QuantizeTargets.select(checkpoint, targets: ["model.*.weight"], exclude: ["*down_proj*"]),
                       ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"], "1-D norms are skipped")
        for (targets, exclude, param) in [(["nothing.*"], [String](), "targets"), (["model.norm.weight"], [], "targets"),
                                          (nil, ["typo*"], "exclude"), (["model.[0-"], [], "targets")] {
            XCTAssertThrowsError(try QuantizeTargets.select(checkpoint, targets: targets, exclude: exclude)) { error in
                XCTAssertEqual((error as? RPCError)?.data?["param"], .string(param), "\(String(describing: targets)) \(exclude)")
            }
        }
    }
}

/// A value shared with @Sendable closures in tests.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ body: (inout Value) -> Void) { lock.lock(); defer { lock.unlock() }; body(&stored) }
}
