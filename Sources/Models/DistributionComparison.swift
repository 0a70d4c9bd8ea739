import LinearAlgebra
import Tensors

/// Next-token distributions of a model against a reference on the same windows, computed on
/// the fly (no reference-logit files, unlike llama-perplexity's `--kl-divergence`).
///
/// For each scored position t with next token y: `P = softmax(reference logits)`,
/// `Q = softmax(model logits)`, `KLD_t = Σ_v P_v (log P_v − log Q_v)` (nats), top-1 agreement
/// `argmax P == argmax Q`, and `Δp_t = Q_y − P_y`. Windows are non-overlapping and every next
/// token in a window is scored (the Hugging Face convention of `Perplexity`'s `.all`).
/// Reference: llama.cpp `tools/perplexity/perplexity.cpp` (KL divergence mode) for the metrics.
public struct DistributionComparison: Sendable {
    public var positionCount = 0
    public var meanKLD = 0.0
    public var kldStandardError = 0.0
    public var maximumKLD = 0.0
    public var top1Agreement = 0.0
    public var meanDeltaProbability = 0.0
    public var deltaProbabilityStandardError = 0.0

    /// `progress(done, total)` after every window; throw from it to stop.
    public static func compare(model: LlamaModel, reference: LlamaModel, tokens: [Int], contextLength: Int,
                               maxChunks: Int?, progress: (Int, Int) throws -> Void) throws -> DistributionComparison {
        var windows: [Range<Int>] = []
        var start = 0
        while start + 1 < tokens.count {
            let end = min(start + contextLength, tokens.count)
            if end - start >= 2 { windows.append(start..<end) }
            start = end
        }
        if let maxChunks { windows = Array(windows.prefix(maxChunks)) }
        guard !windows.isEmpty else { throw PerplexityError.textTooShort(tokenCount: tokens.count, required: 2, scoring: .all) }
        var sums = Accumulator()
        for (index, window) in windows.enumerated() {
            let ids = Array(tokens[window])
            let modelLogits = try model.logits(tokens: ids)
            let referenceLogits = try reference.logits(tokens: ids)
            for row in 0..<(ids.count - 1) {
                sums.add(position(model: modelLogits.row(row), reference: referenceLogits.row(row), next: ids[row + 1]))
            }
            try progress(index + 1, windows.count)
        }
        return sums.result()
    }

    /// The three per-position quantities, in Float64.
    static func position(model: ArraySlice<Float>, reference: ArraySlice<Float>, next: Int) -> (kld: Double, agree: Bool, delta: Double) {
        let logQ = logSoftmax(model), logP = logSoftmax(reference)
        var kld = 0.0
        for index in logP.indices { kld += exp(logP[index]) * (logP[index] - logQ[index]) }
        let argmaxQ = model.indices.max { model[$0] < model[$1] }! - model.startIndex
        let argmaxP = reference.indices.max { reference[$0] < reference[$1] }! - reference.startIndex
        return (max(0, kld), argmaxQ == argmaxP, exp(logQ[next]) - exp(logP[next]))
    }

    /// log softmax in Float64: `x_v − max − log Σ exp(x − max)`.
    static func logSoftmax(_ logits: ArraySlice<Float>) -> [Double] {
        let maximum = Double(logits.max() ?? 0)
        var sum = 0.0
        for value in logits { sum += exp(Double(value) - maximum) }
        let logSum = log(sum) + maximum
        return logits.map { Double($0) - logSum }
    }

    private struct Accumulator {
        var count = 0, agreements = 0
        var kld = 0.0, kldSquares = 0.0, kldMaximum = 0.0, delta = 0.0, deltaSquares = 0.0

        mutating func add(_ item: (kld: Double, agree: Bool, delta: Double)) {
            count += 1
            kld += item.kld; kldSquares += item.kld * item.kld; kldMaximum = max(kldMaximum, item.kld)
            delta += item.delta; deltaSquares += item.delta * item.delta
            if item.agree { agreements += 1 }
        }

        /// Means with standard errors of the mean, `sqrt((E[x²] − E[x]²)/(n − 1))`.
        func result() -> DistributionComparison {
            let n = Double(count)
            func standardError(_ sum: Double, _ squares: Double) -> Double {
                guard count > 1 else { return 0 }
                let mean = sum / n
                return (max(0, squares / n - mean * mean) / (n - 1)).squareRoot()
            }
            var result = DistributionComparison()
            result.positionCount = count
            result.meanKLD = kld / n
            result.kldStandardError = standardError(kld, kldSquares)
            result.maximumKLD = kldMaximum
            result.top1Agreement = Double(agreements) / n
            result.meanDeltaProbability = delta / n
            result.deltaProbabilityStandardError = standardError(delta, deltaSquares)
            return result
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
