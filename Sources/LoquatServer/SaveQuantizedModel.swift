import Checkpoints
import LoquatSupport
import JSON
import JSONRPC
import Quantization
import Tensors

/// A save of a quantized model that the chosen format cannot represent (or a bad option for
/// it), refused before anything is written.
struct QuantizedSaveError: Error, CustomStringConvertible {
    let code: Int
    let format: String
    let param: String?
    let layer: String?
    let reason: String
    var description: String { reason }
}

extension LoquatServer {
    /// `model/save` of a quantized model, `format`:
    /// - `safetensors` (default; `.safetensors` path = one file, else an HF directory): the
    ///   dequantized weights, quantized layers at `dtype` F32 (default), F16 or BF16;
    /// - `gguf`: re-encodes the dequantized weights as the GGUF type `dtype` (F16 by default);
    ///   lossy unless the type holds the dequantized values exactly;
    /// - `bnb`: bitsandbytes 4-bit safetensors + `quantization_config` (nf4/fp4 layers only);
    /// - `loquat`: lossless (`QuantizedModelFile`), read back by `model/load`.
    /// Each writes `loquat.json` with the request and the error ledger.
    func saveQuantizedModel(_ call: IncomingCall, _ context: RequestContext, model: ResidentModel,
                            quantized: QuantizedModel) throws -> JSONValue {
        let params = try Params(call, allowed: ["model", "path", "format", "dtype", "overwrite"])
        let path = try params.requiredString("path")
        let format = try params.optionalChoice("format", ["safetensors", "gguf", "bnb", "loquat"])
            ?? (path.lowercased().hasSuffix(".gguf") ? "gguf" : "safetensors")
        let overwrite = try params.optionalBool("overwrite") ?? false
        let request: JSONValue = ["method": .string(call.method), "params": call.params ?? .null]
        let ledger = quantized.orderedLayers.map(QuantizeLedger.entry)
        let progress = context.progress(title: "Saving \(model.handle)")
        progress.begin(message: path)
        defer { progress.end() }

        switch format {
        case "safetensors", "gguf":
            let plan = try dequantizedSavePlan(format: format, path: path, dtypeName: try params.optionalString("dtype"))
            return try withCleanupOnFailure(plan, overwrite: overwrite) { written in
                try context.checkCancellation()
                let dequantized = ResidentModel(handle: model.handle, checkpoint: dequantizedCheckpoint(quantized))
                var result = try writeSave(plan, of: dequantized, format: format, overwrite: overwrite, call: call,
                                           context: context, progress: progress, layers: ledger, written: &written)
                if format == "gguf", case var .object(object) = result {
                    object["reencoded"] = true
                    result = .object(object)
                }
                return result
            }
        case "loquat":
            try refuseDType(params, format: format)
            let plan = SavePlan.safetensors(path: path, dtype: nil)
            let (tensors, metadata) = try QuantizedModelFile.encode(quantized)
            return try withCleanupOnFailure(plan, overwrite: overwrite) { written in
                try context.checkCancellation()
                try SafetensorsWriter.write(tensors: tensors, metadata: metadata, to: plan.weightsPath, overwrite: overwrite)
                written.append(plan.weightsPath)
                try writeDirectoryCompanions(plan, of: quantized.base, overwrite: overwrite, extraConfig: nil, written: &written)
                try writeProvenance(plan, request: request, source: quantized.base, layers: ledger, written: &written)
                return saveResult(model.handle, path: path, format: format, tensorCount: quantized.tensorNames.count, written: written)
            }
        default:
            try refuseDType(params, format: format)
            return try saveBitsAndBytes(model.handle, quantized, path: path, overwrite: overwrite, request: request,
                                        ledger: ledger, context: context)
        }
    }

    /// The plain save's plan for a dequantized export. Any GGUF type the writer can encode is
    /// accepted (`GGUFWriter.weightTypes`); others are refused saying what GGUF export can hold.
    func dequantizedSavePlan(format: String, path: String, dtypeName: String?) throws -> SavePlan {
        if format == "safetensors" {
            let choices = ["F32", "F16", "BF16"]
            guard let name = dtypeName else { return .safetensors(path: path, dtype: nil) }
            guard let match = choices.first(where: { $0 == name.uppercased() }) else {
                throw RPCError.invalidParams("dtype", "\"\(name)\" is not one of \(choices.joined(separator: ", ")) "
                                             + "(a safetensors export holds the dequantized weights as plain floats)")
            }
            return .safetensors(path: path, dtype: DType(rawValue: match))
        }
        let writable = GGUFWriter.weightTypes.map(\.rawValue)
        let name = dtypeName ?? "F16"
        guard let dtype = DType(rawValue: name.uppercased()) ?? DType(rawValue: name), GGUFWriter.weightTypes.contains(dtype) else {
            throw QuantizedSaveError(code: DType(rawValue: name.uppercased()) == nil ? RPCError.Code.invalidParams : RPCError.Code.unsupported,
                                     format: "gguf", param: "dtype", layer: nil,
                                     reason: "GGUF export of a quantized model re-encodes its dequantized weights as one GGUF type; "
                                         + "this build writes \(writable.joined(separator: ", ")), not \(name)")
        }
        return .gguf(path: path, dtype: dtype)
    }

    /// The quantized model as a plain checkpoint: untouched tensors shared, quantized layers
    /// dequantized to Float32.
    func dequantizedCheckpoint(_ model: QuantizedModel) -> LoadedCheckpoint {
        let base = model.base
        return base.replacingTensors(model.dequantizedTensors())
    }

    /// bnb and loquat hold the quantized codes themselves; a dtype would be a misunderstanding.
    func refuseDType(_ params: Params, format: String) throws {
        if let dtype = try params.optionalString("dtype") {
            throw RPCError.invalidParams("dtype", "\(format) stores the quantized layers as they are; dtype \(dtype) applies to "
                                         + "safetensors and gguf exports of the dequantized weights")
        }
    }
}
