import Adapters
import Checkpoints
import JSON
import JSONRPC
import LinearAlgebra
import Quantization
import Tensors

/// How one quantized layer takes its adapter.
enum MergeStrategy: String, CaseIterable {
    /// dequantize, add ΔW, re-quantize with the same spec.
    case requantize
    /// re-quantize that layer at 8 bits (int8, groups of 64).
    case higherPrecision = "higher-precision"
    /// keep Q and the adapter unmerged for the layer (returned in a sidecar adapter).
    case sidecar
    /// QA-LoRA on an INT-k grid: fold ΔW exactly into the zero points.
    case exactZeroPoint = "exact-zero-point"
    /// re-quantize, then fit a residual adapter of the same rank to what the rounding lost.
    case recompensate
    case auto
}

extension LoquatServer {
    /// `merge into: "quantized"`: first the pre-flight numbers per layer — ‖ΔW‖ in units of the
    /// quantization step (√12 × the RMS of W − Q when the base is resident), the share of
    /// weights whose dequantized value re-quantization would change, and what fraction of the
    /// adapter `requantize` would lose (`‖(Q + ΔW) − q(Q + ΔW)‖/‖ΔW‖`) — then the strategy. `auto`
    /// folds QA-LoRA exactly, re-quantizes where at most 5 % of the adapter is lost, and keeps
    /// the rest in a sidecar adapter (exact). Every layer reports what it kept, so no adapter is
    /// lost silently.
    func mergeIntoQuantized(model: ResidentModel, quantized: QuantizedModel, adapter: LoRAAdapter, params: Params, call: IncomingCall,
                            context: RequestContext, started: ContinuousClock.Instant) throws -> JSONValue {
        let strategies = try mergeStrategies(call)
        let base = quantized.sourceHandle.flatMap { try? workspace.model($0) }
        let layers = adapter.layers.filter { quantized.layers[$0.weightName] != nil }
        let unquantized = adapter.layers.filter { quantized.layers[$0.weightName] == nil }.map(\.module)
        guard unquantized.isEmpty else {
            throw RPCError.invalidParams("adapters", "\(unquantized.first!) is not quantized in \"\(model.handle)\"; merge into: \"full\" for full-precision layers")
        }
        let progress = context.progress(title: "Merging into \(model.handle)")
        progress.begin(message: "\(layers.count) layers")
        defer { progress.end() }
        let cancellation = context.cancellation
        let outcomes = try BLASRuntime.singleThreaded(when: layers.count > 1) {
            try ParallelLayers.map(names: layers.map(\.weightName), checkpoint: quantized.base, method: call.method, report: { name, done, total in
                progress.report(message: name, completed: done, total: total)
            }, isCancelled: { cancellation.isCancelled }) { index in
                let layer = layers[index]
                do {
                    let original = try base?.checkpoint.tensor(named: layer.weightName)?.float32MatrixAnyDType()
                    return try Self.mergeLayer(layer, adapter: adapter, into: quantized.layers[layer.weightName]!, original: original,
                                               strategy: strategies(layer.weightName))
                } catch let error as RPCError {
                    throw error
                } catch {
                    throw LayerFailure(layer: layer.weightName, underlying: error)
                }
            }
        }
        try context.checkCancellation()
        var newLayers = quantized.layers
        var sidecar: [LoRALayer] = []
        for (layer, outcome) in zip(layers, outcomes) {
            let old = quantized.layers[layer.weightName]!
            newLayers[layer.weightName] = QuantizedLayer(name: old.name, weight: outcome.weight, sourceDType: old.sourceDType, report: old.report)
            if let extra = outcome.sidecar { sidecar.append(extra) }
        }
        let handle = try params.optionalString("name").map { try workspace.newHandle(requested: $0, prefix: "model") } ?? freeHandle("\(model.handle)-merged")
        try workspace.register(ResidentModel(handle: handle, checkpoint: model.checkpoint,
                                             quantized: QuantizedModel(sourceHandle: quantized.sourceHandle, base: quantized.base, tensorNames: quantized.tensorNames,
                                                                       layers: newLayers, request: ["method": "merge", "params": call.params ?? .null])))
        var result: JSONObject = ["model": .string(handle), "into": "quantized", "source": .string(model.handle)]
        if !sidecar.isEmpty {
            let sidecarHandle = try adapters.newHandle(requested: try params.optionalString("sidecarName") ?? "\(handle)-sidecar")
            let sidecarAdapter = LoRAAdapter(layers: sidecar, rank: sidecar.map(\.rank).max()!, alpha: adapter.alpha, useRSLoRA: adapter.useRSLoRA,
                                             useDoRA: sidecar.contains { $0.magnitude != nil }, rankPattern: adapter.rankPattern,
                                             alphaPattern: adapter.alphaPattern, baseModelNameOrPath: adapter.baseModelNameOrPath, initMethod: "merge-sidecar")
            try adapters.register(ResidentAdapter(handle: sidecarHandle, adapter: sidecarAdapter, modelHandle: handle,
                                                  baseHandle: quantized.sourceHandle, origin: ["method": "merge", "params": call.params ?? .null]))
            result["sidecar"] = .string(sidecarHandle)
        }
        var counts: [String: Int] = [:]
        for outcome in outcomes { counts[outcome.report["strategy"]?.stringValue ?? "?", default: 0] += 1 }
        let lost = outcomes.filter { ($0.report["adapterRetained"]?.doubleValue ?? 1) < 0.9 }.compactMap { $0.report["name"]?.stringValue }
        result["report"] = ["layers": .array(outcomes.map(\.report)),
                            "summary": ["strategies": .object(JSONObject(counts.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.int($0.value)) })),
                                        "layersLosingOverTenPercent": .strings(lost)]]
        result["seconds"] = .double((ContinuousClock.now - started).seconds)
        return .object(result)
    }

    /// `strategy`: a name for every layer, or `[{pattern, strategy}]` (first match; unmatched → auto).
    func mergeStrategies(_ call: IncomingCall) throws -> (String) -> MergeStrategy {
        let names = MergeStrategy.allCases.map(\.rawValue)
        guard let value = call.params?["strategy"], value != .null else { return { _ in .auto } }
        if let name = value.stringValue {
            guard let strategy = MergeStrategy(rawValue: name) else { throw RPCError.invalidParams("strategy", "\"\(name)\" is not one of \(names.joined(separator: ", "))") }
            return { _ in strategy }
        }
        guard let entries = value.arrayValue else { throw RPCError.invalidParams("strategy", "expected a strategy name or [{pattern, strategy}]") }
        let rules = try entries.enumerated().map { index, entry -> (GlobPattern, MergeStrategy) in
            guard let pattern = entry["pattern"]?.stringValue, let name = entry["strategy"]?.stringValue else {
                throw RPCError.invalidParams("strategy[\(index)]", "expected {pattern, strategy}")
            }
            guard let strategy = MergeStrategy(rawValue: name) else {
                throw RPCError.invalidParams("strategy[\(index)].strategy", "\"\(name)\" is not one of \(names.joined(separator: ", "))")
            }
            return (try QuantizeTargets.compile(pattern, param: "strategy[\(index)].pattern"), strategy)
        }
        return { name in rules.first { $0.0.matches(name) }?.1 ?? .auto }
    }

    struct LayerMergeOutcome: Sendable {
        var weight: any QuantizedWeight
        var sidecar: LoRALayer?
        var report: JSONValue
    }

    /// One layer: the pre-flight numbers, then the strategy.
    static func mergeLayer(_ layer: LoRALayer, adapter: LoRAAdapter, into quantizedLayer: QuantizedLayer, original: Matrix<Float>?,
                           strategy requested: MergeStrategy) throws -> LayerMergeOutcome {
        let q = quantizedLayer.weight
        let dequantized = q.dequantized()
        let target = adapter.adaptedWeight(base: dequantized, layer: layer)                // Q + ΔW (DoRA renormalised)
        let delta = LayerErrors.residual(original: target, approximation: dequantized)
        let deltaSquared = LayerErrors.squaredNorm(delta)
        let requantized = try Quantizer.quantize(target, name: layer.weightName, spec: q.spec)
        let requantizedValues = requantized.dequantized()
        let lostSquared = LayerErrors.squaredNorm(LayerErrors.residual(original: target, approximation: requantizedValues))
        let requantizeLoss = LayerErrors.ratio(lostSquared, deltaSquared)
        let changed = zip(requantizedValues.values, dequantized.values).reduce(0) { $0 + ($1.0 != $1.1 ? 1 : 0) }
        var report: JSONObject = [
            "name": .string(layer.weightName),
            "deltaRelative": .double(LayerErrors.ratio(deltaSquared, LayerErrors.squaredNorm(dequantized))),
            "changedWeightFraction": .double(Double(changed) / Double(max(1, target.values.count))),
            "requantizeAdapterLoss": .double(requantizeLoss),
        ]
        if let original {
            let stepRMS = (12 * LayerErrors.squaredNorm(LayerErrors.residual(original: original, approximation: dequantized)) / Double(max(1, original.values.count))).squareRoot()
            let deltaRMS = (deltaSquared / Double(max(1, delta.values.count))).squareRoot()
            report["deltaOverStep"] = .double(stepRMS > 0 ? deltaRMS / stepRMS : .infinity)
        }
        var strategy = requested
        let foldable = layer.poolingGroupSize != nil && (q as? GroupedGridWeight).map { $0.levels == .integer && $0.groupIndex == nil } == true
        if strategy == .auto {
            strategy = foldable ? .exactZeroPoint : (requantizeLoss <= 0.05 ? .requantize : .sidecar)
        }
        var weight: any QuantizedWeight = requantized
        var sidecar: LoRALayer?
        var finalValues = requantizedValues
        switch strategy {
        case .requantize, .auto: break
        case .higherPrecision:
            weight = try Quantizer.quantize(target, name: layer.weightName, spec: QuantizationSpec(method: .int, bits: 8, groupSize: 64))
            finalValues = weight.dequantized()
        case .sidecar:
            weight = q
            sidecar = layer
            finalValues = target
        case .exactZeroPoint:
            guard foldable, let grid = q as? GroupedGridWeight else {
                throw RPCError.invalidParams("strategy", "\(layer.weightName): exact-zero-point needs a qa-lora adapter on an INT-k grid with contiguous groups")
            }
            weight = try QALoRAMerge.fold(grid, layer: layer, scale: adapter.scale(of: layer))
            finalValues = weight.dequantized()
        case .recompensate:
            let residual = LayerErrors.residual(original: target, approximation: requantizedValues)
            let rank = min(layer.rank, min(residual.rowCount, residual.columnCount))
            let factors = try LowRankCorrection.fit(error: residual, rank: rank, svd: SVDChoice.automatic(rank: rank, seed: 0))
            let extra = LoRALayer(module: layer.module, alpha: Double(rank) * (adapter.useRSLoRA ? 1 / Double(rank).squareRoot() : 1),
                                  loraA: LowRankProduct.narrowed(factors.loraA), loraB: LowRankProduct.narrowed(factors.loraB))
            sidecar = extra
            let correction = LowRankProduct.delta(loraB: extra.loraB, loraA: extra.loraA, scale: 1)
            finalValues = Matrix(rowCount: requantizedValues.rowCount, columnCount: requantizedValues.columnCount,
                                 values: zip(requantizedValues.values, correction.values).map { $0 + $1 })
        }
        let finalLoss = LayerErrors.ratio(LayerErrors.squaredNorm(LayerErrors.residual(original: target, approximation: finalValues)), deltaSquared)
        report["strategy"] = .string(strategy.rawValue)
        report["adapterLoss"] = .double(finalLoss)
        report["adapterRetained"] = .double(max(0, 1 - finalLoss))
        report["bitsPerWeight"] = .double(weight.bitsPerWeight)
        return LayerMergeOutcome(weight: weight, sidecar: sidecar, report: .object(report))
    }
}
