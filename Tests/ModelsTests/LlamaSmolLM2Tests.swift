import XCTest
import Foundation
import Tensors
import Checkpoints
import JSON
import TestSupport
@testable import Models

/// Parity on the real sample model (skipped when `$LOQUAT_MODELS` lacks it).
final class LlamaSmolLM2Tests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/llama").path

    /// The golden from Tests/Generators/llama_perplexity_golden.py (llama.cpp's ids and numbers).
    private struct Golden {
        var tokens: [Int]
        var contextLength: Int
        var runningPerplexity: [Double]
        var perplexity: Double
        var standardError: Double
    }

    private func golden() throws -> Golden {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/public-domain.llamacpp.json"))
        let value = try JSON.parse([UInt8](data))
        return Golden(tokens: try XCTUnwrap(value["tokens"]?.arrayValue).compactMap(\.intValue),
                      contextLength: try XCTUnwrap(value["contextLength"]?.intValue),
                      runningPerplexity: try XCTUnwrap(value["runningPerplexity"]?.arrayValue).compactMap(\.doubleValue),
                      perplexity: try XCTUnwrap(value["perplexity"]?.doubleValue),
                      standardError: try XCTUnwrap(value["standardError"]?.doubleValue))
    }

    private func smolLM2() throws -> LoadedCheckpoint {
        guard let path = SampleModels.smolLM2GGUF else { throw XCTSkip("SmolLM2 GGUF not in \(SampleModels.cacheDirectory)") }
        return try CheckpointLoader.load(path: path)
    }

    /// The GGUF and its HF safetensors twin (F32 tensors + config.json, as `model/save` writes
    /// it) decode to the same F32 matrices, so their logits must agree (issue 5: ≤ 1e-4).
    func testGGUFAndSafetensorsTwinGiveTheSameLogits() throws {
        let gguf = try smolLM2()
        let directory = makeTemporaryDirectory("llama-twin")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let f32 = try gguf.tensors.map { tensor in
            Tensor(name: tensor.name, shape: tensor.shape, float32: try tensor.float32Values())
        }
        try SafetensorsWriter.write(tensors: f32, to: directory + "/model.safetensors", overwrite: false)
        let config = try XCTUnwrap(gguf.config)
        try Data(try JSON.serialize(config.jsonObject())).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let twin = try CheckpointLoader.load(path: directory)
        XCTAssertEqual(twin.format, .safetensors)
        XCTAssertEqual(try LlamaConfiguration(XCTUnwrap(twin.config)), try LlamaConfiguration(config))

        let tokens = Array(try golden().tokens.prefix(48))
        let fromGGUF = try LlamaModel(checkpoint: gguf).logits(tokens: tokens)
        let fromTwin = try LlamaModel(checkpoint: twin).logits(tokens: tokens)
        XCTAssertEqual(fromGGUF.shape, [48, 49152])
        XCTAssertLessThanOrEqual(fromGGUF.maxAbsDifference(fromTwin), 1e-4)
    }

    /// `.secondHalf` perplexity on llama.cpp's own token ids equals what llama-perplexity printed
    /// for the F32 rewrite of the same model (the Q4_1 file decodes to exactly those F32 values).
    /// Two chunks by default (debug builds are slow); all of them with LOQUAT_FULL_PERPLEXITY=1.
    func testSecondHalfPerplexityMatchesLlamaCpp() throws {
        let model = try LlamaModel(checkpoint: smolLM2())
        let golden = try golden()
        let full = ProcessInfo.processInfo.environment["LOQUAT_FULL_PERPLEXITY"] == "1"
        let chunks = full ? golden.runningPerplexity.count : 2
        var running: [Double] = []
        // SmolLM2's vocabulary does not add BOS (llama-tokenize's ids start with the text), so
        // llama.cpp overwrites nothing: beginningOfSequence nil.
        let result = try Perplexity.evaluate(model: model, tokens: golden.tokens, contextLength: golden.contextLength,
                                             scoring: .secondHalf, maxChunks: chunks) { running.append($0.perplexity) }
        XCTAssertEqual(result.chunkCount, chunks)
        XCTAssertEqual(result.scoredTokenCount, chunks * (golden.contextLength / 2 - 1))
        for (ours, theirs) in zip(running, golden.runningPerplexity) {
            // llama.cpp prints 4 decimals; the target is 0.05 % relative.
            XCTAssertEqual(ours, theirs, accuracy: theirs * 5e-4)
        }
        if full {
            XCTAssertEqual(result.perplexity, golden.perplexity, accuracy: golden.perplexity * 5e-4)
            XCTAssertEqual(result.standardError, golden.standardError, accuracy: golden.standardError * 5e-3)
        }
    }

    /// `.all` perplexity (HF convention) on the safetensors-equivalent weights equals
    /// transformers' on the twin, token by token (golden from
    /// Tests/Generators/llama_transformers_golden.py). The first window by default; all seven
    /// (the 0.05 % on the whole text) with LOQUAT_FULL_PERPLEXITY=1.
    func testAllPerplexityMatchesTransformers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/public-domain.transformers.json"))
        let value = try JSON.parse([UInt8](data))
        let losses = try XCTUnwrap(value["negativeLogLikelihoods"]?.arrayValue).compactMap(\.doubleValue)
        let expectedPerplexity = try XCTUnwrap(value["perplexity"]?.doubleValue)
        let expectedError = try XCTUnwrap(value["standardError"]?.doubleValue)
        let contextLength = try XCTUnwrap(value["contextLength"]?.intValue)
        let tokens = try golden().tokens
        XCTAssertEqual(losses.count, tokens.count - (tokens.count + contextLength - 1) / contextLength)

        let model = try LlamaModel(checkpoint: smolLM2())
        let full = ProcessInfo.processInfo.environment["LOQUAT_FULL_PERPLEXITY"] == "1"
        let result = try Perplexity.evaluate(model: model, tokens: tokens, contextLength: contextLength, scoring: .all,
                                             maxChunks: full ? nil : 1)
        if full {
            XCTAssertEqual(result.scoredTokenCount, losses.count)
            XCTAssertEqual(result.perplexity, expectedPerplexity, accuracy: expectedPerplexity * 5e-4)
            XCTAssertEqual(result.standardError, expectedError, accuracy: expectedError * 5e-3)
        } else {
            let first = Array(losses.prefix(contextLength - 1))
            let (perplexity, error) = Perplexity.statistics(sum: first.reduce(0, +),
                                                            squaredSum: first.reduce(0) { $0 + $1 * $1 }, count: first.count)
            XCTAssertEqual(result.scoredTokenCount, contextLength - 1)
            XCTAssertEqual(result.perplexity, perplexity, accuracy: perplexity * 5e-4)
            XCTAssertEqual(result.standardError, error, accuracy: error * 5e-3)
        }
    }
}
