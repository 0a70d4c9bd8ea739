import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// HF ↔ GGUF names and the Q/K row permutation (formats.md §2.9).
final class GGUFLlamaNamesTests: XCTestCase {
    func testNameMappingRoundTrip() {
        let pairs: [(String, String)] = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
            ("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"),
            ("model.layers.7.self_attn.q_proj.weight", "blk.7.attn_q.weight"),
            ("model.layers.7.self_attn.q_proj.bias", "blk.7.attn_q.bias"),
            ("model.layers.12.self_attn.k_proj.weight", "blk.12.attn_k.weight"),
            ("model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"),
            ("model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"),
            ("model.layers.29.post_attention_layernorm.weight", "blk.29.ffn_norm.weight"),
            ("model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight"),
            ("model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight"),
            ("model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"),
        ]
        for (hf, gguf) in pairs {
            XCTAssertEqual(LlamaTensorNames.ggufName(forHuggingFace: hf), gguf)
            XCTAssertEqual(LlamaTensorNames.huggingFaceName(forGGUF: gguf), hf)
            XCTAssertTrue(LlamaTensorNames.isGGUFName(gguf))
        }
        for bad in ["model.layers.01.mlp.up_proj.weight", "model.layers.x.mlp.up_proj.weight",
                    "model.layers.1.mlp.up_proj", "model.layers.1.mlp.other.weight", "encoder.weight",
                    "model.layers.-1.mlp.up_proj.weight"] {
            XCTAssertNil(LlamaTensorNames.ggufName(forHuggingFace: bad), bad)
        }
        XCTAssertNil(LlamaTensorNames.huggingFaceName(forGGUF: "rope_freqs.weight"))
        XCTAssertTrue(LlamaTensorNames.isGGUFName("rope_freqs.weight"))
        XCTAssertTrue(LlamaTensorNames.isDroppedHuggingFaceName("model.layers.0.self_attn.rotary_emb.inv_freq"))
        XCTAssertEqual(LlamaTensorNames.permutedProjection(forGGUF: "blk.2.attn_q.weight"), .query)
        XCTAssertEqual(LlamaTensorNames.permutedProjection(forGGUF: "blk.2.attn_k.bias"), .key)
        XCTAssertNil(LlamaTensorNames.permutedProjection(forGGUF: "blk.2.attn_v.weight"))
    }

    func testPermutationRowFormula() {
        // Within each head of hd rows: GGUF row 2j + h = HF row h·(hd/2) + j.
        let headRowCount = 8
        for head in 0..<3 {
            for j in 0..<(headRowCount / 2) {
                for h in 0..<2 {
                    let ggufRow = head * headRowCount + 2 * j + h
                    XCTAssertEqual(LlamaTensorNames.huggingFaceRow(forGGUFRow: ggufRow, headRowCount: headRowCount),
                                   head * headRowCount + h * (headRowCount / 2) + j)
                }
            }
        }
    }

    func testPermutationOnFloatRowsMatchesTheFormulaAndRoundTrips() throws {
        let headCount = 3, headRowCount = 6, columnCount = 5
        let rowCount = headCount * headRowCount
        // Row r holds r·100 + column, so each output row says where it came from.
        let values = (0..<rowCount).flatMap { r in (0..<columnCount).map { Float(r * 100 + $0) } }
        let hf = Tensor(name: "q", shape: [rowCount, columnCount], float32: values)
        let gguf = try LlamaTensorNames.permuteRows(of: hf, headCount: headCount, direction: .huggingFaceToGGUF)
        let permuted = try gguf.decodedFloat32()
        for ggufRow in 0..<rowCount {
            let source = LlamaTensorNames.huggingFaceRow(forGGUFRow: ggufRow, headRowCount: headRowCount)
            XCTAssertEqual(Array(permuted[(ggufRow * columnCount)..<((ggufRow + 1) * columnCount)]),
                           (0..<columnCount).map { Float(source * 100 + $0) })
        }
        // Head 0: GGUF rows 0,1,2,3,4,5 come from HF rows 0,3,1,4,2,5.
        XCTAssertEqual((0..<6).map { Int(permuted[$0 * columnCount]) / 100 }, [0, 3, 1, 4, 2, 5])
        let back = try LlamaTensorNames.permuteRows(of: gguf, headCount: headCount, direction: .ggufToHuggingFace)
        XCTAssertEqual(try back.decodedFloat32(), values)
    }

    func testPermutationMovesWholeQuantizedRows() throws {
        // 4 heads of 4 rows, each row two Q4_0 blocks (36 bytes): rows move as opaque bytes.
        let rowCount = 16, rowByteCount = 36
        let bytes = GGUFTestSupport.randomBytes(rowCount * rowByteCount, seed: 3)
        let tensor = try Tensor(name: "k", dtype: .q4_0, shape: [rowCount, 64], storage: TensorStorage.bytes(bytes))
        let permuted = try LlamaTensorNames.permuteRows(of: tensor, headCount: 4, direction: .huggingFaceToGGUF)
        XCTAssertNotEqual(Array(permuted.storage.bytes), bytes)
        let back = try LlamaTensorNames.permuteRows(of: permuted, headCount: 4, direction: .ggufToHuggingFace)
        XCTAssertEqual(Array(back.storage.bytes), bytes)
        // Decoding then permuting equals permuting then decoding.
        let decodedThenPermuted = try LlamaTensorNames.permuteRows(
            of: Tensor(name: "k", shape: [rowCount, 64], float32: try GGMLBlockCodec.decode(tensor)),
            headCount: 4, direction: .huggingFaceToGGUF)
        XCTAssertEqual(GGUFTestSupport.bits(try GGMLBlockCodec.decode(permuted)),
                       GGUFTestSupport.bits(try decodedThenPermuted.decodedFloat32()))
        // A bias permutes single elements.
        let bias = Tensor(name: "b", shape: [4], float32: [0, 1, 2, 3])
        XCTAssertEqual(try LlamaTensorNames.permuteRows(of: bias, headCount: 1, direction: .huggingFaceToGGUF).decodedFloat32(),
                       [0, 2, 1, 3])
    }

    func testPermutationRejectsOddHeads() {
        let tensor = Tensor(name: "q", shape: [6, 2], float32: [Float](repeating: 0, count: 12))
        XCTAssertThrowsError(try LlamaTensorNames.permuteRows(of: tensor, headCount: 2, direction: .huggingFaceToGGUF))
        XCTAssertThrowsError(try LlamaTensorNames.permuteRows(of: tensor, headCount: 4, direction: .huggingFaceToGGUF))
    }
}
