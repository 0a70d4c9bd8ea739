import Tensors
import XCTest
@testable import Checkpoints

/// K-quant GGUF exports: rows that are whole 256-blocks take the K type, others llama.cpp's
/// fallback (formats.md §2.7), and the file says which recipe it holds.
final class GGUFKQuantWriterTests: XCTestCase {
    private func matrix(_ rows: Int, _ columns: Int) -> Tensor {
        Tensor(name: "w", shape: [rows, columns], float32: (0..<(rows * columns)).map { Float(($0 * 7919) % 201) / 100 - 1 })
    }

    func testStorageTypesFollowLlamaCppFallbacks() {
        let hyperparameters = LlamaHyperparameters(vocabularySize: 8, contextLength: 64, embeddingLength: 64, blockCount: 1,
                                                   feedForwardLength: 256, headCount: 1, headCountKV: 1, rmsNormEpsilon: 1e-5,
                                                   ropeFrequencyBase: 10000, headDimension: 64)
        let expectations: [(DType, DType)] = [(.q4_K, .q5_0), (.q5_K, .q5_1), (.q6_K, .q8_0), (.q2_K, .q4_0), (.q3_K, .q4_0)]
        for (kType, fallback) in expectations {
            let writer = GGUFWriter(hyperparameters: hyperparameters, weightType: kType)
            XCTAssertEqual(writer.storageType(of: matrix(2, 512)), kType)
            XCTAssertEqual(writer.storageType(of: matrix(2, 576)), fallback, "\(kType) on 576-wide rows")
            XCTAssertEqual(writer.storageType(of: matrix(2, 40)), .f16, "\(kType) on rows with no whole 32-block")
            XCTAssertNotNil(GGUFTensorType.fileType(forWeightType: kType))
        }
    }

    func testKQuantTensorsRoundTripThroughTheReader() throws {
        let hyperparameters = LlamaHyperparameters(vocabularySize: 8, contextLength: 64, embeddingLength: 256, blockCount: 1,
                                                   feedForwardLength: 512, headCount: 4, headCountKV: 4, rmsNormEpsilon: 1e-5,
                                                   ropeFrequencyBase: 10000, headDimension: 64)
        let directory = NSTemporaryDirectory() + "kquant-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let down = matrix(256, 512).renamed("model.layers.0.mlp.down_proj.weight")
        let path = directory + "/k.gguf"
        try GGUFWriter(hyperparameters: hyperparameters, weightType: .q4_K).write(huggingFaceTensors: [down], to: path, overwrite: false)
        let file = try GGUFFile(path: path)
        let stored = try XCTUnwrap(file.tensorInfo(named: "blk.0.ffn_down.weight"))
        XCTAssertEqual(stored.dtype, .q4_K)
        XCTAssertEqual(file.metadata["general.file_type"]?.uint32, 14)
        let decoded = try GGMLBlockCodec.decode(try file.tensor(named: "blk.0.ffn_down.weight"))
        let original = try down.decodedFloat32()
        var error = 0.0, norm = 0.0
        for (a, b) in zip(original, decoded) { error += Double(a - b) * Double(a - b); norm += Double(a) * Double(a) }
        // Q4_K on uniform values in [-1, 1): about 4.5 bits, so well under 10% relative error.
        XCTAssertLessThan((error / norm).squareRoot(), 0.1)
    }
}
