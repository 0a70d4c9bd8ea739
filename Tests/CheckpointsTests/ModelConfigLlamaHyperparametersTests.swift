import XCTest
@testable import Checkpoints

final class ModelConfigLlamaHyperparametersTests: XCTestCase {
    func testRoundTripThroughGGUFHyperparameters() throws {
        let hyperparameters = LlamaHyperparameters(vocabularySize: 49152, contextLength: 8192, embeddingLength: 576,
                                                   blockCount: 30, feedForwardLength: 1536, headCount: 9, headCountKV: 3,
                                                   rmsNormEpsilon: 1e-5, ropeFrequencyBase: 100_000)
        let config = ModelConfig(llama: hyperparameters)
        XCTAssertEqual(config.architecture, .llama)
        XCTAssertEqual(config.headDimension, 64)
        XCTAssertEqual(config.keyValueHeadCount, 3)
        XCTAssertEqual(config.normEpsilon, 1e-5)
        XCTAssertEqual(config.ropeTheta, 100_000)
        XCTAssertEqual(config.jsonObject()["rms_norm_eps"], .number(1e-5))
        XCTAssertEqual(try config.llamaHyperparameters(), hyperparameters)

        let bert = ModelConfig(architecture: .bert, hiddenSize: 8, intermediateSize: 8, hiddenLayerCount: 1,
                               attentionHeadCount: 2, vocabularySize: 10, maxPositionEmbeddings: 16, normEpsilon: 1e-12)
        XCTAssertThrowsError(try bert.llamaHyperparameters())
    }
}
