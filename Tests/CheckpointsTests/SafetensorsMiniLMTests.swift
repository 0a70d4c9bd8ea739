import Foundation
import XCTest
@testable import Checkpoints
import Tensors
import TestSupport

/// all-MiniLM-L6-v2 as published (written by the reference writer through transformers).
/// Skips unless the sample-model cache (`$LOQUAT_MODELS`, see `SampleModels`) holds it.
final class SafetensorsMiniLMTests: SafetensorsTestCase {
    private func miniLMDirectory() throws -> String {
        guard let directory = SampleModels.miniLMDirectory,
              FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw XCTSkip("all-MiniLM-L6-v2 not in the sample-model cache (set LOQUAT_MODELS)")
        }
        return directory
    }

    func testOpensAndParsesConfig() throws {
        let directory = try miniLMDirectory()
        let checkpoint = try SafetensorsCheckpoint.open(directory: directory)
        XCTAssertNil(checkpoint.indexPath)
        // 103 F32 weights plus the I64 `embeddings.position_ids` buffer.
        XCTAssertEqual(checkpoint.tensors.count, 104)
        XCTAssertEqual(checkpoint.metadata, ["format": "pt"])
        XCTAssertEqual(checkpoint.tensor(named: "embeddings.word_embeddings.weight")?.shape, [30522, 384])
        XCTAssertEqual(checkpoint.tensor(named: "embeddings.position_ids")?.dtype, .i64)
        XCTAssertEqual(checkpoint.tensors.filter { $0.dtype == .f32 }.count, 103)

        let config = try XCTUnwrap(try ModelConfig.load(directory: directory))
        XCTAssertEqual(config.architecture, .bert)
        XCTAssertEqual(config.hiddenLayerCount, 6)
        XCTAssertEqual(config.attentionHeadCount, 12)
        XCTAssertEqual(config.hiddenSize, 384)
        XCTAssertEqual(config.headDimension, 32)
        XCTAssertEqual(config.intermediateSize, 1536)
        XCTAssertEqual(config.vocabularySize, 30522)
        XCTAssertEqual(config.normEpsilon, 1e-12)
        XCTAssertEqual(config.typeVocabularySize, 2)
        XCTAssertEqual(config.padTokenID, 0)
        XCTAssertEqual(config.hiddenActivation, "gelu")
    }

    /// Our layout of the same tensors is the published file, byte for byte.
    func testRewriteIsByteIdenticalToThePublishedFile() throws {
        let source = try miniLMDirectory() + "/model.safetensors"
        let input = try SafetensorsFile(path: source)
        let output = temporaryPath("model.safetensors")
        try SafetensorsWriter.write(tensors: input.tensors, metadata: input.metadata, to: output, overwrite: false)

        let written = try SafetensorsFile(path: output)
        XCTAssertEqual(written.names, input.names)
        for (original, copy) in zip(input.tensors, written.tensors) {
            XCTAssertEqual(copy.shape, original.shape)
            XCTAssertEqual(copy.dtype, original.dtype)
            XCTAssertTrue(original.storage.bytes.elementsEqual(copy.storage.bytes), original.name)
        }
        XCTAssertEqual(written.fileByteCount, input.fileByteCount)
        XCTAssertEqual(memcmp(written.mapping.bytes.baseAddress!, input.mapping.bytes.baseAddress!, input.fileByteCount), 0,
                       "the rewrite differs from the published file")
    }
}
