import Foundation
import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// GGUFWriter → GGUFFile round trips on a tiny llama model built in code.
final class GGUFWriterTests: XCTestCase {
    static let hyperparameters = LlamaHyperparameters(
        vocabularySize: 64, contextLength: 256, embeddingLength: 64, blockCount: 2, feedForwardLength: 48,
        headCount: 4, headCountKV: 2, rmsNormEpsilon: 1e-5, ropeFrequencyBase: 100_000)

    /// HF tensors: F32 weights, a BF16 `lm_head`, `down_proj` rows of 48 (not whole 32-blocks),
    /// and a `rotary_emb.inv_freq` the writer must drop.
    static func huggingFaceModel(tied: Bool = false) throws -> [Tensor] {
        var seed: UInt64 = 100
        func weight(_ name: String, _ shape: [Int]) -> Tensor {
            seed += 1
            return Tensor(name: name, shape: shape, float32: GGUFTestSupport.randomFloats(shape.reduce(1, *), seed: seed))
        }
        var tensors = [weight("model.embed_tokens.weight", [64, 64]), weight("model.norm.weight", [64])]
        for layer in 0..<2 {
            let p = "model.layers.\(layer)."
            tensors += [
                weight(p + "input_layernorm.weight", [64]), weight(p + "self_attn.q_proj.weight", [64, 64]),
                weight(p + "self_attn.k_proj.weight", [32, 64]), weight(p + "self_attn.v_proj.weight", [32, 64]),
                weight(p + "self_attn.o_proj.weight", [64, 64]), weight(p + "post_attention_layernorm.weight", [64]),
                weight(p + "mlp.gate_proj.weight", [48, 64]), weight(p + "mlp.up_proj.weight", [48, 64]),
                weight(p + "mlp.down_proj.weight", [64, 48]),
            ]
        }
        tensors.append(weight("model.layers.0.self_attn.rotary_emb.inv_freq", [8]))
        if !tied {
            let head = weight("lm_head.weight", [64, 64])
            let bf16 = try head.decodedFloat32().withUnsafeBufferPointer { try Tensor.encode($0, as: .bf16) }
            tensors.append(try Tensor(name: head.name, dtype: .bf16, shape: head.shape, storage: TensorStorage.bytes(bf16)))
        }
        return tensors
    }

    private func write(_ writer: GGUFWriter, tied: Bool = false) throws -> (GGUFFile, [Tensor]) {
        let tensors = try Self.huggingFaceModel(tied: tied)
        let path = try GGUFTestSupport.scratchDirectory() + "/model.gguf"
        try writer.write(huggingFaceTensors: tensors, to: path, overwrite: false)
        return (try GGUFFile(path: path), tensors)
    }

    func testF32RoundTripIsLosslessAndUnpermutes() throws {
        let (file, original) = try write(GGUFWriter(hyperparameters: Self.hyperparameters, weightType: .f32))
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(try file.llamaHyperparameters(), Self.hyperparameters)
        XCTAssertEqual(file.tensorNames.first, "token_embd.weight")
        XCTAssertEqual(Array(file.tensorNames.suffix(2)), ["output_norm.weight", "output.weight"])
        XCTAssertEqual(Array(file.tensorNames[2...4]), ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"])
        XCTAssertEqual(file.tensorInfo(named: "blk.0.attn_k.weight")?.ne, [64, 32])
        XCTAssertTrue(file.tensorInfos.allSatisfy { $0.dtype == .f32 })

        let back = try file.huggingFaceTensors()
        let expected = original.filter { !$0.name.hasSuffix("inv_freq") }
        XCTAssertEqual(Set(back.map(\.name)), Set(expected.map(\.name)))
        for tensor in expected {
            let read = try XCTUnwrap(back.first { $0.name == tensor.name })
            XCTAssertEqual(read.shape, tensor.shape, tensor.name)
            XCTAssertEqual(GGUFTestSupport.bits(try GGMLBlockCodec.decode(read)),
                           GGUFTestSupport.bits(try GGMLBlockCodec.decode(tensor)), tensor.name)
        }
        // In the file itself q is permuted: GGUF row 1 is HF row hd/2 = 8.
        let q = try GGMLBlockCodec.decode(try file.tensor(named: "blk.0.attn_q.weight"), rows: 1..<2)
        let hfQ = try GGMLBlockCodec.decode(try XCTUnwrap(original.first { $0.name == "model.layers.0.self_attn.q_proj.weight" }), rows: 8..<9)
        XCTAssertEqual(q, hfQ)
    }

    func testQ8_0LayoutMetadataAndData() throws {
        let writer = GGUFWriter(hyperparameters: Self.hyperparameters, weightType: .q8_0)
        let (file, original) = try write(writer)
        let types = Dictionary(uniqueKeysWithValues: file.tensorInfos.map { ($0.name, $0.dtype) })
        XCTAssertEqual(types["blk.0.attn_norm.weight"], .f32)
        XCTAssertEqual(types["blk.0.attn_q.weight"], .q8_0)
        XCTAssertEqual(types["blk.1.ffn_down.weight"], .f16, "rows of 48 fall back to F16")
        XCTAssertEqual(types["output.weight"], .q8_0)

        XCTAssertEqual(file.metadata.keys, [
            "general.architecture", "general.type", "llama.vocab_size", "llama.context_length",
            "llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.rope.dimension_count",
            "llama.attention.head_count", "llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon",
            "llama.rope.freq_base", "general.file_type", "general.quantization_version",
        ])
        XCTAssertEqual(file.metadata["general.architecture"], .string("llama"))
        XCTAssertEqual(file.metadata["general.file_type"], .uint32(7))
        XCTAssertEqual(file.metadata["general.quantization_version"], .uint32(2))
        XCTAssertEqual(file.metadata["llama.attention.head_count_kv"], .uint32(2))
        XCTAssertEqual(file.metadata["llama.rope.dimension_count"], .uint32(16))
        XCTAssertEqual(file.metadata["llama.attention.layer_norm_rms_epsilon"], .float32(1e-5))
        XCTAssertEqual(file.metadata["llama.rope.freq_base"], .float32(100_000))

        // Sequential, aligned offsets; every tensor padded, the last one too.
        var expectedOffset = 0
        for info in file.tensorInfos {
            XCTAssertEqual(info.dataByteOffset, expectedOffset, info.name)
            expectedOffset += (info.byteCount + 31) / 32 * 32
        }
        XCTAssertEqual(file.dataByteOffset % 32, 0)
        XCTAssertEqual(file.file.bytes.count, file.dataByteOffset + expectedOffset)

        // Quantizing rows commutes with permuting them, so the HF view of the file equals the
        // HF tensor quantized directly, bit for bit.
        let back = try file.huggingFaceTensors()
        for name in ["model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                     "model.layers.0.mlp.up_proj.weight"] {
            let source = try XCTUnwrap(original.first { $0.name == name })
            let direct = try GGMLBlockCodec.encode(try source.decodedFloat32(), rowCount: source.shape[0],
                                                   columnCount: source.shape[1], as: .q8_0)
            let read = try XCTUnwrap(back.first { $0.name == name })
            XCTAssertEqual(read.dtype, .q8_0)
            XCTAssertEqual(Array(read.storage.bytes), direct, name)
        }
    }

    func testExtraMetadataAlignmentAndTiedEmbeddings() throws {
        let tokens = (0..<64).map { "tok\($0)" }
        let extras = [
            GGUFKeyValue("general.name", .string("tiny")),
            GGUFKeyValue("general.file_type", .uint32(3)),
            GGUFKeyValue("llama.context_length", .uint32(9)),
            GGUFKeyValue("split.count", .uint16(2)),
            GGUFKeyValue("tokenizer.ggml.model", .string("gpt2")),
            GGUFKeyValue("tokenizer.ggml.tokens", .strings(tokens)),
            GGUFKeyValue("tokenizer.ggml.add_bos_token", .bool(false)),
        ]
        let writer = GGUFWriter(hyperparameters: Self.hyperparameters, weightType: .q4_0, extraMetadata: extras, alignment: 64)
        let (file, _) = try write(writer, tied: true)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.metadata["general.alignment"], .uint32(64))
        XCTAssertEqual(file.metadata["general.file_type"], .uint32(2))
        XCTAssertEqual(file.metadata["llama.context_length"], .uint32(256))
        XCTAssertNil(file.metadata["split.count"])
        XCTAssertEqual(Array(file.metadata.keys.suffix(4)),
                       ["general.name", "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.add_bos_token"])
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.stringArray, tokens)
        XCTAssertNil(file.tensorInfo(named: "output.weight"))
        XCTAssertEqual(file.tensorInfo(named: "token_embd.weight")?.dtype, .q4_0)
        for info in file.tensorInfos { XCTAssertEqual(info.dataByteOffset % 64, 0) }
    }

    func testOverwriteFlagAndDeterminism() throws {
        let writer = GGUFWriter(hyperparameters: Self.hyperparameters, weightType: .f16)
        let tensors = try Self.huggingFaceModel()
        let directory = try GGUFTestSupport.scratchDirectory()
        let first = directory + "/a.gguf", second = directory + "/b.gguf"
        try writer.write(huggingFaceTensors: tensors, to: first, overwrite: false)
        try writer.write(huggingFaceTensors: tensors.reversed(), to: second, overwrite: false)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: first)), try Data(contentsOf: URL(fileURLWithPath: second)))
        XCTAssertThrowsError(try writer.write(huggingFaceTensors: tensors, to: first, overwrite: false)) {
            guard case .writeFailed? = ($0 as? GGUFError)?.kind else { return XCTFail("\($0)") }
        }
        try writer.write(huggingFaceTensors: tensors, to: first, overwrite: true)
        XCTAssertEqual(try GGUFFile(path: first).metadata["general.file_type"], .uint32(1))
        XCTAssertEqual(FileSystem.contents(of: directory), ["a.gguf", "b.gguf"], "no temporary files left behind")
    }

    func testWriterRejectsWhatLlamaCppWouldNotLoad() throws {
        let path = try GGUFTestSupport.scratchDirectory() + "/bad.gguf"
        let writer = GGUFWriter(hyperparameters: Self.hyperparameters, weightType: .f32)
        let stray = Tensor(name: "model.vision.weight", shape: [2], float32: [1, 2])
        XCTAssertThrowsError(try writer.write(huggingFaceTensors: [stray], to: path, overwrite: false)) {
            XCTAssertEqual(($0 as? GGUFError)?.kind, .cannotWrite(tensor: "model.vision.weight", detail: "not a llama tensor name"))
        }
        let long = Tensor(name: String(repeating: "x", count: 64), shape: [2], float32: [1, 2])
        XCTAssertThrowsError(try writer.write(ggufTensors: [long], to: path, overwrite: false)) {
            XCTAssertEqual(($0 as? GGUFError)?.kind, .tensorNameTooLong(long.name))
        }
        // IQ4_NL has a decoder but no encoder, so it is not a weight type the writer takes.
        let unencodable = GGUFWriter(hyperparameters: Self.hyperparameters, weightType: .iq4_nl)
        XCTAssertThrowsError(try unencodable.write(huggingFaceTensors: [], to: path, overwrite: false))
        let twice = [Tensor(name: "model.norm.weight", shape: [2], float32: [1, 2]),
                     Tensor(name: "output_norm.weight", shape: [2], float32: [1, 2])]
        XCTAssertThrowsError(try writer.write(huggingFaceTensors: twice, to: path, overwrite: false)) {
            XCTAssertEqual(($0 as? GGUFError)?.kind, .duplicateTensorName("output_norm.weight"))
        }
        XCTAssertEqual(FileSystem.kind(of: path), .missing)
    }
}
