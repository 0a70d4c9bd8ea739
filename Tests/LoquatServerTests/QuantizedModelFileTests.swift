import Checkpoints
import Foundation
import JSON
import JSONRPC
import Quantization
import Tensors
import TestSupport
import XCTest
@testable import LoquatServer

/// The loquat format: a quantized model written with `QuantizedModelFile` and loaded back has
/// bit-identical `dequantized()` matrices, the same specs, and untouched tensors byte for byte.
final class QuantizedModelFileTests: XCTestCase {
    /// A small llama-named checkpoint: two linear weights, a norm (1-D) and a Q8_0 embedding.
    static func checkpoint() throws -> LoadedCheckpoint {
        let q: Matrix<Float> = RandomMatrices.uniform(32, 128, seed: 1)
        let down: Matrix<Float> = RandomMatrices.uniform(48, 256, seed: 2)
        let embedding: Matrix<Float> = RandomMatrices.uniform(16, 64, seed: 3)
        let embeddingBytes = try GGMLBlockCodec.encode(embedding.values, rowCount: 16, columnCount: 64, as: .q8_0)
        return LoadedCheckpoint(format: .safetensors, path: "<memory>", sourceFiles: [], architecture: "llama", tensors: [
            try Tensor(name: "model.embed_tokens.weight", dtype: .q8_0, shape: [16, 64], storage: .bytes(embeddingBytes)),
            Tensor(name: "model.layers.0.self_attn.q_proj.weight", shape: [32, 128], float32: q.values),
            Tensor(name: "model.layers.0.mlp.down_proj.weight", shape: [48, 256], float32: down.values),
            Tensor(name: "model.norm.weight", shape: [64], float32: [Float](repeating: 1, count: 64)),
        ], config: nil)
    }

    /// Specs to try: every implemented calibration-free method, plus rotation/outlier variants.
    static func specs() -> [QuantizationSpec] {
        var specs: [QuantizationSpec] = []
        for method in Quantizer.implementedMethods where method != .gptq {
            specs.append(QuantizationSpec(method: method))
        }
        if Quantizer.isImplemented(.nf4) { specs.append(QuantizationSpec(method: .nf4, doubleQuant: true)) }
        if Quantizer.isImplemented(.int) {
            specs.append(QuantizationSpec(method: .int, bits: 3, groupSize: 32, symmetric: false))
            specs.append(QuantizationSpec(method: .int, rotation: RotationSpec(seed: 7)))
            specs.append(QuantizationSpec(method: .int, outliers: .fraction(0.01)))
            specs.append(QuantizationSpec(method: .int, rotation: RotationSpec(seed: 0xFFFF_FFFF_FFFF_FFF1), outliers: .threshold(2)))
        }
        return specs
    }

    func quantizedModel(_ checkpoint: LoadedCheckpoint, spec: QuantizationSpec) throws -> QuantizedModel {
        let names = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"]
        let job = QuantizeJob(checkpoint: checkpoint, assignments: names.map { (name: $0, spec: spec) })
        try job.validate()
        let layers = try job.run(method: "quantize", report: { _, _, _ in }, isCancelled: { false })
        return QuantizedModel(sourceHandle: "base", base: checkpoint, tensorNames: checkpoint.tensors.map(\.name),
                              layers: Dictionary(uniqueKeysWithValues: layers.map { ($0.name, $0) }), request: .null)
    }

    func testEveryEncodableMethodReloadsBitIdentically() throws {
        let checkpoint = try Self.checkpoint()
        let directory = makeTemporaryDirectory("loquat-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var tried = 0, rotatedTried = false, outliersTried = false
        for (index, spec) in Self.specs().enumerated() {
            let label = "\(QuantizeLedger.specFields(spec))"
            let model: QuantizedModel
            do {
                model = try quantizedModel(checkpoint, spec: spec)
            } catch {
                // rotate/outliers may not have landed; plain grids must work.
                if spec.rotation == nil && spec.outliers == nil { XCTFail("\(label): \(error)") }
                continue
            }
            guard model.layers.values.allSatisfy({ LoquatFormat.canEncode($0.weight) }) else {
                XCTAssertThrowsError(try QuantizedModelFile.encode(model), "\(label): a weight without codec is refused") { error in
                    XCTAssertEqual(ErrorMapping.rpcError(error).code, RPCError.Code.unsupported)
                }
                continue
            }
            tried += 1
            if spec.rotation != nil { rotatedTried = true }
            if spec.outliers != nil { outliersTried = true }
            let (tensors, metadata) = try QuantizedModelFile.encode(model)
            let path = directory + "/model-\(index).safetensors"
            try SafetensorsWriter.write(tensors: tensors, metadata: metadata, to: path, overwrite: false)
            let loaded = try XCTUnwrap(try QuantizedModelFile.decode(try CheckpointLoader.load(path: path)), label)
            XCTAssertEqual(loaded.tensorNames, model.tensorNames, label)
            XCTAssertNil(loaded.sourceHandle)
            for layer in model.orderedLayers {
                let reloaded = try XCTUnwrap(loaded.layers[layer.name], label)
                XCTAssertEqual(reloaded.weight.spec, layer.weight.spec, label)
                XCTAssertEqual(reloaded.weight.storageBitCount, layer.weight.storageBitCount, label)
                XCTAssertEqual(reloaded.sourceDType, layer.sourceDType)
                XCTAssertEqual(reloaded.report?.relativeError, layer.report?.relativeError, "the ledger travels along")
                let before = layer.weight.dequantized().values.map(\.bitPattern)
                let after = reloaded.weight.dequantized().values.map(\.bitPattern)
                XCTAssertEqual(before, after, "\(label) \(layer.name): dequantized() must be bit-identical")
            }
            for tensor in model.untouchedTensors {
                let reloaded = try XCTUnwrap(loaded.base.tensor(named: tensor.name), tensor.name)
                XCTAssertEqual(reloaded.dtype, tensor.dtype, "\(tensor.name) keeps its dtype (GGUF blocks included)")
                XCTAssertEqual(reloaded.shape, tensor.shape)
                XCTAssertEqual(Array(reloaded.storage.bytes), Array(tensor.storage.bytes), tensor.name)
            }
        }
        XCTAssertGreaterThan(tried, 0, "at least one implemented family has a loquat codec")
        if Quantizer.isImplemented(.int) {
            XCTAssertTrue(rotatedTried, "a Hadamard-rotated grid round-trips")
            XCTAssertTrue(outliersTried, "a grid with sparse outliers round-trips")
        }
    }

    func testCodePackingRoundTrips() throws {
        for bits in 1...8 {
            for count in [0, 1, 7, 8, 9, 63, 100] {
                let codes = (0..<count).map { UInt8(($0 * 37 + bits) % (1 << bits)) }
                let packed = LoquatFormat.packCodes(codes, bits: bits)
                XCTAssertEqual(packed.count, (count * bits + 7) / 8)
                XCTAssertEqual(try LoquatFormat.unpackCodes(packed, bits: bits, count: count), codes, "bits \(bits), count \(count)")
            }
        }
        XCTAssertEqual(LoquatFormat.packCodes([1, 2, 3], bits: 4), [0x21, 0x03], "LSB first")
        XCTAssertThrowsError(try LoquatFormat.unpackCodes([0, 0], bits: 4, count: 5), "a short code stream is malformed")
    }

    func testDamagedRecordsAreErrorsNotCrashes() throws {
        guard Quantizer.isImplemented(.int) else { throw XCTSkip("int is not implemented in this build") }
        let checkpoint = try Self.checkpoint()
        let model = try quantizedModel(checkpoint, spec: QuantizationSpec(method: .int))
        var record = try LoquatFormat.encode(try XCTUnwrap(model.layers.values.first).weight)
        record.tensors["scales"] = LoquatFormat.floatTensor("scales", [1, 2, 3])
        XCTAssertThrowsError(try LoquatFormat.decode(record)) { error in
            guard case .malformed? = error as? LoquatFormatError else { return XCTFail("\(error)") }
            XCTAssertEqual(ErrorMapping.rpcError(error).code, RPCError.Code.ioError, "a damaged file is an I/O error")
        }
        record.family = "no-such-family"
        XCTAssertThrowsError(try LoquatFormat.decode(record)) { error in
            XCTAssertEqual(error as? LoquatFormatError, .unknownFamily("no-such-family"))
            XCTAssertEqual(ErrorMapping.rpcError(error).code, RPCError.Code.unsupported, "a family this build lacks is unsupported")
        }
    }
}
