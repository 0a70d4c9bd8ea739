import Checkpoints
import Quantization
import Tensors
import XCTest
@testable import Models

final class LlamaCalibrationTests: XCTestCase {
    /// The first block's q/k/v input is RMSNorm(embedding rows) ⊙ weight, computable directly:
    /// the recorded Gram matrix must equal XᵀX of those rows (summed over windows).
    func testGramEqualsXTransposeXOfTheCapturedInputs() throws {
        let config = TinyLlama.config()
        let checkpoint = TinyLlama.checkpoint(config)
        let model = try LlamaModel(checkpoint: checkpoint)
        let windows = [TinyLlama.tokens(19), TinyLlama.tokens(11, seed: 9)]
        let statistics = try LlamaCalibration.collect(model: model, windows: windows) { _, _ in }

        let hidden = model.configuration.hiddenSize
        let epsilon = model.configuration.normEpsilon
        var expected = [Double](repeating: 0, count: hidden * hidden)
        for token in windows.joined() {
            let row = model.embedding.row(token).map(Double.init)
            let rms = (row.reduce(0) { $0 + $1 * $1 } / Double(hidden) + epsilon).squareRoot()
            let x = (0..<hidden).map { row[$0] / rms * Double(model.layers[0].inputNorm[$0]) }
            for i in 0..<hidden { for j in 0..<hidden { expected[i * hidden + j] += x[i] * x[j] } }
        }
        let q = try XCTUnwrap(statistics["model.layers.0.self_attn.q_proj.weight"])
        XCTAssertEqual(q.tokenCount, 30)
        let scale = expected.map(abs).max()!
        for index in expected.indices {
            XCTAssertEqual(q.gram.values[index], expected[index], accuracy: 1e-5 * scale)
        }
        XCTAssertEqual(statistics["model.layers.0.self_attn.v_proj.weight"]?.gram, q.gram, "q/k/v share one input")
        // RMS per channel and the Gram diagonal describe the same sums: H_jj = N·rms_j².
        for j in 0..<hidden {
            XCTAssertEqual(q.gram[j, j], Double(q.tokenCount) * q.rootMeanSquare[j] * q.rootMeanSquare[j], accuracy: 1e-9 * scale)
        }
        let down = try XCTUnwrap(statistics["model.layers.1.mlp.down_proj.weight"])
        XCTAssertEqual(down.gram.rowCount, model.configuration.intermediateSize)
        XCTAssertEqual(statistics.count, model.layers.count * 7, "every linear layer of every block")
    }
}
