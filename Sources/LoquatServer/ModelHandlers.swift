import Checkpoints
import JSON
import JSONRPC
import Tensors

extension LoquatServer {
    /// `model/load {path, name?}` → `{model, format, architecture, tensorCount, parameterCount, byteCount}`.
    /// The checkpoint is mmap'd: loading reads headers only, and weights are paged in on use.
    /// A loquat save (`QuantizedModelFile`) loads as a quantized model (`source: null`).
    func loadModel(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: ["path", "name"])
        let path = try params.requiredString("path")
        let name = try params.optionalString("name")
        let handle = try workspace.newHandle(requested: name, prefix: "model")
        let checkpoint = try CheckpointLoader.load(path: path)
        try context.checkCancellation()
        if let quantized = try QuantizedModelFile.decode(checkpoint) {
            try workspace.register(ResidentModel(handle: handle, checkpoint: quantized.base, quantized: quantized))
            return quantizedSummary(of: handle, quantized)
        }
        try workspace.register(ResidentModel(handle: handle, checkpoint: checkpoint))
        return summary(of: handle, checkpoint)
    }

    /// `model/info {model}` → the summary plus the per-tensor table `{name, shape, dtype, byteCount}`
    /// and the parsed config.
    func modelInfo(_ call: IncomingCall) throws -> JSONValue {
        let params = try Params(call, allowed: ["model"])
        let model = try workspace.model(try params.requiredString("model"))
        if let quantized = model.quantized { return quantizedInfo(of: model.handle, quantized) }
        guard case var .object(result) = summary(of: model.handle, model.checkpoint) else { return .null }
        result["tensors"] = .array(model.checkpoint.tensors.map { tensor in
            ["name": .string(tensor.name), "shape": .ints(tensor.shape), "dtype": .string(tensor.dtype.rawValue),
             "byteCount": .int(tensor.byteCount)]
        })
        if let config = model.checkpoint.config { result["config"] = config.jsonObject() }
        return .object(result)
    }

    /// `model/list {}` → `{models: [summary…]}` in load order.
    func listModels(_ call: IncomingCall) throws -> JSONValue {
        _ = try Params(call, allowed: [])
        return ["models": .array(workspace.allModels().map { model in
            model.quantized.map { quantizedSummary(of: model.handle, $0) } ?? summary(of: model.handle, model.checkpoint)
        })]
    }

    /// `model/unload {model}` → `{model, unloaded: true}`. The mapping is released once no
    /// other resident object shares its tensors. A model that resident quantized models were
    /// made from is refused (-32602, `data.dependents`) until they are unloaded.
    func unloadModel(_ call: IncomingCall) throws -> JSONValue {
        let params = try Params(call, allowed: ["model"])
        let handle = try params.requiredString("model")
        try workspace.remove(handle)
        return ["model": .string(handle), "unloaded": true]
    }

    func summary(of handle: String, _ checkpoint: LoadedCheckpoint) -> JSONValue {
        [
            "model": .string(handle),
            "path": .string(checkpoint.path),
            "format": .string(checkpoint.format.rawValue),
            "architecture": .string(checkpoint.architecture),
            "tensorCount": .int(checkpoint.tensors.count),
            "parameterCount": .int(checkpoint.parameterCount),
            "byteCount": .int(checkpoint.byteCount),
        ]
    }
}
