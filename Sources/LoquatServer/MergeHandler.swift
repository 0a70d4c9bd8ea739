import Adapters
import Checkpoints
import JSON
import JSONRPC
import Quantization
import Tensors

/// What `merge into: "full"` added, per layer, so `model/unmerge` can take it out again: the
/// combined adapter and, for DoRA layers, the row norms of the original W (PEFT caches them too).
struct MergeRecord: Sendable {
    let sourceHandle: String
    let adapter: LoRAAdapter
    let doraNorms: [String: [Double]]
    /// The tensors `modules_to_save` replaced, as they were.
    let replacedTensors: [Tensor]
}

extension LoquatServer {
    /// `merge {model?, adapters: [{adapter, weight?}], combination?, density?, rank?, seed?, majoritySign?, into?, strategy?,
    /// name?, workDoneToken?}` → `{adapter?, model?, report: {layers, summary}, seconds}`.
    ///
    /// Without `into`, the adapters are combined into a new adapter (`combination`, default
    /// `linear`: the exact weighted sum by concatenation). With `into: "full"`, `model`'s weights
    /// (dequantized if quantized) get `W + Σ wᵢ·sᵢ·Bᵢ·Aᵢ` (DoRA renormalised) as a new model;
    /// with `into: "quantized"`, a pre-flight report per layer and a `strategy` (MergeQuantized).
    /// Sources are never modified.
    func merge(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: ["model", "adapters", "combination", "density", "rank", "seed", "majoritySign",
                                                "into", "strategy", "name", "sidecarName"])
        let started = ContinuousClock.now
        let sources = try mergeSources(call)
        let into = try params.optionalChoice("into", ["full", "quantized"])
        let method = AdapterCombinationMethod(rawValue: try params.optionalChoice("combination", AdapterCombinationMethod.allCases.map(\.rawValue)) ?? "linear")!
        let density = try params.optionalDouble("density")
        if let density, !(density > 0 && density <= 1) { throw RPCError.invalidParams("density", "must be in (0, 1], got \(density)") }
        let rank = try params.optionalInt("rank")
        let seed = UInt64(try params.optionalNonNegativeInt("seed") ?? 0)
        let majority = try params.optionalChoice("majoritySign", ["total", "frequency"]) ?? "total"
        let bases = Set(sources.compactMap { $0.resident.baseHandle })
        if bases.count > 1 {
            throw RPCError.invalidParams("adapters", "the adapters were made for different bases (\(bases.sorted().joined(separator: ", "))); merge adapters of one base")
        }
        if sources.count > 1 || sources[0].weight != 1, let withSaved = sources.first(where: { !$0.resident.adapter.modulesToSave.isEmpty }) {
            throw RPCError.invalidParams("adapters", "\(withSaved.resident.handle) carries modules_to_save (whole tensors), which have no weighted combination; merge it alone at weight 1")
        }
        let weighted = sources.map { WeightedAdapter(adapter: $0.resident.adapter, weight: $0.weight) }
        // One adapter at weight 1 is used as it is (its DoRA magnitudes and QA-LoRA pooling intact).
        let combined: (adapter: LoRAAdapter, layers: [JSONValue])
        if sources.count == 1 && sources[0].weight == 1 && (method == .linear || method == .cat) {
            combined = (sources[0].resident.adapter, sources[0].resident.adapter.layers.map { ["name": .string($0.module), "rank": .int($0.rank)] })
        } else {
            let result = try AdapterCombination.combine(weighted, method: method, rank: rank, density: density, seed: seed, majoritySign: majority)
            combined = (result.adapter, result.layers.map(Self.combinedReport))
        }
        guard let into else {
            let handle = try adapters.newHandle(requested: try params.optionalString("name"))
            try adapters.register(ResidentAdapter(handle: handle, adapter: combined.adapter, modelHandle: sources[0].resident.modelHandle,
                                                  baseHandle: bases.first, origin: ["method": "merge", "params": call.params ?? .null]))
            return ["adapter": .string(handle), "combination": .string(method.rawValue),
                    "report": ["layers": .array(combined.layers)],
                    "seconds": .double((ContinuousClock.now - started).seconds)]
        }
        let model = try workspace.model(try params.requiredString("model"))
        try Self.requireShapes(combined.adapter, fit: model.quantized?.base ?? model.checkpoint, modelHandle: model.handle)
        if into == "quantized" {
            guard let quantized = model.quantized else {
                throw RPCError.invalidParams("into", "\"\(model.handle)\" is not quantized; merge into: \"full\" instead")
            }
            if !combined.adapter.modulesToSave.isEmpty {
                throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: modules_to_save into a quantized model",
                               data: ["param": "into", "reason": "the adapter replaces whole tensors (modules_to_save); merge it into: \"full\""])
            }
            return try mergeIntoQuantized(model: model, quantized: quantized, adapter: combined.adapter, params: params,
                                          call: call, context: context, started: started)
        }
        return try mergeIntoFull(model: model, adapter: combined.adapter, combination: combined.layers, requested: try params.optionalString("name"),
                                 call: call, started: started)
    }

    /// `adapters: [{adapter, weight?}]` (or plain handles).
    func mergeSources(_ call: IncomingCall) throws -> [(resident: ResidentAdapter, weight: Double)] {
        guard let list = call.params?["adapters"]?.arrayValue, !list.isEmpty else {
            throw RPCError.invalidParams("adapters", "missing required parameter: a non-empty array of {adapter, weight?}")
        }
        return try list.enumerated().map { index, entry in
            let param = "adapters[\(index)]"
            if let handle = entry.stringValue { return (try adapters.adapter(handle), 1) }
            guard case let .object(members) = entry, let handle = members["adapter"]?.stringValue else {
                throw RPCError.invalidParams(param, "expected {adapter, weight?} or an adapter handle")
            }
            if let unknown = members.keys.first(where: { $0 != "adapter" && $0 != "weight" }) {
                throw RPCError.invalidParams(param, "unknown key \(unknown)")
            }
            var weight = 1.0
            if let value = members["weight"], value != .null {
                guard let number = value.doubleValue, number.isFinite else { throw RPCError.invalidParams(param + ".weight", "expected a number") }
                weight = number
            }
            return (try adapters.adapter(handle), weight)
        }
    }

    static func combinedReport(_ report: CombinedLayerReport) -> JSONValue {
        var entry: JSONObject = ["name": .string(report.module), "rank": .int(report.rank)]
        if let error = report.truncationError { entry["truncationError"] = .double(error) }
        if let density = report.density { entry["density"] = .double(density) }
        return .object(entry)
    }

    /// `W' = W + s·B·A` per adapted layer (DoRA: `diag(m/‖W + ΔW‖)·(W + ΔW)`), in a new
    /// full-precision model that records what was added.
    func mergeIntoFull(model: ResidentModel, adapter: LoRAAdapter, combination: [JSONValue], requested: String?,
                       call: IncomingCall, started: ContinuousClock.Instant) throws -> JSONValue {
        let source = model.quantized != nil ? ForwardModelCache.forwardCheckpoint(of: model) : model.checkpoint
        let byName = Dictionary(adapter.layers.map { ($0.weightName, $0) }, uniquingKeysWith: { a, _ in a })
        let saved = Dictionary(adapter.modulesToSave.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var replaced: [Tensor] = []
        var norms: [String: [Double]] = [:]
        var reports: [JSONValue] = []
        let tensors = try source.tensors.map { tensor -> Tensor in
            if let whole = saved[tensor.name] {
                guard whole.shape == tensor.shape else {
                    throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(tensor.name)",
                                   data: ["param": "adapters", "layer": .string(tensor.name), "reason": .string("modules_to_save holds \(whole.shape), the model \(tensor.shape)")])
                }
                replaced.append(tensor)
                reports.append(["name": .string(tensor.name), "strategy": "modules_to_save"])
                return whole
            }
            guard let layer = byName[tensor.name] else { return tensor }
            let w = try tensor.float32MatrixAnyDType()
            let merged: Matrix<Float>
            if layer.magnitude != nil {
                let result = DoRAMerge.merge(base: w, layer: layer, scale: adapter.scale(of: layer))
                merged = result.merged
                norms[layer.module] = result.cachedNorms
            } else {
                merged = adapter.adaptedWeight(base: w, layer: layer)
            }
            let delta = LayerErrors.residual(original: merged, approximation: w)
            reports.append(["name": .string(tensor.name), "rank": .int(layer.rank), "strategy": "full",
                            "deltaRelative": .double(LayerErrors.ratio(LayerErrors.squaredNorm(delta), LayerErrors.squaredNorm(w)))])
            return Tensor(name: tensor.name, shape: tensor.shape, float32: merged.values)
        }
        let checkpoint = source.replacingTensors(tensors)
        let handle = try requested.map { try workspace.newHandle(requested: $0, prefix: "model") } ?? freeHandle("\(model.handle)-merged")
        try workspace.register(ResidentModel(handle: handle, checkpoint: checkpoint,
                                             mergeRecord: MergeRecord(sourceHandle: model.handle, adapter: adapter, doraNorms: norms, replacedTensors: replaced)))
        return ["model": .string(handle), "into": "full", "source": .string(model.handle),
                "report": ["layers": .array(reports), "combination": .array(combination)],
                "seconds": .double((ContinuousClock.now - started).seconds)]
    }

    /// `model/unmerge {model, name?}` → `{model, source, layers}`: `W = W' − s·B·A`, or for DoRA
    /// `W = W'/(m/n) − s·B·A` with the norms cached at merge time, as a new model.
    func unmergeModel(_ call: IncomingCall) throws -> JSONValue {
        let params = try Params(call, allowed: ["model", "name"])
        let model = try workspace.model(try params.requiredString("model"))
        guard let record = model.mergeRecord else {
            throw RPCError.invalidParams("model", "\"\(model.handle)\" was not made by merge into: \"full\"; there is nothing to unmerge")
        }
        let byName = Dictionary(record.adapter.layers.map { ($0.weightName, $0) }, uniquingKeysWith: { a, _ in a })
        let originals = Dictionary(record.replacedTensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let tensors = try model.checkpoint.tensors.map { tensor -> Tensor in
            if let original = originals[tensor.name] { return original }
            guard let layer = byName[tensor.name] else { return tensor }
            let merged = try tensor.float32MatrixAnyDType()
            let scale = record.adapter.scale(of: layer)
            let restored: Matrix<Float>
            if let norms = record.doraNorms[layer.module] {
                restored = DoRAMerge.unmerge(merged: merged, layer: layer, scale: scale, cachedNorms: norms)
            } else {
                let delta = record.adapter.deltaWeight(of: layer)
                restored = Matrix(rowCount: merged.rowCount, columnCount: merged.columnCount,
                                  values: zip(merged.values, delta.values).map { Float(Double($0) - Double($1)) })
            }
            return Tensor(name: tensor.name, shape: tensor.shape, float32: restored.values)
        }
        let source = model.checkpoint
        let checkpoint = source.replacingTensors(tensors)
        let handle = try params.optionalString("name").map { try workspace.newHandle(requested: $0, prefix: "model") } ?? freeHandle("\(model.handle)-unmerged")
        try workspace.register(ResidentModel(handle: handle, checkpoint: checkpoint))
        return ["model": .string(handle), "source": .string(model.handle), "layerCount": .int(byName.count)]
    }
}
