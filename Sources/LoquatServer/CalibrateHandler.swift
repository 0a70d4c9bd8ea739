import Checkpoints
import Foundation
import JSON
import JSONRPC
import Models
import Quantization
import Synchronization

/// Calibration statistics kept between requests: per linear weight name, the layer-input
/// statistics `quantize` (GPTQ, outputRelativeError) consumes. Immutable once registered.
final class CalibrationSet: Sendable {
    let handle: String
    /// The model it was recorded on (by handle, at the time).
    let modelHandle: String
    let tokenCount: Int
    let layers: [String: LayerCalibration]

    init(handle: String, modelHandle: String, tokenCount: Int, layers: [String: LayerCalibration]) {
        self.handle = handle
        self.modelHandle = modelHandle
        self.tokenCount = tokenCount
        self.layers = layers
    }
}

extension CalibrationSet {
    /// The statistics of weight `name`, which must take `inputWidth` inputs: -32602 naming the
    /// layer when the set has none, -32003 when it recorded another width.
    func statistics(for name: String, inputWidth: Int) throws -> LayerCalibration {
        guard let statistics = layers[name] else {
            throw RPCError.invalidParams("calibration", "\(handle) has no statistics for \(name) (recorded on \(modelHandle))")
        }
        guard statistics.gram.rowCount == inputWidth else {
            throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(name)",
                           data: ["param": "calibration", "layer": .string(name),
                                  "reason": .string("\(name) takes \(inputWidth) inputs but \(handle) recorded \(statistics.gram.rowCount)")])
        }
        return statistics
    }
}

/// The resident calibration sets, by handle.
final class CalibrationStore: Sendable {
    private let sets = Mutex<[String: CalibrationSet]>([:])
    private let serial = Atomic<Int>(1)

    func newHandle(requested: String?) throws -> String {
        if let requested {
            guard sets.withLock({ $0[requested] == nil }) else { throw WorkspaceError.handleTaken(requested) }
            return requested
        }
        while true {
            let candidate = "calibration-\(serial.add(1, ordering: .relaxed).oldValue)"
            if sets.withLock({ $0[candidate] == nil }) { return candidate }
        }
    }

    func register(_ set: CalibrationSet) { sets.withLock { $0[set.handle] = set } }

    func set(_ handle: String) throws -> CalibrationSet {
        guard let set = sets.withLock({ $0[handle] }) else {
            throw RPCError(code: RPCError.Code.notFound, message: "Not found: no calibration set named \"\(handle)\"",
                           data: ["param": "calibration", "handle": .string(handle),
                                  "reason": .string("no calibration set named \"\(handle)\"; record one with `calibrate`")])
        }
        return set
    }
}

extension LoquatServer {
    /// `calibrate {model, text? | textFile?, contextLength?, sampleCount?, name?}` →
    /// `{calibration, model, tokenCount, windowCount, layers: [{name, inputWidth}], seconds}`.
    ///
    /// Runs the forward pass over non-overlapping windows of the text (`contextLength`, default
    /// 512; at most `sampleCount` windows) and records, per targeted linear layer, the fp64 Gram
    /// matrix XᵀX of its inputs and the per-channel mean |x| and RMS. q/k/v share one input, as do
    /// gate/up. `$/progress` per window; `$/cancelRequest` between windows. Llama family and BERT
    /// (`encoder.layer.N.…` names; windows are `[CLS] ≤ contextLength − 2 ids [SEP]`).
    func calibrate(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: ["model", "text", "textFile", "contextLength", "sampleCount", "seed", "targets", "name"])
        let started = ContinuousClock.now
        let resident = try workspace.model(try params.requiredString("model"))
        let architecture = (resident.quantized?.base.config ?? resident.checkpoint.config)?.architecture
        if architecture != .bert { try requireLlama(resident) }
        let handle = try calibrations.newHandle(requested: try params.optionalString("name"))
        let text = try evaluationText(params)
        let contextLength = try params.optionalInt("contextLength") ?? 512
        let tokenizer = try TokenizerLoader.load(for: resident.checkpoint)
        let windows: [[Int]]
        let collect: (_ windows: [[Int]], _ progress: (Int, Int) throws -> Void) throws -> [String: LayerCalibration]
        if architecture == .bert {
            // BERT: the text's ids without specials in chunks of ≤ contextLength − 2, each wrapped
            // as [CLS] … [SEP] (BertCalibration.windows).
            let model = try BertModel(checkpoint: ForwardModelCache.forwardCheckpoint(of: resident))
            guard contextLength >= 4, contextLength <= model.maxPositions else {
                throw RPCError.invalidParams("contextLength", "must be in 4…\(model.maxPositions) (the model's max_position_embeddings), got \(contextLength)")
            }
            let specials = tokenizer.encode("", addSpecialTokens: true).map(Int.init)
            guard specials.count == 2 else {
                throw RPCError.invalidParams("model", "the tokenizer does not wrap a sequence in [CLS] … [SEP]")
            }
            let tokens = tokenizer.encode(text, addSpecialTokens: false).map(Int.init)
            var bertWindows = BertCalibration.windows(tokens: tokens, contextLength: contextLength,
                                                      classToken: specials[0], separatorToken: specials[1])
            if let sampleCount = try params.optionalInt("sampleCount") { bertWindows = Array(bertWindows.prefix(sampleCount)) }
            guard !bertWindows.isEmpty else {
                throw RPCError.invalidParams("text", "the text has no tokens; calibration needs at least 1")
            }
            windows = bertWindows
            collect = { try BertCalibration.collect(model: model, windows: $0, progress: $1) }
        } else {
            let model = try forwardModels.model(for: resident, residents: workspace.allModels())
            guard contextLength >= 4, contextLength <= model.configuration.maxPositionEmbeddings else {
                throw RPCError.invalidParams("contextLength", "must be in 4…\(model.configuration.maxPositionEmbeddings) (the model's max_position_embeddings), got \(contextLength)")
            }
            let tokens = tokenizer.encode(text, addSpecialTokens: true).map(Int.init)
            var llamaWindows = stride(from: 0, to: tokens.count, by: contextLength).map { Array(tokens[$0..<min($0 + contextLength, tokens.count)]) }
            llamaWindows.removeAll { $0.count < 2 }
            if let sampleCount = try params.optionalInt("sampleCount") { llamaWindows = Array(llamaWindows.prefix(sampleCount)) }
            guard !llamaWindows.isEmpty else {
                throw RPCError.invalidParams("text", "the text has \(tokens.count) tokens; calibration needs at least 2")
            }
            windows = llamaWindows
            collect = { try LlamaCalibration.collect(model: model, windows: $0, progress: $1) }
        }
        let progress = context.progress(title: "Calibrating \(resident.handle)")
        progress.begin(message: "\(windows.count) windows of ≤ \(contextLength) tokens")
        defer { progress.end() }
        var layers = try collect(windows) { done, total in
            try context.checkCancellation()
            progress.report(message: "window \(done) of \(total)", completed: done, total: total)
        }
        if let targets = try params.optionalStrings("targets") {
            let patterns = try targets.map { try GlobPattern($0) }
            layers = layers.filter { name, _ in patterns.contains { $0.matches(name) } }
            guard !layers.isEmpty else { throw RPCError.invalidParams("targets", "no linear layer matches \(targets)") }
        }
        let tokenCount = windows.reduce(0) { $0 + $1.count }
        calibrations.register(CalibrationSet(handle: handle, modelHandle: resident.handle, tokenCount: tokenCount, layers: layers))
        let elapsed = ContinuousClock.now - started
        return [
            "calibration": .string(handle), "model": .string(resident.handle), "tokenCount": .int(tokenCount),
            "windowCount": .int(windows.count),
            "layers": .array(layers.keys.sorted(by: Self.naturalOrder).map { name in
                ["name": .string(name), "inputWidth": .int(layers[name]!.gram.rowCount)]
            }),
            "seconds": .double(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18),
        ]
    }

    /// `model.layers.2.…` before `model.layers.10.…`.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: .numeric) == .orderedAscending
    }
}
