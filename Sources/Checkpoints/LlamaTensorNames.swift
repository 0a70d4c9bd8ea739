import LoquatSupport
import Tensors

/// Hugging Face ↔ GGUF tensor names for the `llama` architecture, and the Q/K row permutation
/// (formats.md §2.9; llama.cpp `gguf-py/gguf/tensor_mapping.py`, the `LlamaModel` converter's
/// `permute`, transformers' `reverse_permute_weights`).
///
/// HF Llama applies RoPE to pairs `(i, i + hd/2)` of each head; llama.cpp's `llama` rotates
/// adjacent pairs `(2i, 2i+1)`. The converter therefore reorders the output rows of `q_proj`
/// (per `n_head`) and `k_proj` (per `n_head_kv`): within each head of `hd` rows,
/// **GGUF row `2j + h` = HF row `h·(hd/2) + j`** (`h ∈ {0, 1}`, `j < hd/2`). Columns are
/// untouched, and each row moves whole, so the permutation works on quantized rows too.
public enum LlamaTensorNames {
    /// Which projection's rows are permuted, and with which head count.
    public enum PermutedProjection: Sendable, Equatable {
        case query, key
    }

    /// Whole-model tensors: HF module → GGUF stem.
    static let globalNames: [(huggingFace: String, gguf: String)] = [
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
    ]

    /// Per-layer tensors: HF module under `model.layers.N.` → GGUF stem under `blk.N.`.
    static let layerNames: [(huggingFace: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ]

    /// GGUF tensors with no HF counterpart that llama.cpp still accepts
    /// (`rope_freqs.weight`: Llama-3 RoPE frequency divisors, derived from config.json).
    public static let ggufOnlyNames: Set<String> = ["rope_freqs.weight"]

    /// HF tensors the converter drops (recomputed at load time).
    public static func isDroppedHuggingFaceName(_ name: String) -> Bool {
        name.hasSuffix("rotary_emb.inv_freq")
    }

    /// The GGUF name of an HF tensor (`model.layers.3.mlp.up_proj.weight` → `blk.3.ffn_up.weight`),
    /// nil when the name is not a llama tensor.
    public static func ggufName(forHuggingFace name: String) -> String? {
        guard let (stem, suffix) = splitSuffix(name) else { return nil }
        if let entry = globalNames.first(where: { $0.huggingFace == stem }) { return entry.gguf + suffix }
        guard let (layer, module) = splitLayer(stem, prefix: "model.layers."),
              let entry = layerNames.first(where: { $0.huggingFace == module }) else { return nil }
        return "blk.\(layer).\(entry.gguf)\(suffix)"
    }

    /// The HF name of a GGUF tensor (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`),
    /// nil when the name is not a llama tensor with an HF counterpart.
    public static func huggingFaceName(forGGUF name: String) -> String? {
        guard let (stem, suffix) = splitSuffix(name) else { return nil }
        if let entry = globalNames.first(where: { $0.gguf == stem }) { return entry.huggingFace + suffix }
        guard let (layer, module) = splitLayer(stem, prefix: "blk."),
              let entry = layerNames.first(where: { $0.gguf == module }) else { return nil }
        return "model.layers.\(layer).\(entry.huggingFace)\(suffix)"
    }

    /// Whether `name` is a GGUF llama tensor name (mapped or GGUF-only).
    public static func isGGUFName(_ name: String) -> Bool {
        ggufOnlyNames.contains(name) || huggingFaceName(forGGUF: name) != nil
    }

    /// `.query` for `blk.N.attn_q.*`, `.key` for `blk.N.attn_k.*`, nil otherwise.
    public static func permutedProjection(forGGUF name: String) -> PermutedProjection? {
        guard let (stem, _) = splitSuffix(name), let (_, module) = splitLayer(stem, prefix: "blk.") else { return nil }
        switch module {
        case "attn_q": return .query
        case "attn_k": return .key
        default: return nil
        }
    }

    /// Splits `.weight` / `.bias` off a name.
    private static func splitSuffix(_ name: String) -> (String, String)? {
        for suffix in [".weight", ".bias"] where name.hasSuffix(suffix) {
            return (String(name.dropLast(suffix.count)), suffix)
        }
        return nil
    }

    /// `prefix` + decimal layer + `.` + module → (layer, module); the layer has no sign or
    /// leading zeros, so the mapping is one-to-one.
    private static func splitLayer(_ stem: String, prefix: String) -> (Int, String)? {
        guard stem.hasPrefix(prefix) else { return nil }
        let rest = stem.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        let digits = rest[..<dot]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              digits == "0" || !digits.hasPrefix("0"), let layer = Int(digits) else { return nil }
        return (layer, String(rest[rest.index(after: dot)...]))
    }
}

// MARK: - Row permutation

extension LlamaTensorNames {
    public enum PermutationDirection: Sendable {
        /// HF → GGUF (the converter's `permute`).
        case huggingFaceToGGUF
        /// GGUF → HF (transformers' `reverse_permute_weights`).
        case ggufToHuggingFace
    }

    /// The HF row that lands at GGUF row `ggufRow` for heads of `headRowCount` rows.
    @inlinable
    public static func huggingFaceRow(forGGUFRow ggufRow: Int, headRowCount: Int) -> Int {
        let head = ggufRow / headRowCount, local = ggufRow % headRowCount
        let j = local / 2, h = local % 2
        return head * headRowCount + h * (headRowCount / 2) + j
    }

    /// Moves whole rows of `rowByteCount` bytes between the two orders. `rowCount` must be
    /// `headCount · hd` with `hd` even.
    public static func permuteRows(_ bytes: UnsafeRawBufferPointer, rowCount: Int, rowByteCount: Int,
                                   headCount: Int, direction: PermutationDirection) throws -> [UInt8] {
        guard headCount > 0, rowCount % headCount == 0, (rowCount / headCount) % 2 == 0,
              bytes.count == rowCount * rowByteCount else {
            throw TensorError.shapeMismatch(name: "rows of \(headCount) heads", expected: [headCount, 2],
                                            actual: [rowCount, bytes.count])
        }
        let headRowCount = rowCount / headCount
        var output = [UInt8](repeating: 0, count: bytes.count)
        guard rowByteCount > 0 else { return output }
        output.withUnsafeMutableBytes { target in
            for ggufRow in 0..<rowCount {
                let hfRow = huggingFaceRow(forGGUFRow: ggufRow, headRowCount: headRowCount)
                let (from, to) = direction == .huggingFaceToGGUF ? (hfRow, ggufRow) : (ggufRow, hfRow)
                (target.baseAddress! + to * rowByteCount)
                    .copyMemory(from: bytes.baseAddress! + from * rowByteCount, byteCount: rowByteCount)
            }
        }
        return output
    }

    /// `tensor` with its outermost-axis rows (torch dim 0, the output features) permuted; any
    /// dtype, any rank ≥ 1 (a bias permutes single elements). The result owns its bytes.
    public static func permuteRows(of tensor: Tensor, headCount: Int, direction: PermutationDirection) throws -> Tensor {
        guard let rowCount = tensor.shape.first, rowCount > 0, tensor.byteCount % rowCount == 0,
              !(tensor.dtype.isBlockQuantized && tensor.shape.count < 2) else {
            throw TensorError.notAMatrix(name: tensor.name, shape: tensor.shape)
        }
        let permuted = try permuteRows(tensor.storage.bytes, rowCount: rowCount, rowByteCount: tensor.byteCount / rowCount,
                                       headCount: headCount, direction: direction)
        return try Tensor(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, storage: .bytes(permuted))
    }
}
