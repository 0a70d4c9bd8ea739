import Adapters
import Checkpoints
import JSON
import JSONRPC
import LinearAlgebra
import LoquatSupport
import Tensors
#if canImport(Glibc)
import Glibc
#endif

extension LoquatServer {
    /// `adapter/save {adapter, path, format?: "peft" | "gguf", overwrite?, baseModelNameOrPath?}` →
    /// `{adapter, path, format, files, tensorCount, byteCount, maxAbsDeltaDifference}`.
    ///
    /// Writes a PEFT directory (`adapter_config.json`, `adapter_model.safetensors`) and
    /// `loquat.json`, each atomically; existing files only with `overwrite`. The written adapter is
    /// read back and its ΔW compared with the resident one per layer; the largest difference is
    /// reported (0 unless the file lost precision). A failed save leaves nothing behind.
    func saveAdapter(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: ["adapter", "path", "format", "overwrite", "baseModelNameOrPath"])
        let resident = try adapters.adapter(try params.requiredString("adapter"))
        let directory = try params.requiredString("path")
        let format = try params.optionalChoice("format", ["peft", "gguf"]) ?? (directory.lowercased().hasSuffix(".gguf") ? "gguf" : "peft")
        let overwrite = try params.optionalBool("overwrite") ?? false
        let base = resident.baseHandle.flatMap { try? workspace.model($0) }
        if format == "gguf" {
            return try saveAdapterGGUF(resident, path: directory, base: base, overwrite: overwrite, call: call)
        }
        let baseName = try params.optionalString("baseModelNameOrPath") ?? resident.adapter.baseModelNameOrPath
        guard FileSystem.kind(of: directory) != .file else {
            throw RPCError.invalidParams("path", "\(directory) is a file; a PEFT adapter is a directory")
        }
        let outputs = [PEFTAdapterFiles.weightsFileName, PEFTAdapterFiles.configFileName, "loquat.json"].map { FileSystem.join(directory, $0) }
        try refuseUnsafeTargets(outputs, overwrite: overwrite)
        let createdDirectory = FileSystem.kind(of: directory) == .missing
        let existed = Set(outputs.filter { FileSystem.kind(of: $0) != .missing })
        if createdDirectory { try FileSystem.createDirectory(directory) }
        var written: [String] = []
        do {
            let tensors = PEFTAdapterConversion.tensors(of: resident.adapter)
            let config = PEFTAdapterConversion.config(of: resident.adapter, architecture: base?.checkpoint.architecture,
                                                      baseModelNameOrPath: baseName)
            written += try PEFTAdapterFiles.write(config: config, tensors: tensors, to: directory, overwrite: overwrite)
            try context.checkCancellation()
            let difference = try Self.roundTripDifference(resident.adapter, directory: directory)
            let record: JSONValue = [
                "loquat": .string(Self.version),
                "request": ["method": .string(call.method), "params": call.params ?? .null],
                "adapter": resident.summary,
                "origin": resident.origin,
                "layers": .array(resident.adapter.layers.map { layer in
                    var entry: JSONObject = ["module": .string(layer.module), "rank": .int(layer.rank), "alpha": .double(layer.alpha)]
                    if let group = layer.poolingGroupSize { entry["poolingGroupSize"] = .int(group) }
                    return .object(entry)
                }),
                "files": .strings(written.map(FileSystem.fileName(of:))),
                "maxAbsDeltaDifference": .double(difference),
            ]
            let recordPath = FileSystem.join(directory, "loquat.json")
            try AtomicFileWriter.write(try JSON.serialize(record) + [0x0A], to: recordPath, overwrite: true)
            written.append(recordPath)
            let byteCount = Self.byteCount(of: written)
            return ["adapter": .string(resident.handle), "path": .string(directory), "format": "peft", "files": .strings(written),
                    "tensorCount": .int(tensors.count), "byteCount": .int(byteCount), "maxAbsDeltaDifference": .double(difference)]
        } catch {
            for file in written where !existed.contains(file) { unlink(file) }
            if createdDirectory { rmdir(directory) }
            throw error
        }
    }

    /// max |ΔW_file − ΔW_resident| over every layer, reading the directory back. A layer whose
    /// factors, scale and magnitude came back bit-identical has the same ΔW (the common case:
    /// F32 in, F32 out) and is not multiplied out; the rest are compared in parallel.
    static func roundTripDifference(_ adapter: LoRAAdapter, directory: String) throws -> Double {
        let (reread, _) = try PEFTAdapterReading.read(path: directory)
        let copies = Dictionary(reread.layers.map { ($0.module, $0) }, uniquingKeysWith: { a, _ in a })
        var pairs: [(LoRALayer, LoRALayer)] = []
        for layer in adapter.layers {
            guard let copy = copies[layer.module] else {
                throw RPCError(code: RPCError.Code.ioError, message: "I/O error: \(layer.module) missing after writing",
                               data: ["file": .string(directory), "layer": .string(layer.module), "reason": "the written adapter lacks this layer"])
            }
            let identical = copy.loraA == layer.denseLoraA && copy.loraB == layer.loraB && copy.magnitude == layer.magnitude
                && reread.scale(of: copy) == adapter.scale(of: layer)
            if !identical { pairs.append((layer, copy)) }
        }
        var largest = largestDeltaDifference(pairs.map { pair in
            ({ adapter.deltaWeight(of: pair.0) }, { reread.deltaWeight(of: pair.1) })
        })
        // modules_to_save come back whole.
        let savedCopies = Dictionary(reread.modulesToSave.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for tensor in adapter.modulesToSave {
            guard let copy = savedCopies[tensor.name] else {
                throw RPCError(code: RPCError.Code.ioError, message: "I/O error: \(tensor.name) missing after writing",
                               data: ["file": .string(directory), "layer": .string(tensor.name), "reason": "the written adapter lacks this module to save"])
            }
            let a = try tensor.float32Values(), b = try copy.float32Values()
            for i in a.indices { largest = max(largest, Double(abs(a[i] - b[i]))) }
        }
        return largest
    }

    /// max over pairs of |a() − b()|, evaluated in parallel (one BLAS thread each).
    static func largestDeltaDifference(_ pairs: [(() -> Matrix<Float>, () -> Matrix<Float>)]) -> Double {
        guard !pairs.isEmpty else { return 0 }
        var largest = [Double](repeating: 0, count: pairs.count)
        BLASRuntime.singleThreaded(when: pairs.count > 1) {
            largest.withUnsafeMutableBufferPointer { slots in
                let box = UncheckedSendable(slots)
                Parallel.forEach(pairs.count) { index in box.value[index] = pairs[index].0().maxAbsDifference(pairs[index].1()) }
            }
        }
        return largest.max() ?? 0
    }

    /// `adapter/load {path, model?, name?}` → the adapter's summary plus `path` and `layers`.
    /// With `model`, every layer's shape is checked against that model's weight (a mismatch names
    /// the layer) and the adapter is attached to it.
    func loadAdapter(_ call: IncomingCall) throws -> JSONValue {
        let params = try Params(call, allowed: ["path", "model", "name"])
        let path = try params.requiredString("path")
        guard FileSystem.kind(of: path) != .missing else { throw CheckpointError.notFound(path: path) }
        let (adapter, directory) = try PEFTAdapterReading.read(path: path)
        var modelHandle: String?, baseHandle: String?
        if let handle = try params.optionalString("model") {
            let model = try workspace.model(handle)
            try Self.requireShapes(adapter, fit: model.quantized?.base ?? model.checkpoint, modelHandle: handle)
            modelHandle = handle
            baseHandle = model.quantized?.sourceHandle ?? (model.quantized == nil ? handle : nil)
        }
        let handle = try adapters.newHandle(requested: try params.optionalString("name"))
        let resident = ResidentAdapter(handle: handle, adapter: adapter, modelHandle: modelHandle, baseHandle: baseHandle,
                                       origin: ["path": .string(directory)])
        try adapters.register(resident)
        guard case var .object(result) = resident.summary else { return resident.summary }
        result["path"] = .string(directory)
        result["layers"] = .array(adapter.layers.map { layer in
            ["name": .string(layer.module), "rank": .int(layer.rank), "alpha": .double(layer.alpha),
             "scale": .double(adapter.scale(of: layer)), "inputWidth": .int(layer.inputWidth), "outputWidth": .int(layer.outputWidth)]
        })
        return .object(result)
    }

    /// Each adapted module must name a weight `[out, in]` of the model with the adapter's widths.
    static func requireShapes(_ adapter: LoRAAdapter, fit checkpoint: LoadedCheckpoint, modelHandle: String) throws {
        for layer in adapter.layers {
            guard let tensor = checkpoint.tensor(named: layer.weightName) else {
                throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(layer.module)",
                               data: ["param": "adapter", "layer": .string(layer.module),
                                      "reason": .string("\"\(modelHandle)\" has no weight \(layer.weightName); the adapter was built for another model")])
            }
            guard tensor.shape == [layer.outputWidth, layer.inputWidth] else {
                throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(layer.module)",
                               data: ["param": "adapter", "layer": .string(layer.module),
                                      "reason": .string("the adapter's \(layer.module) is [\(layer.outputWidth), \(layer.inputWidth)] but \"\(modelHandle)\" has \(tensor.shape)")])
            }
        }
    }

    /// `adapter/list {}` → `{adapters: [summary…]}`.
    func listAdapters(_ call: IncomingCall) throws -> JSONValue {
        _ = try Params(call, allowed: [])
        return ["adapters": .array(adapters.all().map(\.summary))]
    }

    /// `adapter/unload {adapter}` → `{adapter, unloaded: true}`.
    func unloadAdapter(_ call: IncomingCall) throws -> JSONValue {
        let params = try Params(call, allowed: ["adapter"])
        let handle = try params.requiredString("adapter")
        try adapters.remove(handle)
        return ["adapter": .string(handle), "unloaded": true]
    }
}
