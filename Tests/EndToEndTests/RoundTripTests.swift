import Checkpoints
import Foundation
import JSON
import TestSupport
import XCTest

/// Real weights through the daemon and back.
final class RoundTripTests: XCTestCase {
    /// SmolLM2 GGUF (Q4_1) → daemon → safetensors F32 → every matrix bit-identical to the
    /// GGUF's dequantized, un-permuted tensors.
    func testSmolLM2SavedAsSafetensorsIsBitIdentical() throws {
        guard let gguf = SampleModels.smolLM2GGUF else { throw XCTSkip("sample models not fetched") }
        let directory = makeTemporaryDirectory("smollm2-roundtrip")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(gguf), "name": "base"])["result"])
        let saved = try session.request("model/save", ["model": "base", "path": .string(directory + "/hf")])
        XCTAssertEqual(saved["result"]?["tensorCount"], 272, "\(saved)")
        let reloaded = try session.request("model/load", ["path": .string(directory + "/hf"), "name": "again"])
        XCTAssertEqual(reloaded["result"]?["tensorCount"], 272)
        XCTAssertEqual(session.finish(), 0)

        let original = try CheckpointLoader.load(path: gguf)
        let roundTrip = try CheckpointLoader.load(path: directory + "/hf")
        XCTAssertEqual(roundTrip.config?.tieWordEmbeddings, true)
        XCTAssertEqual(Set(original.tensors.map(\.name)), Set(roundTrip.tensors.map(\.name)))
        for tensor in original.tensors {
            let copy = try XCTUnwrap(roundTrip.tensor(named: tensor.name))
            XCTAssertEqual(copy.shape, tensor.shape, tensor.name)
            XCTAssertEqual(copy.dtype, .f32)
            let want = try tensor.float32Values().map(\.bitPattern)
            let have = try copy.float32Values().map(\.bitPattern)
            XCTAssertTrue(want == have, "\(tensor.name) differs after the round trip")
        }
        // The tokenizer travels too: tokenizer.json converted from the GGUF's tokenizer.ggml.* keys.
        let tokenizer = try JSON.parse(String(contentsOfFile: directory + "/hf/tokenizer.json", encoding: .utf8))
        XCTAssertEqual(tokenizer["model"]?["type"], "BPE")
        XCTAssertEqual(tokenizer["model"]?["vocab"]?.objectValue?.count, 49152)
        let provenance = try JSON.parse(String(contentsOfFile: directory + "/hf/loquat.json", encoding: .utf8))
        XCTAssertEqual(provenance["source"]?["format"], "gguf")
        XCTAssertTrue(provenance["source"]?["contentHash"]?.stringValue?.hasPrefix("fnv1a64:") ?? false)
    }
}
