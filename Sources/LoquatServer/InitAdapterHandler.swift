import Adapters
import Checkpoints
import JSON
import JSONRPC
import LinearAlgebra
import Quantization
import Tensors

extension LoquatServer {
    static let initAdapterParams: Set<String> = [
        "model", "base", "method", "rank", "alpha", "useRSLoRA", "useDoRA", "iterations", "calibration", "targets", "exclude",
        "rankPattern", "alphaPattern", "seed", "svd", "damping", "candidates", "activationWeighted", "name", "modelName",
    ]

    /// `initAdapter {model, base?, method, rank, alpha?, useRSLoRA?, useDoRA?, iterations?, calibration?, targets?,
    /// exclude?, rankPattern?, alphaPattern?, seed?, svd?, damping?, candidates?, activationWeighted?, name?, modelName?}`
    /// → `{adapter, model?, method, rank, alpha, layers: [{name, rank, alpha, method, weightErrorBefore, weightErrorAfter,
    /// outputErrorBefore?, outputErrorAfter?, svd?, …}], seconds}`.
    ///
    /// `model` is a quantized handle (or a full-precision one for lora/gaussian/pissa/olora); `base`
    /// the full-precision source, by default the model it was quantized from. Layers run in
    /// parallel; `$/progress` per layer, `$/cancelRequest` between layers. Methods that replace the
    /// base (pissa, olora, loftq, lq-lora, and auto when it picks loftq) register a new model
    /// (`modelName`, or `<model>-<method>`), sharing every other tensor.
    func initAdapter(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: Self.initAdapterParams)
        let started = ContinuousClock.now
        let resident = try workspace.model(try params.requiredString("model"))
        let method = AdapterInitMethod(rawValue: try params.optionalChoice("method", AdapterInitMethod.allCases.map(\.rawValue))
            ?? { throw RPCError.invalidParams("method", "missing required parameter; one of " + AdapterInitMethod.allCases.map(\.rawValue).joined(separator: ", ")) }())!
        let rank = try params.requiredInt("rank")
        let alpha = try params.optionalDouble("alpha", positive: true) ?? Double(rank)
        let baseResident = try adapterBase(of: resident, requested: try params.optionalString("base"))
        let quantized = resident.quantized

        var options = AdapterInitOptions(method: method)
        options.useRSLoRA = try params.optionalBool("useRSLoRA") ?? false
        options.useDoRA = try params.optionalBool("useDoRA") ?? false
        options.iterations = try params.optionalInt("iterations")
        options.svdMode = try params.optionalChoice("svd", ["exact", "randomized"]).flatMap(SVDChoice.Mode.init(rawValue:))
        options.seed = UInt64(try params.optionalNonNegativeInt("seed") ?? 0)
        options.relativeDamping = try params.optionalDouble("damping", nonNegative: true) ?? 0.01
        options.activationWeighted = try params.optionalBool("activationWeighted") ?? false
        if let names = try params.optionalStrings("candidates") {
            guard method == .auto else { throw RPCError.invalidParams("candidates", "only auto takes candidates") }
            let allowed = AdapterInitMethod.allCases.filter { $0 != .auto }
            options.candidates = try names.map { name in
                guard let candidate = AdapterInitMethod(rawValue: name), candidate != .auto else {
                    throw RPCError.invalidParams("candidates", "\"\(name)\" is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
                }
                return candidate
            }
        }
        if method.needsQuantizedModel && quantized == nil {
            throw RPCError.invalidParams("model", "\(method.rawValue) compensates a quantization error: \"\(resident.handle)\" is not quantized; pass a handle made by `quantize`")
        }
        let calibrationHandle = try params.optionalString("calibration")
        let needsCalibration = method.needsCalibration || options.candidates.contains(where: \.needsCalibration)
            || (method == .lqLoRA && options.activationWeighted)
        if needsCalibration && calibrationHandle == nil {
            throw RPCError.invalidParams("calibration", "\(method.rawValue) needs the layers' input statistics: pass a calibration handle from `calibrate`")
        }
        let calibration = try calibrationHandle.map { try calibrations.set($0) }
        if let calibration {
            let related = Set([resident.handle, baseResident.handle, quantized?.sourceHandle].compactMap { $0 })
            guard related.contains(calibration.modelHandle) else {
                throw RPCError.invalidParams("calibration", "\(calibration.handle) was recorded on \"\(calibration.modelHandle)\", not on \"\(resident.handle)\" or its base \"\(baseResident.handle)\"")
            }
        }

        let layerNames = try adapterTargets(resident, targets: try params.optionalStrings("targets"), exclude: try params.optionalStrings("exclude") ?? [])
        let rankPattern = try AdapterPatterns(try params.optionalNumberMap("rankPattern", integers: true), param: "rankPattern")
        let alphaPattern = try AdapterPatterns(try params.optionalNumberMap("alphaPattern", integers: false), param: "alphaPattern")
        let inputs = try layerNames.map { name -> LayerInitInput in
            let module = Self.moduleName(name)
            guard let tensor = baseResident.checkpoint.tensor(named: name), tensor.shape.count == 2 else {
                throw RPCError.invalidParams("base", "\"\(baseResident.handle)\" has no 2-D weight \(name)")
            }
            let layer = quantized?.layers[name]
            if let layer, layer.shape != tensor.shape {
                throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(name)",
                               data: ["param": "base", "layer": .string(name),
                                      "reason": .string("the base \"\(baseResident.handle)\" has \(name) as \(tensor.shape) but \"\(resident.handle)\" has \(layer.shape)")])
            }
            let layerCalibration = try calibration?.statistics(for: name, inputWidth: tensor.shape[1])
            let layerRank = rankPattern.value(for: module).map { Int($0) } ?? rank
            let limit = min(tensor.shape[0], tensor.shape[1])
            guard layerRank <= limit else {
                let reason = "rank \(layerRank) is larger than min(out, in) = \(limit) of \(name) \(tensor.shape)"
                let param = rankPattern.value(for: module) != nil ? "rankPattern" : "rank"
                throw RPCError(code: RPCError.Code.invalidParams, message: "Invalid params: \(param): \(reason)",
                               data: ["param": .string(param), "layer": .string(name), "reason": .string(reason)])
            }
            // The weight is decoded later, per layer, inside the parallel job.
            return LayerInitInput(module: module, weight: Matrix(zeros: 0, 0), quantized: layer?.weight, calibration: layerCalibration,
                                  rank: layerRank, alpha: alphaPattern.value(for: module) ?? alpha)
        }
        let adapterHandle = try adapters.newHandle(requested: try params.optionalString("name"))

        let progress = context.progress(title: "initAdapter \(method.rawValue) on \(resident.handle)")
        progress.begin(message: "\(inputs.count) layers")
        defer { progress.end() }
        let cancellation = context.cancellation
        let checkpoint = baseResident.checkpoint
        let results = try BLASRuntime.singleThreaded(when: inputs.count > 1) {
            try ParallelLayers.map(names: layerNames, checkpoint: checkpoint, method: call.method, report: { name, done, total in
                progress.report(message: name, completed: done, total: total)
            }, isCancelled: { cancellation.isCancelled }) { index in
                do {
                    var input = inputs[index]
                    input.weight = try checkpoint.tensor(named: layerNames[index])!.float32MatrixAnyDType()
                    return try AdapterInitializer.initialize(input, options: options)
                } catch {
                    throw LayerFailure(layer: layerNames[index], underlying: error)
                }
            }
        }
        try context.checkCancellation()

        let newModelHandle = try registerNewBase(results: results, names: layerNames, resident: resident, base: baseResident,
                                                 method: method, requested: try params.optionalString("modelName"), request: call.params ?? .null)
        let adapter = LoRAAdapter(layers: results.map(\.layer), rank: rank, alpha: alpha, useRSLoRA: options.useRSLoRA,
                                  useDoRA: options.useDoRA,
                                  rankPattern: Dictionary(rankPattern.entries.map { ($0.key, Int($0.value)) }, uniquingKeysWith: { a, _ in a }),
                                  alphaPattern: Dictionary(alphaPattern.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
                                  baseModelNameOrPath: baseResident.checkpoint.path, initMethod: method.rawValue)
        try adapters.register(ResidentAdapter(handle: adapterHandle, adapter: adapter, modelHandle: newModelHandle ?? resident.handle,
                                              baseHandle: baseResident.handle, origin: ["method": .string(call.method), "params": call.params ?? .null]))
        var result: JSONObject = [
            "adapter": .string(adapterHandle),
            "model": .string(newModelHandle ?? resident.handle),
            "base": .string(baseResident.handle),
            "method": .string(method.rawValue),
            "rank": .int(rank),
            "alpha": .double(alpha),
            "useRSLoRA": .bool(options.useRSLoRA),
            "useDoRA": .bool(options.useDoRA),
            "modelChanged": .bool(newModelHandle != nil),
            "layers": .array(zip(layerNames, results).map { Self.initReport(name: $0, result: $1, useRSLoRA: options.useRSLoRA) }),
        ]
        result["summary"] = Self.initSummary(results)
        result["seconds"] = .double((ContinuousClock.now - started).seconds)
        return .object(result)
    }

    /// The full-precision model an adapter on `resident` approximates.
    func adapterBase(of resident: ResidentModel, requested: String?) throws -> ResidentModel {
        if let requested {
            let base = try workspace.model(requested)
            guard base.quantized == nil else {
                throw RPCError.invalidParams("base", "\"\(requested)\" is quantized; base must be the full-precision model")
            }
            return base
        }
        guard let quantized = resident.quantized else { return resident }
        guard let source = quantized.sourceHandle else {
            throw RPCError.invalidParams("base", "\"\(resident.handle)\" was read from a file and has no resident source; load the full-precision model and pass it as base")
        }
        return try workspace.model(source)
    }

    /// The weights to adapt: the quantized layers of a quantized model (narrowed by `targets`
    /// globs), or the default linear layers of a full-precision one.
    func adapterTargets(_ resident: ResidentModel, targets: [String]?, exclude: [String]) throws -> [String] {
        if let quantized = resident.quantized {
            var names = quantized.orderedLayers.map(\.name)
            if let targets {
                let selected = Set(try QuantizeTargets.select(quantized.base, targets: targets, exclude: []))
                if let stray = selected.first(where: { quantized.layers[$0] == nil }) {
                    throw RPCError.invalidParams("targets", "\(stray) is not quantized in \"\(resident.handle)\"; an adapter compensates quantized layers")
                }
                names = names.filter(selected.contains)
            }
            let excluded = try exclude.map { try QuantizeTargets.compile($0, param: "exclude") }
            names = names.filter { name in !excluded.contains { $0.matches(name) } }
            guard !names.isEmpty else { throw RPCError.invalidParams("targets", "no quantized layer is left to adapt") }
            return names
        }
        return try QuantizeTargets.select(resident.checkpoint, targets: targets, exclude: exclude)
    }

    /// `model.layers.0.self_attn.q_proj.weight` → `model.layers.0.self_attn.q_proj`.
    static func moduleName(_ weightName: String) -> String {
        weightName.hasSuffix(".weight") ? String(weightName.dropLast(".weight".count)) : weightName
    }
}
