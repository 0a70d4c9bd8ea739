import XCTest
import Tensors
import Checkpoints
import TestSupport
@testable import Models

final class PerplexityTests: XCTestCase {
    /// −log softmax(logits[row])[target], from the scalar reference forward, in Double.
    private func referenceLosses(_ model: LlamaModel, window: [Int], rows: Range<Int>) throws -> [Double] {
        let logits = try model.referenceLogits(tokens: window)
        return rows.map { row in
            let values = (0..<logits.columnCount).map { Double(logits[row, $0]) }
            let maximum = values.max()!
            let logSum = log(values.reduce(0) { $0 + exp($1 - maximum) }) + maximum
            return logSum - values[window[row + 1]]
        }
    }

    private func expected(_ losses: [Double]) -> (Double, Double) {
        let n = Double(losses.count)
        let mean = losses.reduce(0, +) / n
        let meanSquare = losses.reduce(0) { $0 + $1 * $1 } / n
        let ppl = exp(mean)
        return (ppl, ppl * ((meanSquare - mean * mean) / (n - 1)).squareRoot())
    }

    func testAllScoringIsHuggingFaceNonOverlappingWindows() throws {
        let model = try LlamaModel(checkpoint: TinyLlama.checkpoint(TinyLlama.config()))
        let tokens = TinyLlama.tokens(27)
        // Windows [0,10), [10,20), [20,27): 9 + 9 + 6 scored tokens.
        var losses: [Double] = []
        for start in stride(from: 0, to: 27, by: 10) {
            let window = Array(tokens[start..<min(start + 10, 27)])
            losses += try referenceLosses(model, window: window, rows: 0..<(window.count - 1))
        }
        var reports: [PerplexityProgress] = []
        let result = try Perplexity.evaluate(model: model, tokens: tokens, contextLength: 10, scoring: .all) { reports.append($0) }
        let (ppl, error) = expected(losses)
        XCTAssertEqual(result.scoredTokenCount, 24)
        XCTAssertEqual(result.chunkCount, 3)
        XCTAssertEqual(result.perplexity, ppl, accuracy: ppl * 1e-5)
        XCTAssertEqual(result.standardError, error, accuracy: error * 1e-3)
        XCTAssertEqual(reports.map(\.chunkIndex), [0, 1, 2])
        XCTAssertEqual(reports.last?.perplexity, result.perplexity)
        let capped = try Perplexity.evaluate(model: model, tokens: tokens, contextLength: 10, scoring: .all, maxChunks: 1)
        XCTAssertEqual(capped.scoredTokenCount, 9)
    }

    func testSecondHalfScoringIsLlamaCppChunks() throws {
        let model = try LlamaModel(checkpoint: TinyLlama.checkpoint(TinyLlama.config()))
        let tokens = TinyLlama.tokens(35)
        // n_ctx 12: 2 chunks (tail of 11 dropped), BOS (1) over the first token of each, rows 6…10 scored.
        var losses: [Double] = []
        for chunk in 0..<2 {
            var window = Array(tokens[(chunk * 12)..<(chunk * 12 + 12)])
            window[0] = 1
            losses += try referenceLosses(model, window: window, rows: 6..<11)
        }
        let result = try Perplexity.evaluate(model: model, tokens: tokens, contextLength: 12, scoring: .secondHalf,
                                             beginningOfSequence: 1)
        let (ppl, error) = expected(losses)
        XCTAssertEqual(result.scoredTokenCount, 10)
        XCTAssertEqual(result.chunkCount, 2)
        XCTAssertEqual(result.scoring, .secondHalf)
        XCTAssertEqual(result.perplexity, ppl, accuracy: ppl * 1e-5)
        XCTAssertEqual(result.standardError, error, accuracy: error * 1e-3)
    }

    func testProgressCanStopAndShortTextsAreRefused() throws {
        let model = try LlamaModel(checkpoint: TinyLlama.checkpoint(TinyLlama.config()))
        struct Stop: Error {}
        XCTAssertThrowsError(try Perplexity.evaluate(model: model, tokens: TinyLlama.tokens(40), contextLength: 10,
                                                     scoring: .all) { _ in throw Stop() }) { XCTAssertTrue($0 is Stop) }
        XCTAssertThrowsError(try Perplexity.evaluate(model: model, tokens: TinyLlama.tokens(23), contextLength: 12,
                                                     scoring: .secondHalf)) { error in
            XCTAssertEqual(error as? PerplexityError, .textTooShort(tokenCount: 23, required: 24, scoring: .secondHalf))
        }
        XCTAssertThrowsError(try Perplexity.evaluate(model: model, tokens: TinyLlama.tokens(40), contextLength: 1000,
                                                     scoring: .all)) { error in
            XCTAssertEqual(error as? PerplexityError, .invalidContextLength(1000, maximum: 256))
        }
    }
}
