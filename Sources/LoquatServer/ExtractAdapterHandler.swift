import Adapters
import Checkpoints
import JSON
import JSONRPC
import LinearAlgebra
import Quantization
import Tensors

extension LoquatServer {
    /// `extractAdapter {base, finetuned, rank? | energy? | relativeError? | parameterBudget?, maxRank?, targets?, exclude?,
    /// relativeTo?: "base" | "quantized", quantized?, svd?, seed?, name?, workDoneToken?}` →
    /// `{adapter, base, finetuned, layers: [{name, rank, energyRetained, relativeError}], otherDifferences, seconds}`.
    ///
    /// PHLoRA / mergekit `extract_lora`: per targeted linear layer the truncated SVD of
    /// `ΔW = W_ft − W_base` with a fixed `rank` (default 16), the smallest rank keeping an `energy`
    /// fraction or meeting a `relativeError`, or ranks allocated across layers under a
    /// `parameterBudget` (greedy by marginal error per parameter). `relativeTo: "quantized"`
    /// measures the delta from `quantized`'s dequantized layers, so the adapter also absorbs the
    /// quantization error. Tensors outside the targets that differ (embeddings, norms) are listed
    /// in `otherDifferences`.
    func extractAdapter(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: ["base", "finetuned", "rank", "energy", "relativeError", "parameterBudget", "maxRank",
                                                "targets", "exclude", "relativeTo", "quantized", "svd", "seed", "name", "modulesToSave"])
        let started = ContinuousClock.now
        let base = try workspace.model(try params.requiredString("base"))
        let finetuned = try workspace.model(try params.requiredString("finetuned"))
        for (model, param) in [(base, "base"), (finetuned, "finetuned")] where model.quantized != nil {
            throw RPCError.invalidParams(param, "\"\(model.handle)\" is quantized; pass full-precision models (and the quantized one as quantized)")
        }
        let rules = ["rank", "energy", "relativeError", "parameterBudget"].filter(params.has)
        guard rules.count <= 1 else { throw RPCError.invalidParams(rules[1], "give one of rank, energy, relativeError, parameterBudget") }
        var rule = RankRule.fixed(try params.optionalInt("rank") ?? 16)
        if let energy = try params.optionalDouble("energy") { rule = .energy(energy) }
        if let error = try params.optionalDouble("relativeError") { rule = .relativeError(error) }
        let budget = try params.optionalInt("parameterBudget")
        let maxRank = try params.optionalInt("maxRank")
        let svd = SVDChoice.Mode(rawValue: try params.optionalChoice("svd", ["exact", "randomized"]) ?? "exact")!
        let seed = UInt64(try params.optionalNonNegativeInt("seed") ?? 0)
        let relativeTo = try params.optionalChoice("relativeTo", ["base", "quantized"]) ?? "base"
        var quantized: QuantizedModel?
        if relativeTo == "quantized" {
            guard let handle = try params.optionalString("quantized") else {
                throw RPCError.invalidParams("quantized", "relativeTo: \"quantized\" needs the quantized model's handle")
            }
            let model = try workspace.model(handle)
            guard let q = model.quantized else { throw RPCError.invalidParams("quantized", "\"\(handle)\" is not quantized") }
            quantized = q
        }
        try Self.requireSameTensors(base.checkpoint, finetuned.checkpoint)
        let names = try QuantizeTargets.select(base.checkpoint, targets: try params.optionalStrings("targets"), exclude: try params.optionalStrings("exclude") ?? [])
        let handle = try adapters.newHandle(requested: try params.optionalString("name"))
        let progress = context.progress(title: "Extracting \(finetuned.handle) − \(base.handle)")
        progress.begin(message: "\(names.count) layers")
        defer { progress.end() }
        let cancellation = context.cancellation
        func weights(_ index: Int) throws -> (Matrix<Float>, Matrix<Float>) {
            let name = names[index]
            let w = try quantized?.layers[name]?.weight.dequantized() ?? base.checkpoint.tensor(named: name)!.float32MatrixAnyDType()
            return (w, try finetuned.checkpoint.tensor(named: name)!.float32MatrixAnyDType())
        }
        var ranks: [String: Int]?
        if let budget {
            // The whole spectrum of every layer first, then the greedy allocation.
            let spectra = try BLASRuntime.singleThreaded(when: names.count > 1) {
                try ParallelLayers.map(names: names, checkpoint: base.checkpoint, method: call.method, report: { name, done, total in
                    progress.report(message: "spectrum of " + name, completed: done, total: total)
                }, isCancelled: { cancellation.isCancelled }) { index -> (module: String, singularValues: [Double], parameterCostPerRank: Int) in
                    let (w, ft) = try weights(index)
                    let delta = LayerErrors.residual(original: ft, approximation: w)
                    return (names[index], try LinearAlgebra.svd(delta).singularValues, w.rowCount + w.columnCount)
                }
            }
            ranks = AdapterExtraction.allocateGlobally(spectra: spectra, parameterBudget: budget)
        }
        let extracted = try BLASRuntime.singleThreaded(when: names.count > 1) {
            try ParallelLayers.map(names: names, checkpoint: base.checkpoint, method: call.method, report: { name, done, total in
                progress.report(message: name, completed: done, total: total)
            }, isCancelled: { cancellation.isCancelled }) { index -> ExtractedLayer? in
                let (w, ft) = try weights(index)
                var layerRule = rule
                if let ranks {
                    guard let r = ranks[names[index]], r > 0 else { return nil }
                    layerRule = .fixed(r)
                }
                do {
                    return try AdapterExtraction.extract(module: Self.moduleName(names[index]), base: w, finetuned: ft, rule: layerRule,
                                                         maxRank: maxRank, svd: svd, seed: seed)
                } catch {
                    throw LayerFailure(layer: names[index], underlying: error)
                }
            }
        }
        try context.checkCancellation()
        let kept = extracted.compactMap { $0 }.filter { $0.rank > 0 }
        guard !kept.isEmpty else { throw RPCError.invalidParams("parameterBudget", "the budget leaves no layer with rank ≥ 1") }
        let maxUsed = kept.map(\.rank).max()!
        var rankPattern: [String: Int] = [:], alphaPattern: [String: Double] = [:]
        for layer in kept where layer.rank != maxUsed {
            rankPattern[layer.layer.module] = layer.rank
            alphaPattern[layer.layer.module] = Double(layer.rank)
        }
        var adapter = LoRAAdapter(layers: kept.map(\.layer), rank: maxUsed, alpha: Double(maxUsed), rankPattern: rankPattern,
                                  alphaPattern: alphaPattern, baseModelNameOrPath: base.checkpoint.path, initMethod: "extract")
        let target = Set(names)
        let differing = try base.checkpoint.tensors.filter { !target.contains($0.name) }.compactMap { tensor -> (Tensor, Double)? in
            let other = finetuned.checkpoint.tensor(named: tensor.name)!
            guard tensor.dtype.isFloatingPoint || tensor.dtype.isBlockQuantized else { return nil }
            let a = try tensor.float32Values(), b = try other.float32Values()
            var difference = 0.0, norm = 0.0
            for i in a.indices { let d = Double(b[i]) - Double(a[i]); difference += d * d; norm += Double(a[i]) * Double(a[i]) }
            guard difference > 0 else { return nil }
            return (Tensor(name: other.name, shape: other.shape, float32: b), LayerErrors.ratio(difference, norm))
        }
        // modulesToSave: the changed embeddings/norms travel whole, as PEFT's modules_to_save.
        if try params.optionalBool("modulesToSave") ?? false { adapter.modulesToSave = differing.map(\.0) }
        try adapters.register(ResidentAdapter(handle: handle, adapter: adapter, modelHandle: quantized == nil ? base.handle : try params.optionalString("quantized"),
                                              baseHandle: base.handle, origin: ["method": .string(call.method), "params": call.params ?? .null]))
        let others: [JSONValue] = differing.map { tensor, change in
            ["name": .string(tensor.name), "relativeChange": .double(change), "savedWhole": .bool(!adapter.modulesToSave.isEmpty)]
        }
        return ["adapter": .string(handle), "base": .string(base.handle), "finetuned": .string(finetuned.handle),
                "relativeTo": .string(relativeTo), "rank": .int(maxUsed),
                "layers": .array(kept.map { layer in
                    ["name": .string(layer.layer.weightName), "rank": .int(layer.rank), "energyRetained": .double(layer.energyRetained),
                     "relativeError": .double(layer.relativeError)]
                }),
                "otherDifferences": .array(others), "seconds": .double((ContinuousClock.now - started).seconds)]
    }

    /// The same tensor names with the same shapes, or -32003 naming the first that differs.
    static func requireSameTensors(_ base: LoadedCheckpoint, _ finetuned: LoadedCheckpoint) throws {
        for tensor in base.tensors {
            guard let other = finetuned.tensor(named: tensor.name) else {
                throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(tensor.name)",
                               data: ["param": "finetuned", "layer": .string(tensor.name), "reason": .string("the fine-tuned model has no \(tensor.name)")])
            }
            guard other.shape == tensor.shape else {
                throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(tensor.name)",
                               data: ["param": "finetuned", "layer": .string(tensor.name),
                                      "reason": .string("\(tensor.name) is \(tensor.shape) in the base and \(other.shape) in the fine-tuned model")])
            }
        }
        if let extra = finetuned.tensors.first(where: { base.tensor(named: $0.name) == nil }) {
            throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(extra.name)",
                           data: ["param": "finetuned", "layer": .string(extra.name), "reason": .string("the base model has no \(extra.name)")])
        }
    }
}
