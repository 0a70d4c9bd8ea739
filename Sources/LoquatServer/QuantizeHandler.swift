import Checkpoints
import JSON
import JSONRPC
import Quantization
import Tensors

extension LoquatServer {
    static let quantizeParams: Set<String> = SpecReader.keys.union(["model", "targets", "exclude", "calibration", "plan", "name"])

    /// `quantize {model, method, bits?, groupSize?, symmetric?, doubleQuant?, clipSearch?,
    /// fp8Format?, targets?, exclude?, rotate?, outliers?, calibration?, plan?, name?}` →
    /// `{model, source, bitsPerWeight, byteCount, layers: [ledger entry…], seconds}`.
    ///
    /// Registers a new resident quantized model that shares every untouched tensor with the
    /// source (which is not modified). `plan: [{pattern, method, …}]` gives layers their own
    /// spec (first matching entry wins; unmatched layers take the top-level method, or stay
    /// untouched without one). `$/progress` reports each finished layer; `$/cancelRequest` is
    /// honoured between layers.
    func quantize(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        _ = try Params(call, allowed: Self.quantizeParams)
        let reader = SpecReader(object: call.params?.objectValue ?? JSONObject(), prefix: "")
        guard let sourceHandle = try reader.string("model") else { throw RPCError.invalidParams("model", "missing required parameter") }
        let source = try workspace.model(sourceHandle)
        if source.quantized != nil {
            throw RPCError.invalidParams("model", "\"\(sourceHandle)\" is already a quantized model; quantize its source instead")
        }
        let fallback = try reader.spec(methodRequired: false)
        let planEntries = try readPlan(reader)
        guard fallback != nil || !planEntries.isEmpty else {
            throw RPCError.invalidParams("method", "missing required parameter (or give a plan)")
        }
        let specs = (fallback.map { [$0] } ?? []) + planEntries.map(\.spec)
        let calibration = try reader.string("calibration")
        if calibration == nil, specs.contains(where: { $0.method == .gptq }) {
            throw RPCError.invalidParams("calibration", "gptq needs the layers' input Hessians: pass a calibration handle from `calibrate`")
        }
        let calibrationSet = try calibration.map { try calibrations.set($0) }
        try requireImplemented(fallback: fallback, plan: planEntries)

        let checkpoint = source.checkpoint
        let layers = try QuantizeTargets.select(checkpoint, targets: try reader.strings("targets"), exclude: try reader.strings("exclude") ?? [])
        let assignments = try QuantizeTargets.assign(layers, plan: planEntries, fallback: fallback)
        var job = QuantizeJob(checkpoint: checkpoint, assignments: assignments.map { (name: $0.0, spec: $0.1) })
        if let calibrationSet {
            // Statistics must describe these layers' inputs: same names, same input widths.
            for (name, _) in job.assignments {
                let width = checkpoint.tensor(named: name)?.shape.last
                _ = try calibrationSet.statistics(for: name, inputWidth: width ?? calibrationSet.layers[name]?.gram.rowCount ?? 0)
            }
            job.calibration = calibrationSet.layers
        }
        try job.validate()
        let handle = try reader.string("name").map { try workspace.newHandle(requested: $0, prefix: "model") }
            ?? freeHandle(Self.defaultHandle(source: sourceHandle, fallback: fallback))

        let start = ContinuousClock.now
        let progress = context.progress(title: "Quantizing \(sourceHandle)")
        progress.begin(message: "\(assignments.count) layers")
        defer { progress.end() }
        let cancellation = context.cancellation
        let quantizedLayers = try job.run(method: call.method, report: { name, done, total in
            progress.report(message: name, completed: done, total: total)
        }, isCancelled: { cancellation.isCancelled })
        let seconds = (ContinuousClock.now - start).seconds
        try context.checkCancellation()

        let model = QuantizedModel(sourceHandle: sourceHandle, base: checkpoint, tensorNames: checkpoint.tensors.map(\.name),
                                   layers: Dictionary(uniqueKeysWithValues: quantizedLayers.map { ($0.name, $0) }),
                                   request: call.params ?? .null)
        try workspace.register(ResidentModel(handle: handle, checkpoint: checkpoint, quantized: model))
        return QuantizeLedger.result(handle: handle, model: model, seconds: seconds)
    }

    /// `plan: [{pattern, method, bits?, …}]` entries, each with its own complete spec (fields
    /// not given take the method's defaults, not the top level's).
    func readPlan(_ reader: SpecReader) throws -> [QuantizeTargets.PlanEntry] {
        try (reader.objects("plan") ?? []).map { entry in
            try entry.requireOnly(SpecReader.keys.union(["pattern"]))
            guard let text = try entry.string("pattern") else {
                throw RPCError.invalidParams(entry.prefix + "pattern", "missing required parameter")
            }
            return QuantizeTargets.PlanEntry(pattern: try QuantizeTargets.compile(text, param: entry.prefix + "pattern"),
                                             spec: try entry.spec(methodRequired: true)!, param: entry.prefix + "pattern")
        }
    }

    /// Methods this build has not implemented yet are refused as -32002 naming the parameter.
    func requireImplemented(fallback: QuantizationSpec?, plan: [QuantizeTargets.PlanEntry]) throws {
        let named = (fallback.map { [("method", $0.method)] } ?? [])
            + plan.map { (String($0.param.dropLast("pattern".count)) + "method", $0.spec.method) }
        for (param, method) in named where !Quantizer.isImplemented(method) {
            let available = Quantizer.implementedMethods.map(\.rawValue)
            throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: \(method.rawValue) is not implemented yet",
                           data: ["param": .string(param), "method": .string(method.rawValue),
                                  "reason": .string("\(method.rawValue) is not implemented yet in this build; implemented: "
                                                    + (available.isEmpty ? "none" : available.joined(separator: ", ")))])
        }
    }

    /// `stem`, or `stem-2`, `stem-3`, … when taken.
    func freeHandle(_ stem: String) throws -> String {
        var serial = 1
        while true {
            let candidate = serial == 1 ? stem : "\(stem)-\(serial)"
            if (try? workspace.model(candidate)) == nil { return try workspace.newHandle(requested: candidate, prefix: "model") }
            serial += 1
        }
    }

    /// `<source>-<method><bits>` (`base-nf4`, `base-int3`, `base-fp8`), or `<source>-plan`.
    static func defaultHandle(source: String, fallback: QuantizationSpec?) -> String {
        guard let spec = fallback else { return "\(source)-plan" }
        switch spec.method {
        case .nf4, .fp4, .fp8: return "\(source)-\(spec.method.rawValue)"
        default: return "\(source)-\(spec.method.rawValue)\(spec.bits)"
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
