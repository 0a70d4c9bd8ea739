import Adapters
import Checkpoints
import Foundation
import JSON
import Tensors
import TestSupport
import XCTest
@testable import LoquatServer

/// PEFT adapter directories against what PEFT 0.21.2 itself saved (Tests/Generators/peft_goldens.py).
final class PEFTAdapterFileTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../AdaptersTests/Fixtures/peft").standardized.path

    static func tensors(_ path: String) throws -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: try SafetensorsFile(path: path).tensors.map { ($0.name, $0) })
    }

    /// rsLoRA, rank_pattern and alpha_pattern: ΔW of every module equals PEFT's get_delta_weight.
    func testLoadedAdapterGivesPEFTsDeltaWeights() throws {
        let (adapter, _) = try PEFTAdapterReading.read(path: Self.fixtures + "/tiny-llama/adapter-lora")
        let deltas = try Self.tensors(Self.fixtures + "/tiny-llama/deltas.safetensors")
        XCTAssertTrue(adapter.useRSLoRA)
        XCTAssertEqual(adapter.layers.count, 14)
        for layer in adapter.layers {
            let expected = try XCTUnwrap(deltas["lora/" + layer.module], layer.module).float32Matrix()
            XCTAssertLessThanOrEqual(adapter.deltaWeight(of: layer).maxAbsDifference(expected), 1e-6, layer.module)
            XCTAssertEqual(layer.rank, layer.module.hasSuffix("down_proj") ? 2 : 4)
            XCTAssertEqual(layer.alpha, layer.module.hasSuffix("v_proj") ? 16 : 8)
        }
    }

    /// DoRA: the merged weight diag(m / ‖W + ΔW‖_row)·(W + ΔW) equals PEFT's merge_and_unload.
    func testDoRAMergedWeightsEqualPEFTs() throws {
        let (adapter, _) = try PEFTAdapterReading.read(path: Self.fixtures + "/tiny-llama/adapter-dora")
        let base = try Self.tensors(Self.fixtures + "/tiny-llama/base/model.safetensors")
        let merged = try Self.tensors(Self.fixtures + "/tiny-llama/deltas.safetensors")
        XCTAssertTrue(adapter.useDoRA)
        XCTAssertEqual(adapter.layers.count, 4)
        for layer in adapter.layers {
            XCTAssertNotNil(layer.magnitude)
            let w = try XCTUnwrap(base[layer.weightName]).float32Matrix()
            let expected = try XCTUnwrap(merged["dora/" + layer.module]).float32Matrix()
            XCTAssertLessThanOrEqual(adapter.adaptedWeight(base: w, layer: layer).maxAbsDifference(expected), 1e-6, layer.module)
        }
    }

    /// What we write has PEFT's config keys, tensor keys, shapes and dtypes, and reads back to the
    /// same ΔW (rsLoRA, DoRA magnitudes and both patterns included).
    func testWrittenAdapterRoundTripsAndHasPEFTsLayout() throws {
        let (adapter, _) = try PEFTAdapterReading.read(path: Self.fixtures + "/tiny-llama/adapter-lora")
        let directory = makeTemporaryDirectory("peft-roundtrip")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = PEFTAdapterConversion.config(of: adapter, architecture: "llama", baseModelNameOrPath: nil)
        _ = try PEFTAdapterFiles.write(config: config, tensors: PEFTAdapterConversion.tensors(of: adapter), to: directory, overwrite: false)
        let reference = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/tiny-llama/adapter-lora/adapter_config.json")).map { $0 })
        let written = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: directory + "/adapter_config.json")).map { $0 })
        XCTAssertEqual(Set(written.objectValue!.keys), Set(reference.objectValue!.keys))
        for key in ["r", "lora_alpha", "use_rslora", "use_dora", "rank_pattern", "alpha_pattern", "peft_type", "bias", "fan_in_fan_out"] {
            XCTAssertEqual(written[key], reference[key], key)
        }
        XCTAssertEqual(Set(written["target_modules"]!.arrayValue!.compactMap(\.stringValue)),
                       Set(reference["target_modules"]!.arrayValue!.compactMap(\.stringValue)))
        let ours = try SafetensorsFile(path: directory + "/adapter_model.safetensors")
        let theirs = try SafetensorsFile(path: Self.fixtures + "/tiny-llama/adapter-lora/adapter_model.safetensors")
        XCTAssertEqual(ours.tensors.map(\.name), theirs.tensors.map(\.name))
        XCTAssertEqual(ours.tensors.map(\.shape), theirs.tensors.map(\.shape))
        XCTAssertEqual(ours.tensors.map(\.dtype), theirs.tensors.map(\.dtype))
        XCTAssertEqual(ours.metadata, theirs.metadata)
        XCTAssertEqual(try LoquatServer.roundTripDifference(adapter, directory: directory), 0)

        let (dora, _) = try PEFTAdapterReading.read(path: Self.fixtures + "/tiny-llama/adapter-dora")
        let doraDirectory = directory + "/dora"
        try FileManager.default.createDirectory(atPath: doraDirectory, withIntermediateDirectories: true)
        _ = try PEFTAdapterFiles.write(config: PEFTAdapterConversion.config(of: dora, architecture: "llama", baseModelNameOrPath: nil),
                                       tensors: PEFTAdapterConversion.tensors(of: dora), to: doraDirectory, overwrite: false)
        let doraTheirs = try SafetensorsFile(path: Self.fixtures + "/tiny-llama/adapter-dora/adapter_model.safetensors")
        XCTAssertEqual(try SafetensorsFile(path: doraDirectory + "/adapter_model.safetensors").tensors.map(\.name), doraTheirs.tensors.map(\.name))
        let (doraBack, _) = try PEFTAdapterReading.read(path: doraDirectory)
        XCTAssertEqual(doraBack.layers.map(\.magnitude), dora.layers.map(\.magnitude))
    }

    /// A rank-16 adapter on all 210 linear layers of SmolLM2 has exactly the keys (in header
    /// order), shapes, dtypes and config fields of the adapter PEFT saved for that architecture.
    func testSmolLM2AdapterLayoutEqualsPEFTs() throws {
        let manifest = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/smollm2-manifest.json")).map { $0 })
        let shapes: [(String, Int, Int)] = [("self_attn.q_proj", 576, 576), ("self_attn.k_proj", 192, 576), ("self_attn.v_proj", 192, 576),
                                           ("self_attn.o_proj", 576, 576), ("mlp.gate_proj", 1536, 576), ("mlp.up_proj", 1536, 576),
                                           ("mlp.down_proj", 576, 1536)]
        let layers = (0..<30).flatMap { index in
            shapes.map { suffix, out, inputs in
                LoRALayer(module: "model.layers.\(index).\(suffix)", alpha: 16, loraA: Matrix(zeros: 16, inputs), loraB: Matrix(zeros: out, 16))
            }
        }
        let adapter = LoRAAdapter(layers: layers, rank: 16, alpha: 16)
        let directory = makeTemporaryDirectory("peft-smollm2")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = PEFTAdapterConversion.config(of: adapter, architecture: "llama", baseModelNameOrPath: "HuggingFaceTB/SmolLM2-135M-Instruct")
        _ = try PEFTAdapterFiles.write(config: config, tensors: PEFTAdapterConversion.tensors(of: adapter), to: directory, overwrite: false)
        let file = try SafetensorsFile(path: directory + "/adapter_model.safetensors")
        let expected = manifest["tensors"]!.arrayValue!
        XCTAssertEqual(file.tensors.map(\.name), expected.compactMap { $0["key"]?.stringValue })
        XCTAssertEqual(file.tensors.map(\.shape), expected.map { $0["shape"]!.arrayValue!.compactMap(\.intValue) })
        XCTAssertEqual(file.tensors.map(\.dtype.rawValue), expected.compactMap { $0["dtype"]?.stringValue })
        let reference = manifest["adapter_config"]!.objectValue!
        let written = try JSON.parse(try Data(contentsOf: URL(fileURLWithPath: directory + "/adapter_config.json")).map { $0 }).objectValue!
        XCTAssertEqual(Set(written.keys), Set(reference.keys))
        for key in reference.keys where key != "target_modules" {
            XCTAssertEqual(written[key], reference[key], key)
        }
        XCTAssertEqual(Set(written["target_modules"]!.arrayValue!.compactMap(\.stringValue)),
                       Set(reference["target_modules"]!.arrayValue!.compactMap(\.stringValue)))
    }
}
