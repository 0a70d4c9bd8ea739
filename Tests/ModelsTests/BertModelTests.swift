import XCTest
import Foundation
import Tensors
import Checkpoints
import JSON
import Quantization
import TestSupport
@testable import Models

/// A small random BERT built in code, as a LoadedCheckpoint (HF tensor names).
enum TinyBert {
    static func config(layers: Int = 2, hidden: Int = 32, heads: Int = 4, intermediate: Int = 64,
                       vocabulary: Int = 40, positions: Int = 64) -> ModelConfig {
        ModelConfig(architecture: .bert, modelType: "bert", hiddenSize: hidden, intermediateSize: intermediate,
                    hiddenLayerCount: layers, attentionHeadCount: heads, vocabularySize: vocabulary,
                    maxPositionEmbeddings: positions, normEpsilon: 1e-12, hiddenActivation: "gelu", typeVocabularySize: 2)
    }

    static func checkpoint(_ config: ModelConfig, seed: UInt64 = 11) -> LoadedCheckpoint {
        var tensors: [Tensor] = []
        var next = seed
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            next &+= 1
            let m: Matrix<Float> = RandomMatrices.uniform(1, shape.reduce(1, *), seed: next)
            tensors.append(Tensor(name: name, shape: shape, float32: m.values.map { $0 * scale + offset }))
        }
        let (h, inter) = (config.hiddenSize, config.intermediateSize)
        add("embeddings.word_embeddings.weight", [config.vocabularySize, h], scale: 1)
        add("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, h], scale: 0.5)
        add("embeddings.token_type_embeddings.weight", [2, h], scale: 0.5)
        add("embeddings.LayerNorm.weight", [h], scale: 0.2, offset: 1)
        add("embeddings.LayerNorm.bias", [h], scale: 0.1)
        for layer in 0..<config.hiddenLayerCount {
            let p = "encoder.layer.\(layer)."
            for name in ["query", "key", "value"] {
                add(p + "attention.self.\(name).weight", [h, h], scale: 0.4)
                add(p + "attention.self.\(name).bias", [h], scale: 0.1)
            }
            add(p + "attention.output.dense.weight", [h, h], scale: 0.3)
            add(p + "attention.output.dense.bias", [h], scale: 0.1)
            add(p + "attention.output.LayerNorm.weight", [h], scale: 0.2, offset: 1)
            add(p + "attention.output.LayerNorm.bias", [h], scale: 0.1)
            add(p + "intermediate.dense.weight", [inter, h], scale: 0.4)
            add(p + "intermediate.dense.bias", [inter], scale: 0.1)
            add(p + "output.dense.weight", [h, inter], scale: 0.3)
            add(p + "output.dense.bias", [h], scale: 0.1)
            add(p + "output.LayerNorm.weight", [h], scale: 0.2, offset: 1)
            add(p + "output.LayerNorm.bias", [h], scale: 0.1)
        }
        add("pooler.dense.weight", [h, h], scale: 0.1)
        add("pooler.dense.bias", [h], scale: 0.1)
        return LoadedCheckpoint(format: .safetensors, path: "tiny-bert", sourceFiles: [], architecture: "bert",
                                tensors: tensors, config: config)
    }
}

/// A plain scalar BERT forward in Float64, straight from formats.md §6.4, reading the weights by
/// HF name. `capture(name, x)` sees each linear input under its HF weight name.
enum BertScalarReference {
    static func hiddenStates(_ checkpoint: LoadedCheckpoint, tokens: [Int],
                             capture: (String, [[Double]]) -> Void = { _, _ in }) throws -> [[Double]] {
        let c = checkpoint.config!
        let (h, heads) = (c.hiddenSize, c.attentionHeadCount)
        let hd = h / heads
        func values(_ name: String) throws -> [Double] { try checkpoint.tensor(named: name)!.float32Values().map(Double.init) }
        func linear(_ x: [[Double]], _ name: String) throws -> [[Double]] {
            let w = try values(name + ".weight"), b = try values(name + ".bias")
            let inputs = x[0].count, outputs = b.count
            return x.map { row in (0..<outputs).map { o in (0..<inputs).reduce(b[o]) { $0 + w[o * inputs + $1] * row[$1] } } }
        }
        func layerNorm(_ x: [[Double]], _ name: String) throws -> [[Double]] {
            let w = try values(name + ".weight"), b = try values(name + ".bias")
            return x.map { row in
                let mean = row.reduce(0, +) / Double(row.count)
                let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(row.count)
                return row.indices.map { (row[$0] - mean) / (variance + c.normEpsilon).squareRoot() * w[$0] + b[$0] }
            }
        }
        let words = try values("embeddings.word_embeddings.weight"), positions = try values("embeddings.position_embeddings.weight")
        let types = try values("embeddings.token_type_embeddings.weight")
        var x = try layerNorm(tokens.enumerated().map { t, id in (0..<h).map { words[id * h + $0] + positions[t * h + $0] + types[$0] } },
                              "embeddings.LayerNorm")
        for layer in 0..<c.hiddenLayerCount {
            let p = "encoder.layer.\(layer)."
            for name in ["query", "key", "value"] { capture(p + "attention.self.\(name).weight", x) }
            let q = try linear(x, p + "attention.self.query"), k = try linear(x, p + "attention.self.key")
            let v = try linear(x, p + "attention.self.value")
            var context = [[Double]](repeating: [Double](repeating: 0, count: h), count: tokens.count)
            for head in 0..<heads {
                let columns = (head * hd)..<((head + 1) * hd)
                for t in tokens.indices {
                    let scores = tokens.indices.map { u in columns.reduce(0) { $0 + q[t][$1] * k[u][$1] } / Double(hd).squareRoot() }
                    let maximum = scores.max()!
                    let e = scores.map { Foundation.exp($0 - maximum) }
                    let total = e.reduce(0, +)
                    for j in columns { context[t][j] = tokens.indices.reduce(0) { $0 + e[$1] / total * v[$1][j] } }
                }
            }
            capture(p + "attention.output.dense.weight", context)
            let attended = try linear(context, p + "attention.output.dense")
            let a = try layerNorm(zip(x, attended).map { zip($0, $1).map(+) }, p + "attention.output.LayerNorm")
            capture(p + "intermediate.dense.weight", a)
            let f = try linear(a, p + "intermediate.dense").map { $0.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) } }
            capture(p + "output.dense.weight", f)
            let o = try linear(f, p + "output.dense")
            x = try layerNorm(zip(a, o).map { zip($0, $1).map(+) }, p + "output.LayerNorm")
        }
        return x
    }
}

final class BertModelTests: XCTestCase {
    func testBatchedForwardMatchesScalarReference() throws {
        let checkpoint = TinyBert.checkpoint(TinyBert.config())
        let model = try BertModel(checkpoint: checkpoint)
        let tokens = TinyLlama.tokens(37, vocabulary: 40)
        let hidden = try model.hiddenStates(tokens: tokens)
        let reference = try BertScalarReference.hiddenStates(checkpoint, tokens: tokens)
        XCTAssertEqual(hidden.rowCount, 37)
        XCTAssertEqual(hidden.columnCount, 32)
        var worst = 0.0
        for t in 0..<37 { for j in 0..<32 { worst = max(worst, abs(Double(hidden.values[t * 32 + j]) - reference[t][j])) } }
        XCTAssertLessThan(worst, 1e-4, "max |batched − scalar| over [T, hidden]")

        // Mean pooling + L2 normalisation.
        let embedding = try model.sentenceEmbedding(tokens: tokens)
        let mean = (0..<32).map { j in reference.reduce(0) { $0 + $1[j] } / 37 }
        let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for j in 0..<32 { XCTAssertEqual(Double(embedding[j]), mean[j] / norm, accuracy: 1e-5) }
    }

    func testRefusesOtherArchitecturesAndBadTokens() throws {
        XCTAssertThrowsError(try BertModel(checkpoint: TinyLlama.checkpoint(TinyLlama.config()))) { error in
            XCTAssertEqual(error as? LlamaModelError, .unsupportedArchitecture(modelType: "llama"))
        }
        let model = try BertModel(checkpoint: TinyBert.checkpoint(TinyBert.config()))
        XCTAssertThrowsError(try model.hiddenStates(tokens: []))
        XCTAssertThrowsError(try model.hiddenStates(tokens: [40]))
        XCTAssertThrowsError(try model.hiddenStates(tokens: Array(repeating: 1, count: 65)), "more tokens than positions")
    }

    func testCalibrationWindowsWrapChunksInClassAndSeparator() {
        let windows = BertCalibration.windows(tokens: Array(10..<17), contextLength: 5, classToken: 1, separatorToken: 2)
        XCTAssertEqual(windows, [[1, 10, 11, 12, 2], [1, 13, 14, 15, 2], [1, 16, 2]])
    }

    func testCalibrationGramsEqualCapturedReferenceActivations() throws {
        let checkpoint = TinyBert.checkpoint(TinyBert.config())
        let model = try BertModel(checkpoint: checkpoint)
        let windows = BertCalibration.windows(tokens: TinyLlama.tokens(50, vocabulary: 38, seed: 5).map { $0 + 2 },
                                              contextLength: 30, classToken: 0, separatorToken: 1)
        XCTAssertEqual(windows.map(\.count), [30, 24])
        var reported: [Int] = []
        let statistics = try BertCalibration.collect(model: model, windows: windows) { done, _ in reported.append(done) }
        XCTAssertEqual(reported, [1, 2])
        XCTAssertEqual(statistics.count, 12, "6 linear weights × 2 layers")
        var captured: [String: [[Double]]] = [:]
        for window in windows {
            _ = try BertScalarReference.hiddenStates(checkpoint, tokens: window) { name, x in captured[name, default: []] += x }
        }
        XCTAssertEqual(Set(captured.keys), Set(statistics.keys))
        for (name, rows) in captured {
            let s = try XCTUnwrap(statistics[name])
            XCTAssertEqual(s.tokenCount, 54)
            let width = rows[0].count
            XCTAssertEqual(s.gram.rowCount, width, name)
            var worst = 0.0, scale = 0.0
            for i in 0..<width {
                for j in 0..<width {
                    let expected = rows.reduce(0) { $0 + $1[i] * $1[j] }
                    worst = max(worst, abs(s.gram[i, j] - expected)); scale = max(scale, abs(expected))
                }
                let meanAbsolute = rows.reduce(0) { $0 + abs($1[i]) } / 54
                let rms = (rows.reduce(0) { $0 + $1[i] * $1[i] } / 54).squareRoot()
                XCTAssertEqual(s.meanAbsolute[i], meanAbsolute, accuracy: 1e-4 * max(1, meanAbsolute), name)
                XCTAssertEqual(s.rootMeanSquare[i], rms, accuracy: 1e-4 * max(1, rms), name)
            }
            XCTAssertLessThan(worst, 1e-4 * max(1, scale), "\(name): Gram vs XᵀX of the reference's captured inputs")
        }
        XCTAssertEqual(statistics["encoder.layer.1.attention.self.query.weight"]?.gram,
                       statistics["encoder.layer.1.attention.self.value.weight"]?.gram, "q/k/v share one input")
    }

    /// all-MiniLM-L6-v2 sentence embeddings against sentence-transformers (fixture written by
    /// Tests/Generators/bert_sentence_golden.py; see README-bert.md).
    func testMiniLMSentenceEmbeddingsMatchSentenceTransformers() throws {
        guard let directory = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM sample model not fetched") }
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/bert/minilm-sentences.json")
        let golden = try JSON.parse(Array(Data(contentsOf: fixture)))
        let sentences = try XCTUnwrap(golden["sentences"]?.arrayValue)
        XCTAssertEqual(sentences.count, 20)
        let checkpoint = try CheckpointLoader.load(path: directory)
        let model = try BertModel(checkpoint: checkpoint)
        XCTAssertEqual(model.layers.count, 6)
        XCTAssertEqual(model.hiddenSize, 384)
        let tokenizer = try TokenizerLoader.load(for: checkpoint)
        var lowest = 1.0
        for sentence in sentences {
            let text = try XCTUnwrap(sentence["text"]?.stringValue)
            let expectedIDs = try XCTUnwrap(sentence["ids"]?.arrayValue).compactMap(\.intValue)
            let ids = tokenizer.encode(text, addSpecialTokens: true).map(Int.init)
            XCTAssertEqual(ids, expectedIDs, text)
            let expected = try XCTUnwrap(sentence["embedding"]?.arrayValue).compactMap(\.doubleValue)
            let embedding = try model.sentenceEmbedding(tokens: expectedIDs)
            XCTAssertEqual(embedding.count, expected.count)
            let dot = zip(embedding, expected).reduce(0) { $0 + Double($1.0) * $1.1 }
            let norm = expected.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let cosine = dot / norm   // ours is unit length
            lowest = min(lowest, cosine)
            XCTAssertGreaterThanOrEqual(cosine, 0.9999, text)
        }
        print("MiniLM vs sentence-transformers: lowest cosine over \(sentences.count) sentences = \(lowest)")
    }
}
