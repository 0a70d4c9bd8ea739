import Adapters
import Checkpoints
import JSON
import JSONRPC
import LoquatSupport
import Tensors
#if canImport(Glibc)
import Glibc
#endif

extension LoquatServer {
    /// `adapter/save format: "gguf"`: a llama.cpp LoRA adapter. Each layer's PEFT scale (α/r,
    /// α/√r with rsLoRA, per-module patterns) is folded into B and `adapter.lora.alpha = 0` is
    /// written, so llama.cpp computes the same ΔW whatever the config; QA-LoRA pooling is expanded
    /// into A. DoRA is refused: llama.cpp has no magnitude vector. The file is read back and ΔW
    /// compared per layer.
    func saveAdapterGGUF(_ resident: ResidentAdapter, path: String, base: ResidentModel?, overwrite: Bool,
                         call: IncomingCall) throws -> JSONValue {
        let adapter = resident.adapter
        if adapter.useDoRA || adapter.layers.contains(where: { $0.magnitude != nil }) {
            throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: DoRA in a llama.cpp LoRA",
                           data: ["param": "format", "reason": "llama.cpp LoRA adapters hold only lora_a/lora_b and a scale; DoRA's magnitude vector rescales each output row, which they cannot represent. Save it as peft, or merge it into the base (merge into: \"full\") and save the model as GGUF"])
        }
        let config = (base?.quantized?.base.config ?? base?.checkpoint.config)
            ?? resident.modelHandle.flatMap { try? workspace.model($0) }.flatMap { $0.quantized?.base.config ?? $0.checkpoint.config }
        guard let config else {
            throw RPCError.invalidParams("adapter", "the adapter's base model is not resident; its head counts are needed to permute q/k rows as llama.cpp does")
        }
        guard case .llama = config.architecture else {
            throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: GGUF LoRA for \(config.modelType)",
                           data: ["param": "format", "modelType": .string(config.modelType), "reason": .string("llama.cpp LoRA export is implemented for the llama architecture")])
        }
        guard FileSystem.kind(of: path) != .directory else { throw RPCError.invalidParams("path", "\(path) is a directory; a GGUF adapter is one file") }
        let provenancePath = path + ".loquat.json"
        try refuseUnsafeTargets([path, provenancePath], overwrite: overwrite)
        let existed = Set([path, provenancePath].filter { FileSystem.kind(of: $0) != .missing })
        let layers = adapter.layers.map { layer in
            let scale = Float(adapter.scale(of: layer))
            return GGUFLoRAAdapter.Layer(module: layer.module, loraA: layer.denseLoraA,
                                         loraB: Matrix(rowCount: layer.loraB.rowCount, columnCount: layer.rank, values: layer.loraB.values.map { $0 * scale }))
        }
        var written: [String] = []
        do {
            try GGUFLoRAAdapter.write(layers, alpha: 0, headCount: config.attentionHeadCount, keyValueHeadCount: config.keyValueHeadCount,
                                      to: path, overwrite: overwrite)
            written.append(path)
            let reread = try GGUFLoRAAdapter.read(path: path, headCount: config.attentionHeadCount, keyValueHeadCount: config.keyValueHeadCount)
            let copies = Dictionary(reread.layers.map { ($0.module, $0) }, uniquingKeysWith: { a, _ in a })
            var pairs: [(() -> Matrix<Float>, () -> Matrix<Float>)] = []
            for layer in adapter.layers {
                guard let copy = copies[layer.module] else {
                    throw RPCError(code: RPCError.Code.ioError, message: "I/O error: \(layer.module) missing after writing",
                                   data: ["file": .string(path), "layer": .string(layer.module), "reason": "the written adapter lacks this layer"])
                }
                // ΔW_file − ΔW = (B_file − s·B)·A_file when A came back unchanged: one thin product
                // of the (usually tiny) difference of the B factors instead of two full ones.
                let scale = adapter.scale(of: layer)
                let dense = layer.denseLoraA
                if copy.loraA == dense {
                    let difference = Matrix(rowCount: copy.loraB.rowCount, columnCount: copy.loraB.columnCount,
                                            values: zip(copy.loraB.values, layer.loraB.values).map { Float(Double($0) - scale * Double($1)) })
                    if difference.values.allSatisfy({ $0 == 0 }) { continue }
                    pairs.append(({ LowRankProduct.delta(loraB: difference, loraA: dense, scale: 1) }, { Matrix(zeros: layer.outputWidth, layer.inputWidth) }))
                } else {
                    pairs.append(({ adapter.deltaWeight(of: layer) }, { LowRankProduct.delta(loraB: copy.loraB, loraA: copy.loraA, scale: 1) }))
                }
            }
            let largest = Self.largestDeltaDifference(pairs)
            let record: JSONValue = [
                "loquat": .string(Self.version),
                "request": ["method": .string(call.method), "params": call.params ?? .null],
                "adapter": resident.summary, "origin": resident.origin,
                "scaleFoldedIntoLoraB": true, "maxAbsDeltaDifference": .double(largest),
            ]
            try AtomicFileWriter.write(try JSON.serialize(record) + [0x0A], to: provenancePath, overwrite: true)
            written.append(provenancePath)
            let byteCount = Self.byteCount(of: written)
            return ["adapter": .string(resident.handle), "path": .string(path), "format": "gguf", "files": .strings(written),
                    "tensorCount": .int(2 * layers.count), "byteCount": .int(byteCount), "maxAbsDeltaDifference": .double(largest)]
        } catch {
            for file in written where !existed.contains(file) { unlink(file) }
            if !existed.contains(path) { unlink(path) }
            throw error
        }
    }
}
