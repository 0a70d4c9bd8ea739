import Foundation
import Tensors

/// Which positions of which windows are scored (formats.md §6.2, §6.3). The two conventions
/// give different numbers on the same text; a result always says which one it used.
public enum PerplexityScoring: String, Sendable, CaseIterable {
    /// Hugging Face, stride = context: non-overlapping windows of `contextLength` (the last one
    /// may be shorter), every next token inside a window scored (`len − 1` per window). The NLL
    /// is summed per token and divided by the number of scored tokens (the exact form of the
    /// HF guide's average).
    case all
    /// llama.cpp `llama-perplexity`: `floor(n / contextLength)` chunks (tail dropped), the first
    /// token of each chunk overwritten with BOS when the vocabulary adds BOS, and only the logits
    /// at positions `n_ctx/2 … n_ctx−2` scored against the next token.
    case secondHalf = "second-half"
}

/// The running state after a chunk, for progress reports (`[3]25.4822` in llama.cpp's output).
public struct PerplexityProgress: Sendable {
    public var chunkIndex: Int
    public var chunkCount: Int
    public var perplexity: Double
    public var standardError: Double
    public var scoredTokenCount: Int
}

public struct PerplexityResult: Sendable, Equatable {
    public var perplexity: Double
    /// llama.cpp's uncertainty: `PPL · sqrt((E[nll²] − E[nll]²) / (count − 1))`.
    public var standardError: Double
    public var scoredTokenCount: Int
    public var chunkCount: Int
    public var scoring: PerplexityScoring
    /// Σ nll and Σ nll² over scored tokens, so results of parts can be combined.
    public var negativeLogLikelihoodSum: Double
    public var negativeLogLikelihoodSquaredSum: Double
}

public enum PerplexityError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidContextLength(Int, maximum: Int)
    /// Too few tokens for one window (`.all`: 2; `.secondHalf`: llama.cpp's 2·n_ctx).
    case textTooShort(tokenCount: Int, required: Int, scoring: PerplexityScoring)

    public var description: String {
        switch self {
        case let .invalidContextLength(length, maximum):
            return "context length \(length) is outside 4…\(maximum) (the model's max_position_embeddings)"
        case let .textTooShort(tokenCount, required, scoring):
            return "the text has \(tokenCount) tokens; \(scoring.rawValue) scoring needs at least \(required)"
        }
    }
}

public enum Perplexity {
    /// Perplexity of `model` on `tokens` (already tokenized, with whatever BOS the tokenizer adds).
    ///
    /// - `beginningOfSequence`: for `.secondHalf`, the BOS id written over the first token of every
    ///   chunk (pass it when the vocabulary adds BOS — llama.cpp's `llama_vocab_get_add_bos`; nil
    ///   leaves chunks as they are). Ignored by `.all`.
    /// - `progress`: called after every chunk with the running numbers; throw from it to stop
    ///   (the error propagates).
    public static func evaluate(model: LlamaModel, tokens: [Int], contextLength: Int, scoring: PerplexityScoring,
                                maxChunks: Int? = nil, beginningOfSequence: Int? = nil,
                                progress: ((PerplexityProgress) throws -> Void)? = nil) throws -> PerplexityResult {
        let maximum = model.configuration.maxPositionEmbeddings
        guard contextLength >= 4, contextLength <= maximum else {
            throw PerplexityError.invalidContextLength(contextLength, maximum: maximum)
        }
        // Windows: (start, length, first scored logit row, rows scored).
        var windows: [(start: Int, length: Int, firstRow: Int)] = []
        switch scoring {
        case .all:
            guard tokens.count >= 2 else { throw PerplexityError.textTooShort(tokenCount: tokens.count, required: 2, scoring: scoring) }
            var start = 0
            while start < tokens.count {
                let length = min(contextLength, tokens.count - start)
                if length >= 2 { windows.append((start, length, 0)) }
                start += contextLength
            }
        case .secondHalf:
            guard tokens.count >= 2 * contextLength else {
                throw PerplexityError.textTooShort(tokenCount: tokens.count, required: 2 * contextLength, scoring: scoring)
            }
            for chunk in 0..<(tokens.count / contextLength) {
                windows.append((chunk * contextLength, contextLength, contextLength / 2))
            }
        }
        if let maxChunks, maxChunks > 0, windows.count > maxChunks { windows.removeLast(windows.count - maxChunks) }

        var sum = 0.0, squaredSum = 0.0, scored = 0
        for (index, window) in windows.enumerated() {
            var input = Array(tokens[window.start..<(window.start + window.length)])
            if scoring == .secondHalf, let beginningOfSequence { input[0] = beginningOfSequence }
            let hidden = try model.finalHiddenStates(tokens: input)
            // Logit rows firstRow … length−2 predict tokens firstRow+1 … length−1.
            let rows = window.firstRow..<(window.length - 1)
            let targets = Array(input[(rows.lowerBound + 1)...(rows.upperBound)])
            let (blockSum, blockSquares) = try scoreRows(model: model, hidden: hidden, rows: rows, targets: targets)
            sum += blockSum
            squaredSum += blockSquares
            scored += rows.count
            if let progress {
                let (ppl, error) = statistics(sum: sum, squaredSum: squaredSum, count: scored)
                try progress(PerplexityProgress(chunkIndex: index, chunkCount: windows.count, perplexity: ppl,
                                                standardError: error, scoredTokenCount: scored))
            }
        }
        let (ppl, error) = statistics(sum: sum, squaredSum: squaredSum, count: scored)
        return PerplexityResult(perplexity: ppl, standardError: error, scoredTokenCount: scored, chunkCount: windows.count,
                                scoring: scoring, negativeLogLikelihoodSum: sum, negativeLogLikelihoodSquaredSum: squaredSum)
    }

    /// `PPL = exp(mean nll)`, `± PPL · sqrt((E[nll²] − E[nll]²)/(count − 1))` as llama.cpp prints it.
    public static func statistics(sum: Double, squaredSum: Double, count: Int) -> (perplexity: Double, standardError: Double) {
        guard count > 0 else { return (.nan, .nan) }
        let mean = sum / Double(count)
        let perplexity = exp(mean)
        guard count > 1 else { return (perplexity, .nan) }
        let variance = squaredSum / Double(count) - mean * mean
        return (perplexity, variance > 0 ? perplexity * (variance / Double(count - 1)).squareRoot() : 0)
    }

    /// Σ −log softmax(logits[row])[target] and its squares over `rows`, with logits made in
    /// blocks of rows so the `[T, vocab]` matrix never exists whole. Log-softmax in Double with
    /// max subtraction.
    static func scoreRows(model: LlamaModel, hidden: Matrix<Float>, rows: Range<Int>, targets: [Int]) throws -> (Double, Double) {
        // Big blocks: each block re-reads (packs) the whole [vocab, hidden] head in every worker.
        let blockSize = 256
        let vocabulary = model.configuration.vocabularySize
        var sum = 0.0, squares = 0.0
        var blockStart = rows.lowerBound
        while blockStart < rows.upperBound {
            let block = blockStart..<min(blockStart + blockSize, rows.upperBound)
            let logits = try model.logits(hidden: hidden, rows: block)
            var losses = [Double](repeating: 0, count: block.count)
            logits.values.withUnsafeBufferPointer { values in
                losses.withUnsafeMutableBufferPointer { out in
                    Parallel.forEach(block.count, minimumChunk: 4) { r in
                        let row = values.baseAddress! + r * vocabulary
                        var maximum = -Float.infinity
                        for v in 0..<vocabulary where row[v] > maximum { maximum = row[v] }
                        // exp in Float (the terms are ≤ 1), summed in Double.
                        var total = 0.0
                        var partial: Float = 0
                        for v in 0..<vocabulary {
                            partial += LlamaKernels.fastExp(row[v] - maximum)
                            if v & 255 == 255 { total += Double(partial); partial = 0 }
                        }
                        total += Double(partial)
                        let target = targets[block.lowerBound - rows.lowerBound + r]
                        out[r] = log(total) - (Double(row[target]) - Double(maximum))
                    }
                }
            }
            for loss in losses { sum += loss; squares += loss * loss }
            blockStart = block.upperBound
        }
        return (sum, squares)
    }
}
