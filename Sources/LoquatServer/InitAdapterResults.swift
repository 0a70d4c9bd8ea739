import Adapters
import Checkpoints
import JSON
import JSONRPC
import Quantization
import Tensors

extension LoquatServer {
    /// Registers the replaced base, when a method changed it: a quantized model sharing every
    /// untouched layer and tensor, or a full-precision checkpoint with the residual weights.
    func registerNewBase(results: [LayerInitResult], names: [String], resident: ResidentModel, base: ResidentModel,
                         method: AdapterInitMethod, requested: String?, request: JSONValue) throws -> String? {
        let replaced = zip(names, results).compactMap { name, result in result.newBase.map { (name, $0) } }
        guard !replaced.isEmpty else { return nil }
        let handle = try requested.map { try workspace.newHandle(requested: $0, prefix: "model") }
            ?? freeHandle("\(resident.handle)-\(method.rawValue)")
        let provenance: JSONValue = ["method": "initAdapter", "params": request]
        if let quantized = resident.quantized {
            var layers = quantized.layers
            for (name, newBase) in replaced {
                guard case let .quantized(weight) = newBase, let old = layers[name] else { continue }
                let original = try base.checkpoint.tensor(named: name)!.float32MatrixAnyDType()
                let metrics = ErrorMetrics.weightError(original: original, approximation: weight.dequantized())
                layers[name] = QuantizedLayer(name: name, weight: weight, sourceDType: old.sourceDType, report: LayerReport(metrics))
            }
            let model = QuantizedModel(sourceHandle: base.handle, base: quantized.base, tensorNames: quantized.tensorNames,
                                       layers: layers, request: provenance)
            try workspace.register(ResidentModel(handle: handle, checkpoint: resident.checkpoint, quantized: model))
        } else {
            var byName: [String: Matrix<Float>] = [:]
            for (name, newBase) in replaced { if case let .fullPrecision(matrix) = newBase { byName[name] = matrix } }
            let source = resident.checkpoint
            let tensors = source.tensors.map { tensor in
                byName[tensor.name].map { Tensor(name: tensor.name, shape: tensor.shape, float32: $0.values) } ?? tensor
            }
            let checkpoint = source.replacingTensors(tensors)
            try workspace.register(ResidentModel(handle: handle, checkpoint: checkpoint))
        }
        return handle
    }

    /// One layer of initAdapter's report.
    static func initReport(name: String, result: LayerInitResult, useRSLoRA: Bool) -> JSONValue {
        var entry: JSONObject = [
            "name": .string(name),
            "rank": .int(result.layer.rank),
            "alpha": .double(result.layer.alpha),
            "scale": .double(LoRAScaling.scale(rank: result.layer.rank, alpha: result.layer.alpha, useRSLoRA: useRSLoRA)),
            "method": .string(result.method.rawValue),
            "weightErrorBefore": .double(result.weightErrorBefore),
            "weightErrorAfter": .double(result.weightErrorAfter),
        ]
        if let value = result.outputErrorBefore { entry["outputErrorBefore"] = .double(value) }
        if let value = result.outputErrorAfter { entry["outputErrorAfter"] = .double(value) }
        if let value = result.theoreticalOutputError { entry["outputErrorOptimum"] = .double(value) }
        if let svd = result.svd { entry["svd"] = .string(svd.rawValue) }
        if let damping = result.relativeDamping { entry["damping"] = .double(damping) }
        if let iterations = result.iterations { entry["iterations"] = .int(iterations) }
        if let group = result.layer.poolingGroupSize { entry["poolingGroupSize"] = .int(group) }
        entry["baseChanged"] = .bool(result.newBase != nil)
        return .object(entry)
    }

    /// Means over layers, and for auto how often each method won.
    static func initSummary(_ results: [LayerInitResult]) -> JSONValue {
        func mean(_ values: [Double]) -> JSONValue { values.isEmpty ? .null : .double(values.reduce(0, +) / Double(values.count)) }
        var summary: JSONObject = [
            "layerCount": .int(results.count),
            "meanWeightErrorBefore": mean(results.map(\.weightErrorBefore)),
            "meanWeightErrorAfter": mean(results.map(\.weightErrorAfter)),
        ]
        let outputBefore = results.compactMap(\.outputErrorBefore), outputAfter = results.compactMap(\.outputErrorAfter)
        if !outputAfter.isEmpty {
            summary["meanOutputErrorBefore"] = mean(outputBefore)
            summary["meanOutputErrorAfter"] = mean(outputAfter)
        }
        var counts: [String: Int] = [:]
        for result in results { counts[result.method.rawValue, default: 0] += 1 }
        summary["methods"] = .object(JSONObject(counts.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.int($0.value)) }))
        return .object(summary)
    }
}
