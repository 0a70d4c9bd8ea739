import Checkpoints
import Foundation
import Tensors
import TestSupport
import XCTest
@testable import Quantization

/// The bitsandbytes checkpoint layout: names, dtypes, shapes, the quant-state JSON byte for byte
/// against bnb's own `QuantState.as_dict(packed=True)`, a round trip through our safetensors
/// reader, and the `quantization_config` object.
final class BitsAndBytesExportTests: XCTestCase {
    func testQuantStateBlobsAreBnbBytes() throws {
        let file = try SafetensorsFile(path: BitsAndBytesGoldenTests.fixturePath)
        let compared = try BitsAndBytesGoldenTests.forEachGolden(in: file) { key, matrix, spec in
            let weight = try BitsAndBytesFourBit.quantize(matrix, spec: spec)
            let tensors = try BitsAndBytesExport.tensors(for: weight, prefix: "model.layer")
            let state = try XCTUnwrap(tensors.last)
            XCTAssertEqual(state.name, "model.layer.weight.quant_state.bitsandbytes__\(spec.method.rawValue)")
            XCTAssertEqual(Array(state.storage.bytes), try bnbBytes(file, "\(key).quant_state"),
                           "\(key): \(String(decoding: state.storage.bytes, as: UTF8.self))")
        }
        XCTAssertEqual(compared, 9 * 4)
    }

    func testTensorNamesDTypesAndShapes() throws {
        let matrix: Matrix<Float> = RandomMatrices.uniform(9, 64, seed: 5)  // 576 elements, 9 blocks
        let plain = try BitsAndBytesExport.tensors(for: try BitsAndBytesFourBit.quantize(matrix, spec: QuantizationSpec(method: .nf4)),
                                                   prefix: "q_proj", originalDType: "bfloat16")
        XCTAssertEqual(plain.map(\.name), ["q_proj.weight", "q_proj.weight.absmax", "q_proj.weight.quant_map",
                                           "q_proj.weight.quant_state.bitsandbytes__nf4"])
        XCTAssertEqual(plain.map(\.dtype), [.u8, .f32, .f32, .u8])
        XCTAssertEqual(plain.prefix(3).map(\.shape), [[288, 1], [9], [16]])
        XCTAssertEqual(String(decoding: plain[3].storage.bytes, as: UTF8.self),
                       "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [9, 64]}")
        let nested = try BitsAndBytesExport.tensors(for: try BitsAndBytesFourBit.quantize(matrix, spec: QuantizationSpec(method: .fp4, doubleQuant: true)),
                                                    prefix: "o_proj")
        XCTAssertEqual(nested.map(\.name), ["o_proj.weight", "o_proj.weight.absmax", "o_proj.weight.quant_map", "o_proj.weight.nested_absmax",
                                            "o_proj.weight.nested_quant_map", "o_proj.weight.quant_state.bitsandbytes__fp4"])
        XCTAssertEqual(nested.map(\.dtype), [.u8, .u8, .f32, .f32, .f32, .u8])
        XCTAssertEqual(nested.prefix(5).map(\.shape), [[288, 1], [9], [16], [1], [256]])
    }

    func testRoundTripThroughSafetensors() throws {
        let directory = makeTemporaryDirectory("bnb-export")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let matrix: Matrix<Float> = RandomMatrices.uniform(40, 200, seed: 8)  // 8000 elements: 250 blocks of 32, ragged end
        for quantType in BitsAndBytesQuantType.allCases {
            for doubleQuant in [false, true] {
                let spec = QuantizationSpec(method: quantType == .nf4 ? .nf4 : .fp4, groupSize: 32, doubleQuant: doubleQuant)
                let weight = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: spec)
                let path = directory + "/\(quantType)-\(doubleQuant).safetensors"
                let other = Tensor(name: "model.norm.weight", shape: [4], float32: [1, 2, 3, 4])
                try SafetensorsWriter.write(tensors: try BitsAndBytesExport.tensors(for: weight, prefix: "model.proj", originalDType: "float16") + [other],
                                            to: path, overwrite: false)
                let file = try SafetensorsFile(path: path)
                let (loaded, dtype) = try BitsAndBytesImport.weight(prefix: "model.proj") { file.tensor(named: $0) }
                XCTAssertEqual(loaded, weight)
                XCTAssertEqual(dtype, "float16")
                XCTAssertEqual(loaded.dequantized().values.map(\.bitPattern), weight.dequantized().values.map(\.bitPattern))
            }
        }
    }

    func testQuantStateParsing() throws {
        let bnbStyle = "{\"quant_type\": \"fp4\", \"blocksize\": 128, \"dtype\": \"float32\", \"shape\": [3, 5], "
            + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.12345000356435776}"
        let state = try BitsAndBytesQuantState(json: bnbStyle)
        XCTAssertEqual(state, BitsAndBytesQuantState(quantType: .fp4, blockSize: 128, dtype: "float32", shape: [3, 5],
                                                     nestedBlockSize: 256, nestedDType: "float32", nestedOffset: 0.12345))
        XCTAssertEqual(state.json, bnbStyle)
        XCTAssertEqual(try BitsAndBytesQuantState(json: "{\"shape\":[1,2],\"dtype\":\"float16\",\"blocksize\":64,\"quant_type\":\"nf4\"}").shape, [1, 2])
        for bad in ["", "{", "{\"quant_type\": \"int4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [1, 2]}",
                    "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [1, 2], \"extra\": 1}",
                    "{\"quant_type\": \"nf4\", \"blocksize\": 6.5, \"dtype\": \"float32\", \"shape\": [1, 2]}",
                    "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [1, 2]} x"] {
            XCTAssertThrowsError(try BitsAndBytesQuantState(json: bad), bad) { error in
                XCTAssertEqual((error as? QuantizationError)?.parameter, "quant_state")
            }
        }
    }

    func testImportRefusesInconsistentTensors() throws {
        let weight = try BitsAndBytesFourBit.quantize(RandomMatrices.uniform(4, 64, seed: 1), spec: QuantizationSpec(method: .nf4))
        var tensors = Dictionary(uniqueKeysWithValues: try BitsAndBytesExport.tensors(for: weight, prefix: "p").map { ($0.name, $0) })
        tensors["p.weight.absmax"] = Tensor(name: "p.weight.absmax", shape: [3], float32: [1, 1, 1])
        XCTAssertThrowsError(try BitsAndBytesImport.weight(prefix: "p") { tensors[$0] })
        tensors["p.weight.quant_state.bitsandbytes__nf4"] = nil
        XCTAssertThrowsError(try BitsAndBytesImport.weight(prefix: "p") { tensors[$0] })
    }

    func testQuantizationConfig() throws {
        let matrix: Matrix<Float> = RandomMatrices.uniform(4, 64, seed: 1)
        let nf4 = try BitsAndBytesFourBit.quantize(matrix, spec: QuantizationSpec(method: .nf4, doubleQuant: true))
        let config = try BitsAndBytesExport.config(for: [nf4, nf4], computeDType: "bfloat16")
        XCTAssertEqual(config.entries.map(\.key), config.entries.map(\.key).sorted(), "transformers writes sorted keys")
        let entries = Dictionary(uniqueKeysWithValues: config.entries.map { ($0.key, $0.value) })
        XCTAssertEqual(entries.count, 13)
        XCTAssertEqual(entries["quant_method"], .string("bitsandbytes"))
        XCTAssertEqual(entries["load_in_4bit"], .bool(true))
        XCTAssertEqual(entries["bnb_4bit_quant_type"], .string("nf4"))
        XCTAssertEqual(entries["bnb_4bit_use_double_quant"], .bool(true))
        XCTAssertEqual(entries["bnb_4bit_compute_dtype"], .string("bfloat16"))
        XCTAssertEqual(entries["llm_int8_skip_modules"], .null)
        let fp4 = try BitsAndBytesFourBit.quantize(matrix, spec: QuantizationSpec(method: .fp4, doubleQuant: true))
        XCTAssertThrowsError(try BitsAndBytesExport.config(for: [nf4, fp4]))
        XCTAssertThrowsError(try BitsAndBytesExport.config(for: [nf4], computeDType: "int8"))
        XCTAssertThrowsError(try BitsAndBytesExport.config(for: []))
    }
}
