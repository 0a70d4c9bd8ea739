import Adapters
import Checkpoints
import JSON
import JSONRPC
import Models
import Quantization
import Tensors

extension LoquatServer {
    /// `weightError` and `outputError` per linear layer: the weights the model computes with
    /// (dequantized, plus the adapter's ΔW when one is given; DoRA rescaled) against `reference`
    /// (default: the model the quantized one was made from, or the adapter's base).
    /// `weightError = ‖W_ref − W‖_F/‖W_ref‖_F`; `outputError = ‖X(W_ref − W)ᵀ‖_F/‖X·W_refᵀ‖_F` on the
    /// inputs of `calibration`, from its Gram matrices.
    func evaluateLayers(_ resident: ResidentModel, adapter: ResidentAdapter?, reference: ResidentModel?, metrics: [String],
                        params: Params, context: RequestContext, into result: inout JSONObject) throws {
        let referenceModel: ResidentModel
        if let reference {
            referenceModel = reference
        } else if let source = resident.quantized?.sourceHandle ?? adapter?.baseHandle {
            referenceModel = try workspace.model(source)
        } else {
            throw RPCError.invalidParams("reference", "weightError and outputError compare with a full-precision model; name it as reference")
        }
        guard referenceModel.quantized == nil else {
            throw RPCError.invalidParams("reference", "\"\(referenceModel.handle)\" is quantized; the reference must be full precision")
        }
        let calibrationHandle = try params.optionalString("calibration")
        if metrics.contains("outputError") && calibrationHandle == nil {
            throw RPCError.invalidParams("calibration", "outputError is measured on calibration inputs: pass a handle from `calibrate`")
        }
        let calibration = try calibrationHandle.map { try calibrations.set($0) }
        let adapted = Dictionary((adapter?.adapter.layers ?? []).map { ($0.weightName, $0) }, uniquingKeysWith: { a, _ in a })
        var names = resident.quantized?.orderedLayers.map(\.name) ?? []
        for layer in adapter?.adapter.layers ?? [] where !names.contains(layer.weightName) { names.append(layer.weightName) }
        if names.isEmpty { names = try QuantizeTargets.select(resident.checkpoint, targets: nil, exclude: []) }
        let progress = context.progress(title: "Layer errors of \(resident.handle)")
        progress.begin(message: "\(names.count) layers")
        defer { progress.end() }
        let cancellation = context.cancellation
        let checkpoint = resident.quantized?.base ?? resident.checkpoint
        let entries = try ParallelLayers.map(names: names, checkpoint: checkpoint, method: "evaluate", report: { name, done, total in
            progress.report(message: name, completed: done, total: total)
        }, isCancelled: { cancellation.isCancelled }) { index -> JSONValue in
            let name = names[index]
            do {
                guard let referenceTensor = referenceModel.checkpoint.tensor(named: name) else {
                    throw RPCError.invalidParams("reference", "\"\(referenceModel.handle)\" has no weight \(name)")
                }
                let original = try referenceTensor.float32MatrixAnyDType()
                var current = try resident.quantized?.layers[name]?.weight.dequantized() ?? checkpoint.tensor(named: name)!.float32MatrixAnyDType()
                guard current.shape == original.shape else {
                    throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(name)",
                                   data: ["param": "reference", "layer": .string(name),
                                          "reason": .string("\(name) is \(current.shape) in \(resident.handle) and \(original.shape) in \(referenceModel.handle)")])
                }
                if let layer = adapted[name], let adapter {
                    guard layer.outputWidth == current.rowCount, layer.inputWidth == current.columnCount else {
                        throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(name)",
                                       data: ["param": "adapter", "layer": .string(name), "reason": .string("the adapter's layer is [\(layer.outputWidth), \(layer.inputWidth)]")])
                    }
                    current = adapter.adapter.adaptedWeight(base: current, layer: layer)
                }
                let residual = LayerErrors.residual(original: original, approximation: current)
                var entry: JSONObject = ["name": .string(name),
                                         "weightError": .double(LayerErrors.ratio(LayerErrors.squaredNorm(residual), LayerErrors.squaredNorm(original)))]
                if metrics.contains("outputError"), let calibration {
                    guard let statistics = calibration.layers[name], statistics.gram.rowCount == original.columnCount else {
                        throw RPCError.invalidParams("calibration", "\(calibration.handle) has no statistics of width \(original.columnCount) for \(name)")
                    }
                    let signal = try LayerErrors.outputSquaredNorm(LowRankProduct.widened(original), gram: statistics.gram)
                    entry["outputError"] = .double(LayerErrors.ratio(try LayerErrors.outputSquaredNorm(residual, gram: statistics.gram), signal))
                }
                if !metrics.contains("weightError") { entry["weightError"] = nil }
                return .object(entry)
            } catch let error as RPCError {
                throw error
            } catch {
                throw LayerFailure(layer: name, underlying: error)
            }
        }
        result["layers"] = .array(entries)
        for metric in metrics {
            let values = entries.compactMap { $0[metric]?.doubleValue }
            if !values.isEmpty { result[metric] = ["mean": .double(values.reduce(0, +) / Double(values.count)), "maximum": .double(values.max()!)] }
        }
        result["reference"] = .string(referenceModel.handle)
    }

    /// `embeddingCosine`: sentence-transformers embeddings (mean pooling, normalised) of every
    /// non-empty line of the text, by the model and by `reference`; mean and minimum cosine.
    /// An adapter is merged into the weights for this (BERT has no unmerged adapter path).
    func evaluateEmbeddings(_ resident: ResidentModel, adapter: ResidentAdapter?, reference: ResidentModel?, params: Params,
                            context: RequestContext, into result: inout JSONObject) throws {
        guard let reference else { throw RPCError.invalidParams("reference", "embeddingCosine compares with a reference model; name one") }
        for model in [resident, reference] where (model.quantized?.base.config ?? model.checkpoint.config)?.architecture != .bert {
            let type = (model.quantized?.base.config ?? model.checkpoint.config)?.modelType ?? model.checkpoint.architecture
            throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: embeddingCosine on \(type)",
                           data: ["param": model === resident ? "model" : "reference", "modelType": .string(type),
                                  "reason": .string("embeddingCosine compares BERT sentence embeddings; \(model.handle) is \(type)")])
        }
        let sentences = try evaluationText(params).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !sentences.isEmpty else { throw RPCError.invalidParams("text", "no non-empty line to embed") }
        let tokenizer = try TokenizerLoader.load(for: resident.checkpoint)
        var checkpoint = ForwardModelCache.forwardCheckpoint(of: resident)
        if let adapter {
            try Self.requireShapes(adapter.adapter, fit: checkpoint, modelHandle: resident.handle)
            let byName = Dictionary(adapter.adapter.layers.map { ($0.weightName, $0) }, uniquingKeysWith: { a, _ in a })
            let tensors = try checkpoint.tensors.map { tensor -> Tensor in
                guard let layer = byName[tensor.name] else { return tensor }
                let merged = adapter.adapter.adaptedWeight(base: try tensor.float32MatrixAnyDType(), layer: layer)
                return Tensor(name: tensor.name, shape: tensor.shape, float32: merged.values)
            }
            checkpoint = checkpoint.replacingTensors(tensors)
        }
        let model = try BertModel(checkpoint: checkpoint)
        let referenceModel = try BertModel(checkpoint: ForwardModelCache.forwardCheckpoint(of: reference))
        var cosines: [Double] = []
        for sentence in sentences {
            try context.checkCancellation()
            let tokens = Array(tokenizer.encode(sentence, addSpecialTokens: true).map(Int.init).prefix(model.configuration.maxPositionEmbeddings))
            let a = try model.sentenceEmbedding(tokens: tokens), b = try referenceModel.sentenceEmbedding(tokens: tokens)
            var dot = 0.0, na = 0.0, nb = 0.0
            for i in a.indices { dot += Double(a[i]) * Double(b[i]); na += Double(a[i]) * Double(a[i]); nb += Double(b[i]) * Double(b[i]) }
            cosines.append(na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : 0)
        }
        result["embeddingCosine"] = ["mean": .double(cosines.reduce(0, +) / Double(cosines.count)), "minimum": .double(cosines.min()!),
                                     "sentenceCount": .int(cosines.count)]
        result["reference"] = .string(reference.handle)
    }
}
