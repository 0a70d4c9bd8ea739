import Checkpoints
import JSON
import JSONRPC
import Quantization
import Tensors

extension LoquatServer {
    /// `model/save {format: "bnb"}`: a Hugging Face checkpoint in the bitsandbytes 4-bit layout
    /// (formats.md §4.1) written by `BitsAndBytesExport`: each quantized Linear `X.weight` becomes
    /// `X.weight` (packed U8), `X.weight.absmax`, `X.weight.quant_map`, the nested statistics with
    /// double quantization, and `X.weight.quant_state.bitsandbytes__nf4|fp4`; every other tensor
    /// is written as it is (GGUF block tensors as F32), and `config.json` gets
    /// `quantization_config` with the unquantized Linear modules in `llm_int8_skip_modules`.
    ///
    /// bitsandbytes stores one 4-bit type per checkpoint (one `bnb_4bit_quant_type`, one
    /// `bnb_4bit_use_double_quant`) and only for Linear layers, so every quantized layer must be
    /// an nf4 or fp4 `….weight` that is not an embedding — the same type, the same double
    /// quantization — and carry no rotation or outliers, which bitsandbytes cannot apply.
    func saveBitsAndBytes(_ handle: String, _ model: QuantizedModel, path: String, overwrite: Bool, request: JSONValue,
                          ledger: [JSONValue], context: RequestContext) throws -> JSONValue {
        try Self.requireBitsAndBytesLayers(model)
        let layers = model.orderedLayers
        let config = try BitsAndBytesExport.config(for: layers.map(\.weight), skipModules: Self.unquantizedLinearModules(model))
        var tensors: [Tensor] = []
        for name in model.tensorNames {
            try context.checkCancellation()
            if let layer = model.layers[name] {
                tensors += try BitsAndBytesExport.tensors(for: layer.weight, prefix: String(name.dropLast(".weight".count)),
                                                          originalDType: Self.torchDTypeName(layer.sourceDType))
            } else if let tensor = model.base.tensor(named: name) {
                tensors.append(try Self.convertForSafetensors(tensor, to: nil))
            }
        }
        let plan = SavePlan.safetensors(path: path, dtype: nil)
        return try withCleanupOnFailure(plan, overwrite: overwrite) { written in
            try SafetensorsWriter.write(tensors: tensors, metadata: ["format": "pt"], to: plan.weightsPath, overwrite: overwrite)
            written.append(plan.weightsPath)
            let quantizationConfig = JSONObject(config.entries.map { (key: $0.key, value: Self.json($0.value)) })
            try writeDirectoryCompanions(plan, of: model.base, overwrite: overwrite,
                                         extraConfig: ["quantization_config": .object(quantizationConfig)], written: &written)
            try writeProvenance(plan, request: request, source: model.base, layers: ledger, written: &written)
            return saveResult(handle, path: path, format: "bnb", tensorCount: tensors.count, written: written)
        }
    }

    /// Refuses, naming the layer, what the bitsandbytes layout cannot hold.
    static func requireBitsAndBytesLayers(_ model: QuantizedModel) throws {
        let layers = model.orderedLayers
        guard let first = layers.first else {
            throw QuantizedSaveError(code: RPCError.Code.unsupported, format: "bnb", param: "format", layer: nil,
                                     reason: "the model has no quantized layer")
        }
        func refuse(_ layer: String, _ reason: String) -> QuantizedSaveError {
            QuantizedSaveError(code: RPCError.Code.unsupported, format: "bnb", param: "format", layer: layer, reason: reason)
        }
        for layer in layers {
            let spec = layer.weight.spec
            guard spec.method == .nf4 || spec.method == .fp4 else {
                let described = spec.method == .fp8 ? "fp8" : "\(spec.method.rawValue)\(spec.bits)"
                throw refuse(layer.name, "bnb holds only bitsandbytes 4-bit weights (nf4, fp4); layer \(layer.name) is \(described); "
                             + "save it as loquat (lossless) or as a dequantized safetensors/gguf")
            }
            guard spec.rotation == nil, spec.outliers == nil else {
                throw refuse(layer.name, "bitsandbytes cannot undo a Hadamard rotation or add sparse outliers; layer \(layer.name) has "
                             + "\(spec.rotation != nil ? "rotate" : "outliers"); save it as loquat instead")
            }
            guard layer.name.hasSuffix(".weight"), !isEmbedding(layer.name) else {
                throw refuse(layer.name, "bitsandbytes quantizes Linear layers (`<module>.weight`) only; \(layer.name) is not one")
            }
            let reference = first.weight.spec
            guard spec.method == reference.method, spec.doubleQuant == reference.doubleQuant else {
                throw refuse(layer.name, "a bnb checkpoint has one bnb_4bit_quant_type and one bnb_4bit_use_double_quant; layer "
                             + "\(layer.name) is \(spec.method.rawValue) doubleQuant \(spec.doubleQuant), layer \(first.name) is "
                             + "\(reference.method.rawValue) doubleQuant \(reference.doubleQuant)")
            }
        }
    }

    /// Linear modules transformers would otherwise convert: every 2-D floating `….weight` that
    /// is not an embedding and was not quantized (lm_head, a BERT pooler, excluded layers).
    static func unquantizedLinearModules(_ model: QuantizedModel) -> [String]? {
        let modules = model.untouchedTensors.filter { tensor in
            tensor.shape.count == 2 && (tensor.dtype.isFloatingPoint || tensor.dtype.isBlockQuantized)
                && tensor.name.hasSuffix(".weight") && !isEmbedding(tensor.name)
        }.map { String($0.name.dropLast(".weight".count)) }
        return modules.isEmpty ? nil : modules
    }

    static func isEmbedding(_ name: String) -> Bool { name.contains("embed") }

    /// The torch dtype name bnb records as the weight's original dtype (GGUF blocks decode to float32).
    static func torchDTypeName(_ dtype: DType) -> String {
        switch dtype {
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        default: return "float32"
        }
    }

    static func json(_ value: BitsAndBytesConfig.Value) -> JSONValue {
        switch value {
        case let .bool(flag): return .bool(flag)
        case let .string(text): return .string(text)
        case let .number(number): return .double(number)
        case let .strings(texts): return .strings(texts)
        case .null: return .null
        }
    }
}
