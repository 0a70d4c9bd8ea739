import LoquatSupport
import Tensors

/// llama.cpp LoRA adapter GGUFs (formats.md §2.10; what `llama_adapter_lora_init` accepts and
/// `convert_lora_to_gguf.py` writes): per adapted base tensor `<gguf name>.lora_a` (ne `[in, r]`,
/// torch `[r, in]`) and `<gguf name>.lora_b` (ne `[r, out]`), F32; the Q/K row permutation of
/// the base is applied to B's rows; `adapter.lora.alpha`.
public enum GGUFLoRAAdapter {
    /// One adapted module, Hugging Face name (`model.layers.0.self_attn.q_proj`), torch shapes.
    public struct Layer: Sendable {
        public var module: String
        public var loraA: Matrix<Float>
        public var loraB: Matrix<Float>
        public init(module: String, loraA: Matrix<Float>, loraB: Matrix<Float>) {
            self.module = module
            self.loraA = loraA
            self.loraB = loraB
        }
    }

    /// Writes `layers` with `alpha` (0: llama.cpp applies no alpha/r scaling, so B must carry
    /// the scale). `headCount`/`keyValueHeadCount` permute q/k B rows as the base was permuted.
    public static func write(_ layers: [Layer], alpha: Float, headCount: Int, keyValueHeadCount: Int,
                             to path: String, overwrite: Bool) throws {
        var tensors: [Tensor] = []
        for layer in layers {
            guard let base = LlamaTensorNames.ggufName(forHuggingFace: layer.module + ".weight") else {
                throw CheckpointError.unsupported(path: path, reason: "\(layer.module) has no llama.cpp tensor name")
            }
            var b = Tensor(name: base + ".lora_b", shape: layer.loraB.shape, float32: layer.loraB.values)
            switch LlamaTensorNames.permutedProjection(forGGUF: base) {
            case .query?: b = try LlamaTensorNames.permuteRows(of: b, headCount: headCount, direction: .huggingFaceToGGUF)
            case .key?: b = try LlamaTensorNames.permuteRows(of: b, headCount: keyValueHeadCount, direction: .huggingFaceToGGUF)
            default: break
            }
            tensors.append(Tensor(name: base + ".lora_a", shape: layer.loraA.shape, float32: layer.loraA.values))
            tensors.append(b)
        }
        var writer = GGUFWriter(hyperparameters: LlamaHyperparameters(vocabularySize: 0, contextLength: 0, embeddingLength: 0, blockCount: 0,
                                                                     feedForwardLength: 0, headCount: 0, rmsNormEpsilon: 0),
                                weightType: .f32)
        writer.adapterAlpha = alpha
        try writer.write(ggufTensors: tensors, to: path, overwrite: overwrite)
    }

    /// Reads an adapter GGUF back: alpha and the layers with Hugging Face names and B rows in
    /// Hugging Face order.
    public static func read(path: String, headCount: Int, keyValueHeadCount: Int) throws -> (alpha: Float, layers: [Layer]) {
        let file = try GGUFFile(path: path)
        guard file.metadata["general.type"]?.string == "adapter", file.metadata["adapter.type"]?.string == "lora" else {
            throw CheckpointError.unrecognized(path: path, reason: "not a llama.cpp LoRA adapter (general.type \(file.metadata["general.type"]?.string ?? "missing"))")
        }
        let alpha = file.metadata["adapter.lora.alpha"]?.float32 ?? 0
        var layers: [Layer] = []
        for info in file.tensorInfos where info.name.hasSuffix(".lora_a") {
            let base = String(info.name.dropLast(".lora_a".count))
            guard let module = LlamaTensorNames.huggingFaceName(forGGUF: base).map({ $0.hasSuffix(".weight") ? String($0.dropLast(7)) : $0 }) else {
                throw CheckpointError.unrecognized(path: path, reason: "\(info.name): unknown base tensor \(base)")
            }
            guard file.tensorInfo(named: base + ".lora_b") != nil else {
                throw CheckpointError.unrecognized(path: path, reason: "\(base).lora_b is missing")
            }
            let a = try file.tensor(named: info.name)
            var b = try file.tensor(named: base + ".lora_b")
            switch LlamaTensorNames.permutedProjection(forGGUF: base) {
            case .query?: b = try LlamaTensorNames.permuteRows(of: b, headCount: headCount, direction: .ggufToHuggingFace)
            case .key?: b = try LlamaTensorNames.permuteRows(of: b, headCount: keyValueHeadCount, direction: .ggufToHuggingFace)
            default: break
            }
            layers.append(Layer(module: module, loraA: try a.float32Matrix(), loraB: try b.float32Matrix()))
        }
        return (alpha, layers)
    }
}
