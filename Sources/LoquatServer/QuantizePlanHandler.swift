import Checkpoints
import JSON
import JSONRPC
import Quantization
import Tensors

extension LoquatServer {
    /// `quantize/plan {model, budgetBitsPerWeight, candidates: [{method, bits?, groupSize?, …}],
    /// targets?, exclude?}` → `{plan, predictedError, bitsPerWeight, budgetBitsPerWeight, layers, seconds}`.
    ///
    /// Every targeted layer is quantized with every candidate (in parallel across layers, with
    /// `$/progress` per layer) to measure its stored bits and its error ‖W − Q‖²_F; then
    /// `MixedPrecisionPlanner` picks one candidate per layer minimising the summed error under
    /// the average-bits budget (LQ-LoRA's knapsack). `plan` is ready for `quantize {plan}`: one
    /// entry per layer whose `pattern` is the layer's name (glob characters escaped).
    /// `predictedError` is Σ ‖W − Q‖²_F of the choices; `bitsPerWeight` what they average.
    func quantizePlan(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        _ = try Params(call, allowed: ["model", "budgetBitsPerWeight", "candidates", "targets", "exclude"])
        let reader = SpecReader(object: call.params?.objectValue ?? JSONObject(), prefix: "")
        guard let sourceHandle = try reader.string("model") else { throw RPCError.invalidParams("model", "missing required parameter") }
        let source = try workspace.model(sourceHandle)
        if source.quantized != nil {
            throw RPCError.invalidParams("model", "\"\(sourceHandle)\" is already a quantized model; plan on its source instead")
        }
        guard let budget = try reader.number("budgetBitsPerWeight") else {
            throw RPCError.invalidParams("budgetBitsPerWeight", "missing required parameter")
        }
        guard budget.isFinite, budget > 0 else { throw RPCError.invalidParams("budgetBitsPerWeight", "must be positive, got \(budget)") }
        guard let entries = try reader.objects("candidates"), !entries.isEmpty else {
            throw RPCError.invalidParams("candidates", "give at least one candidate {method, bits, groupSize, …}")
        }
        let candidates = try entries.map { entry in
            try entry.requireOnly(SpecReader.keys)
            let spec = try entry.spec(methodRequired: true)!
            if spec.method == .gptq {
                throw RPCError.invalidParams(entry.prefix + "method", "gptq needs calibration, which quantize/plan does not take")
            }
            return spec
        }
        try requireImplemented(fallback: nil, plan: candidates.enumerated().map { index, spec in
            // requireImplemented names `…pattern` params after their `…method`.
            QuantizeTargets.PlanEntry(pattern: try GlobPattern("*"), spec: spec, param: "candidates[\(index)].pattern")
        })
        let checkpoint = source.checkpoint
        let layers = try QuantizeTargets.select(checkpoint, targets: try reader.strings("targets"), exclude: try reader.strings("exclude") ?? [])
        for name in layers {
            let columns = checkpoint.tensor(named: name)?.shape.last ?? 0
            for (index, spec) in candidates.enumerated() {
                do {
                    try spec.validate(columnCount: columns)
                } catch let error as QuantizationError {
                    throw RPCError.invalidParams("candidates[\(index)].\(error.parameter ?? "method")",
                                                 "layer \(name): \(SpecReader.reason(error))")
                }
            }
        }

        let start = ContinuousClock.now
        let progress = context.progress(title: "Planning \(sourceHandle)")
        progress.begin(message: "\(layers.count) layers × \(candidates.count) candidates")
        defer { progress.end() }
        let cancellation = context.cancellation
        let measured = try ParallelLayers.map(names: layers, checkpoint: checkpoint, method: call.method, report: { name, done, total in
            progress.report(message: name, completed: done, total: total)
        }, isCancelled: { cancellation.isCancelled }) { index in
            try Self.measure(layers[index], in: checkpoint, candidates: candidates)
        }
        try context.checkCancellation()
        let plan = try MixedPrecisionPlanner.plan(layers: measured, budgetBitsPerWeight: budget)
        return [
            "model": .string(sourceHandle),
            "plan": .array(plan.choices.map { choice in
                var entry: JSONObject = ["pattern": .string(Self.escapeGlob(choice.layer))]
                for (key, value) in QuantizeLedger.specFields(choice.spec) { entry[key] = value }
                return .object(entry)
            }),
            "predictedError": .double(plan.predictedError),
            "bitsPerWeight": .double(plan.achievedBitsPerWeight),
            "budgetBitsPerWeight": .double(budget),
            "layers": .array(zip(measured, plan.choices).map { layer, choice in
                ["name": .string(layer.name), "choice": .int(choice.candidateIndex),
                 "candidates": .array(layer.candidates.map { ["bitsPerWeight": .double($0.bitsPerWeight), "error": .double($0.error)] })]
            }),
            "seconds": .double(QuantizeLedger.rounded((ContinuousClock.now - start).seconds, places: 6)),
        ]
    }

    /// One layer under every candidate: stored bits per weight and ‖W − Q‖²_F.
    static func measure(_ name: String, in checkpoint: LoadedCheckpoint, candidates: [QuantizationSpec]) throws -> MixedPrecisionLayer {
        do {
            guard let tensor = checkpoint.tensor(named: name) else {
                throw QuantizationError.unsupportedShape(layer: name, reason: "no such tensor")
            }
            let original = try tensor.float32MatrixAnyDType()
            let measured = try candidates.map { spec in
                let weight = try Quantizer.quantize(original, name: name, spec: spec)
                let metrics = ErrorMetrics.weightError(original: original, approximation: weight.dequantized())
                return MixedPrecisionCandidate(spec: spec, bitsPerWeight: weight.bitsPerWeight, error: metrics.errorSquaredNorm)
            }
            return MixedPrecisionLayer(name: name, parameterCount: tensor.elementCount, candidates: measured)
        } catch {
            throw LayerFailure(layer: name, underlying: error)
        }
    }

    /// `name` as a glob that matches exactly it.
    static func escapeGlob(_ name: String) -> String {
        var escaped = ""
        for character in name {
            if "*?[]{}\\,".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
