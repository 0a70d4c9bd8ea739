import Checkpoints
import Foundation
import JSON
import JSONRPC
import Models
import Synchronization
import Tensors

/// Forward-pass models built from resident objects, kept while their object is resident:
/// building one decodes every weight to Float32, which a sweep of `evaluate` calls should pay once.
final class ForwardModelCache: Sendable {
    /// Entries hold their resident object: an `ObjectIdentifier` alone can be reused by a model
    /// registered after an unload (same address), which would then get the old weights.
    private let models = Mutex<[ObjectIdentifier: (resident: ResidentModel, model: LlamaModel)]>([:])

    func model(for resident: ResidentModel, residents: [ResidentModel]) throws -> LlamaModel {
        let live = Set(residents.map { ObjectIdentifier($0) })
        let key = ObjectIdentifier(resident)
        if let cached = models.withLock({ cache -> LlamaModel? in
            cache = cache.filter { entry in live.contains(entry.key) && residents.contains { $0 === entry.value.resident } }
            guard let entry = cache[key], entry.resident === resident else { return nil }
            return entry.model
        }) {
            return cached
        }
        let built = try LlamaModel(checkpoint: Self.forwardCheckpoint(of: resident))
        models.withLock { $0[key] = (resident, built) }
        return built
    }

    /// The checkpoint a forward pass reads: the resident one, or for a quantized model its
    /// dequantized layers beside the shared untouched tensors.
    static func forwardCheckpoint(of resident: ResidentModel) -> LoadedCheckpoint {
        guard let quantized = resident.quantized else { return resident.checkpoint }
        let base = quantized.base
        return base.replacingTensors(quantized.dequantizedTensors())
    }
}

extension LoquatServer {
    static let evaluateMetrics = ["perplexity", "kld", "top1Agreement", "deltaProbability"]
    static let layerMetrics = ["weightError", "outputError"]

    /// `evaluate {model, reference?, metrics, text? | textFile?, contextLength?, maxChunks?, scoring?}`
    /// → `{model, perplexity?: {value, standardError, scoredTokenCount, chunkCount, scoring},
    /// kld?, top1Agreement?, deltaProbability?, tokenCount, contextLength, seconds}`.
    ///
    /// Perplexity follows formats.md §6.2/§6.3: `scoring: "all"` (Hugging Face, every next token
    /// of non-overlapping windows) or `"second-half"` (llama.cpp's llama-perplexity). The
    /// reference metrics compare next-token distributions position by position on the same
    /// windows, on the fly: KL(P_reference ‖ P_model) in nats, the share of positions whose
    /// argmax agrees, and the mean change in the probability of the actual next token.
    func evaluate(_ call: IncomingCall, _ context: RequestContext) throws -> JSONValue {
        let params = try Params(call, allowed: ["model", "reference", "metrics", "text", "textFile", "contextLength",
                                                "maxChunks", "scoring", "adapter", "calibration"])
        let started = ContinuousClock.now
        let resident = try workspace.model(try params.requiredString("model"))
        let adapter = try params.optionalString("adapter").map { try adapters.adapter($0) }
        let metrics = try params.requiredStrings("metrics", allowed: Self.evaluateMetrics + Self.layerMetrics + ["embeddingCosine"])
        let reference = try params.optionalString("reference").map { try workspace.model($0) }
        var result: JSONObject = ["model": .string(resident.handle)]
        if let adapter { result["adapter"] = .string(adapter.handle) }
        let layerMetrics = metrics.filter(Self.layerMetrics.contains)
        if !layerMetrics.isEmpty {
            try evaluateLayers(resident, adapter: adapter, reference: reference, metrics: layerMetrics, params: params,
                               context: context, into: &result)
        }
        if metrics.contains("embeddingCosine") {
            try evaluateEmbeddings(resident, adapter: adapter, reference: reference, params: params, context: context, into: &result)
        }
        let forwardMetrics = metrics.filter(Self.evaluateMetrics.contains)
        if !forwardMetrics.isEmpty {
            try evaluateLanguageModel(resident, adapter: adapter, reference: reference, metrics: forwardMetrics, params: params,
                                      context: context, into: &result)
        }
        let elapsed = ContinuousClock.now - started
        result["seconds"] = .double(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        return .object(result)
    }

    /// perplexity, kld, top1Agreement, deltaProbability: the Llama forward pass over the text.
    func evaluateLanguageModel(_ resident: ResidentModel, adapter: ResidentAdapter?, reference: ResidentModel?, metrics: [String],
                               params: Params, context: RequestContext, into result: inout JSONObject) throws {
        let referenceMetrics = metrics.filter { $0 != "perplexity" }
        if !referenceMetrics.isEmpty && reference == nil {
            throw RPCError.invalidParams("reference", "\(referenceMetrics.joined(separator: ", ")) compare against a reference model; name one")
        }
        for model in [resident] + (reference.map { [$0] } ?? []) {
            if (model.quantized?.base.config ?? model.checkpoint.config)?.architecture == .bert {
                throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: \(metrics.joined(separator: ", ")) on bert",
                               data: ["param": model === resident ? "model" : "reference", "modelType": "bert",
                                      "reason": .string("\(metrics.joined(separator: ", ")) score next-token predictions of a causal LM; \(model.handle) is a BERT encoder: use embeddingCosine, weightError or outputError")])
            }
            try requireLlama(model)
        }
        let text = try evaluationText(params)
        let contextLength = try params.optionalInt("contextLength") ?? 512
        let maxChunks = try params.optionalInt("maxChunks")
        let scoringName = try params.optionalChoice("scoring", ["all", "second-half"]) ?? "all"
        let scoring: PerplexityScoring = scoringName == "all" ? .all : .secondHalf

        let tokenizer = try TokenizerLoader.load(for: resident.checkpoint)
        let tokens = tokenizer.encode(text, addSpecialTokens: true).map(Int.init)
        let residents = workspace.allModels()
        var model = try forwardModels.model(for: resident, residents: residents)
        if let adapter, !adapter.adapter.modulesToSave.isEmpty {
            // modules_to_save replace whole tensors (embeddings, norms): a fresh forward model.
            let source = ForwardModelCache.forwardCheckpoint(of: resident)
            let saved = Dictionary(adapter.adapter.modulesToSave.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            model = try LlamaModel(checkpoint: source.replacingTensors(source.tensors.map { saved[$0.name] ?? $0 }))
        }
        if let adapter {
            do {
                model = try model.applying(adapter.adapter)
            } catch let error as LlamaAdapterError {
                guard case let .mismatch(module, reason) = error else { throw error }
                throw RPCError(code: RPCError.Code.shapeMismatch, message: "Shape mismatch: \(module)",
                               data: ["param": "adapter", "layer": .string(module),
                                      "reason": .string("\(adapter.handle) does not fit \(resident.handle): \(reason)")])
            }
        }
        guard contextLength >= 4, contextLength <= model.configuration.maxPositionEmbeddings else {
            throw RPCError.invalidParams("contextLength", "must be in 4…\(model.configuration.maxPositionEmbeddings) (the model's max_position_embeddings), got \(contextLength)")
        }
        result["tokenCount"] = .int(tokens.count)
        result["contextLength"] = .int(contextLength)
        let progress = context.progress(title: "Evaluating \(resident.handle)")
        progress.begin(message: metrics.joined(separator: ", "))
        defer { progress.end() }
        if metrics.contains("perplexity") {
            let value = try Perplexity.evaluate(
                model: model, tokens: tokens, contextLength: contextLength, scoring: scoring, maxChunks: maxChunks,
                beginningOfSequence: scoring == .secondHalf ? tokenizer.beginningOfSequenceID.map(Int.init) : nil
            ) { running in
                try context.checkCancellation()
                progress.report(message: String(format: "perplexity %.4f ± %.4f", running.perplexity, running.standardError),
                                completed: running.chunkIndex + 1, total: running.chunkCount)
            }
            result["perplexity"] = ["value": .double(value.perplexity), "standardError": .double(value.standardError),
                                    "scoredTokenCount": .int(value.scoredTokenCount), "chunkCount": .int(value.chunkCount),
                                    "scoring": .string(scoringName)]
        }
        if let reference, !referenceMetrics.isEmpty {
            let referenceModel = try forwardModels.model(for: reference, residents: residents)
            guard referenceModel.configuration.vocabularySize == model.configuration.vocabularySize else {
                throw RPCError.invalidParams("reference", "\(reference.handle) has a vocabulary of \(referenceModel.configuration.vocabularySize) tokens, \(resident.handle) of \(model.configuration.vocabularySize); KLD needs the same vocabulary")
            }
            let comparison = try DistributionComparison.compare(model: model, reference: referenceModel, tokens: tokens,
                                                                contextLength: contextLength, maxChunks: maxChunks) { done, total in
                try context.checkCancellation()
                progress.report(message: "comparing with \(reference.handle)", completed: done, total: total)
            }
            if metrics.contains("kld") {
                result["kld"] = ["mean": .double(comparison.meanKLD), "standardError": .double(comparison.kldStandardError),
                                 "maximum": .double(comparison.maximumKLD)]
            }
            if metrics.contains("top1Agreement") { result["top1Agreement"] = .double(comparison.top1Agreement) }
            if metrics.contains("deltaProbability") {
                result["deltaProbability"] = ["mean": .double(comparison.meanDeltaProbability),
                                              "standardError": .double(comparison.deltaProbabilityStandardError)]
            }
            result["comparedTokenCount"] = .int(comparison.positionCount)
            result["reference"] = .string(reference.handle)
        }
    }

    func requireLlama(_ resident: ResidentModel) throws {
        let config = resident.quantized?.base.config ?? resident.checkpoint.config
        guard case .llama? = config?.architecture else {
            let type = config?.modelType ?? resident.checkpoint.architecture
            throw RPCError(code: RPCError.Code.unsupported, message: "Unsupported: architecture \(type)",
                           data: ["param": "model", "modelType": .string(type),
                                  "reason": .string("the forward pass runs the llama family so far; \(type) is not supported yet")])
        }
    }

    func evaluationText(_ params: Params) throws -> String {
        if let text = try params.optionalString("text") {
            if params.has("textFile") { throw RPCError.invalidParams("textFile", "give text or textFile, not both") }
            return text
        }
        guard let path = try params.optionalString("textFile") else {
            throw RPCError.invalidParams("text", "give the text to evaluate on, as text or textFile")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RPCError(code: RPCError.Code.notFound, message: "Not found: \(path)",
                           data: ["param": "textFile", "file": .string(path), "reason": "cannot read it as UTF-8 text"])
        }
        return text
    }
}
