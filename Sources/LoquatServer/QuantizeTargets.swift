import Checkpoints
import JSONRPC
import Quantization
import Tensors

/// Which tensors of a checkpoint `quantize` (and `quantize/plan`) works on.
///
/// The default targets are the linear weights of the transformer blocks:
/// - llama family: `model.layers.*.self_attn.{q,k,v,o}_proj.weight`, `model.layers.*.mlp.{gate,up,down}_proj.weight`;
/// - BERT: `encoder.layer.*.attention.self.{query,key,value}.weight`,
///   `encoder.layer.*.attention.output.dense.weight`, `encoder.layer.*.intermediate.dense.weight`,
///   `encoder.layer.*.output.dense.weight` (also under a `bert.` prefix).
/// Embeddings, norms, the pooler and lm_head stay untouched unless `targets` names them. Only
/// 2-D floating-point (or GGUF block) tensors can be quantized; a pattern may match others, but
/// each pattern must match at least one quantizable tensor (`exclude`: at least one tensor), so
/// that a typo is an error rather than a silent no-op.
enum QuantizeTargets {
    static func defaultPatterns(architecture: String) -> [String]? {
        switch architecture {
        case "llama":
            return ["model.layers.*.self_attn.{q,k,v,o}_proj.weight", "model.layers.*.mlp.{gate,up,down}_proj.weight"]
        case "bert":
            return ["{,bert.}encoder.layer.*.attention.self.{query,key,value}.weight",
                    "{,bert.}encoder.layer.*.attention.output.dense.weight",
                    "{,bert.}encoder.layer.*.intermediate.dense.weight",
                    "{,bert.}encoder.layer.*.output.dense.weight"]
        default:
            return nil
        }
    }

    static func isQuantizable(_ tensor: Tensor) -> Bool {
        tensor.shape.count == 2 && (tensor.dtype.isFloatingPoint || tensor.dtype.isBlockQuantized) && tensor.elementCount > 0
    }

    static func compile(_ text: String, param: String) throws -> GlobPattern {
        do {
            return try GlobPattern(text)
        } catch let error as GlobPattern.SyntaxError {
            throw RPCError.invalidParams(param, error.description)
        }
    }

    /// The selected layer names in checkpoint order. `targets` nil means the defaults.
    static func select(_ checkpoint: LoadedCheckpoint, targets: [String]?, exclude: [String]) throws -> [String] {
        let tensors = checkpoint.tensors
        var selected = Set<String>()
        if let targets {
            for (index, text) in targets.enumerated() {
                let param = targets.count == 1 ? "targets" : "targets[\(index)]"
                let pattern = try compile(text, param: param)
                let matched = tensors.filter { pattern.matches($0.name) }
                let usable = matched.filter(isQuantizable)
                guard !usable.isEmpty else {
                    if matched.isEmpty {
                        throw RPCError.invalidParams(param, "pattern \"\(text)\" matches no tensor of the model")
                    }
                    throw RPCError.invalidParams(param, "pattern \"\(text)\" matches only tensors that cannot be quantized "
                                                 + "(not 2-D floating point): " + matched.prefix(4).map(\.name).joined(separator: ", "))
                }
                selected.formUnion(usable.map(\.name))
            }
        } else {
            guard let defaults = defaultPatterns(architecture: checkpoint.architecture) else {
                throw RPCError.invalidParams("targets", "there are no default targets for architecture \"\(checkpoint.architecture)\"; "
                                             + "name the weights with glob patterns, e.g. [\"*.weight\"]")
            }
            let patterns = try defaults.map { try compile($0, param: "targets") }
            selected = Set(tensors.filter { tensor in isQuantizable(tensor) && patterns.contains { $0.matches(tensor.name) } }.map(\.name))
            guard !selected.isEmpty else {
                throw RPCError.invalidParams("targets", "no tensor matches the default \(checkpoint.architecture) targets "
                                             + defaults.joined(separator: ", ") + "; name the weights with glob patterns")
            }
        }
        for (index, text) in exclude.enumerated() {
            let param = exclude.count == 1 ? "exclude" : "exclude[\(index)]"
            let pattern = try compile(text, param: param)
            let matched = tensors.filter { pattern.matches($0.name) }.map(\.name)
            guard !matched.isEmpty else {
                throw RPCError.invalidParams(param, "pattern \"\(text)\" matches no tensor of the model")
            }
            selected.subtract(matched)
        }
        guard !selected.isEmpty else {
            throw RPCError.invalidParams("exclude", "excludes every targeted layer; nothing would be quantized")
        }
        return tensors.map(\.name).filter(selected.contains)
    }

    /// A `plan` entry: layers matching `pattern` take `spec` (the first matching entry wins).
    struct PlanEntry {
        let pattern: GlobPattern
        let spec: QuantizationSpec
        let param: String
    }

    /// Each selected layer's spec: the first plan entry whose pattern matches, else `fallback`;
    /// layers with neither are left out. Every plan entry must match a selected layer (an
    /// entry shadowed by earlier ones is allowed).
    static func assign(_ layers: [String], plan: [PlanEntry], fallback: QuantizationSpec?) throws -> [(String, QuantizationSpec)] {
        for entry in plan where !layers.contains(where: { entry.pattern.matches($0) }) {
            throw RPCError.invalidParams(entry.param, "pattern \"\(entry.pattern)\" matches none of the targeted layers")
        }
        var assigned: [(String, QuantizationSpec)] = []
        for name in layers {
            if let entry = plan.first(where: { $0.pattern.matches(name) }) {
                assigned.append((name, entry.spec))
            } else if let fallback {
                assigned.append((name, fallback))
            }
        }
        guard !assigned.isEmpty else {
            throw RPCError.invalidParams("plan", "no targeted layer matches a plan entry and there is no top-level method")
        }
        return assigned
    }
}
