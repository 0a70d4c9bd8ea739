import Foundation
import Tensors
import LinearAlgebra

/// The batched BERT forward pass: each projection is one sgemm over all `T` positions (rows split
/// across workers like the Llama pass), attention per head in parallel (bidirectional, no mask:
/// one sequence, no padding).
extension BertModel {
    /// The last hidden state `[T, hidden]` for one sequence of token ids (token type 0, positions
    /// `0..<T`). `observe`, when given, sees every linear layer's input `[T, in]` (q/k/v share
    /// one); it must not keep the matrix.
    public func hiddenStates(tokens: [Int], observe: BertLinearInputObserver? = nil) throws -> Matrix<Float> {
        try checkTokens(tokens)
        let c = configuration
        let count = tokens.count, h = c.hiddenSize, inter = c.intermediateSize
        let epsilon = Float(c.normEpsilon)

        let blasThreads = BLASRuntime.threadCount
        let single = Parallel.workerCount > 1
        if single { BLASRuntime.threadCount = 1 }
        defer { if single { BLASRuntime.threadCount = blasThreads } }

        var x = Matrix<Float>.uninitialized(count, h)
        x.values.withUnsafeMutableBufferPointer { destination in
            for (position, token) in tokens.enumerated() {
                for j in 0..<h {
                    destination[position * h + j] = wordEmbeddings.values[token * h + j]
                        + positionEmbeddings.values[position * h + j] + tokenTypeEmbeddings.values[j]
                }
            }
        }
        Self.layerNorm(&x, weight: embeddingNormWeight, bias: embeddingNormBias, epsilon: epsilon)

        var qkv = Matrix<Float>.uninitialized(count, 3 * h)
        var attention = Matrix<Float>.uninitialized(count, h)
        var intermediate = Matrix<Float>.uninitialized(count, inter)
        for (layerIndex, layer) in layers.enumerated() {
            try observe?(layerIndex, .attentionInput, x)
            try LlamaModel.rowParallelProduct(x, layer.queryKeyValue, into: &qkv, accumulate: false)
            Self.addBias(&qkv, layer.queryKeyValueBias)
            try attend(qkv: qkv, into: &attention)
            try observe?(layerIndex, .attentionOutput, attention)
            // a = LN(x + attention·Woᵀ + bo): accumulate into the residual.
            try LlamaModel.rowParallelProduct(attention, layer.attentionOutput, into: &x, accumulate: true)
            Self.addBias(&x, layer.attentionOutputBias)
            Self.layerNorm(&x, weight: layer.attentionNormWeight, bias: layer.attentionNormBias, epsilon: epsilon)

            try observe?(layerIndex, .intermediateInput, x)
            try LlamaModel.rowParallelProduct(x, layer.intermediate, into: &intermediate, accumulate: false)
            intermediate.values.withUnsafeMutableBufferPointer { data in
                layer.intermediateBias.withUnsafeBufferPointer { bias in
                    for t in 0..<count {
                        for j in 0..<inter {
                            let v = data[t * inter + j] + bias[j]
                            data[t * inter + j] = 0.5 * v * (1 + erff(v * 0.70710678118654752))
                        }
                    }
                }
            }
            try observe?(layerIndex, .outputInput, intermediate)
            try LlamaModel.rowParallelProduct(intermediate, layer.output, into: &x, accumulate: true)
            Self.addBias(&x, layer.outputBias)
            Self.layerNorm(&x, weight: layer.outputNormWeight, bias: layer.outputNormBias, epsilon: epsilon)
        }
        return x
    }

    /// The sentence-transformers embedding (Transformer → mean Pooling → Normalize): the mean of
    /// the last hidden state over all tokens (give ids with [CLS]/[SEP], as the tokenizer's
    /// `encode(_:addSpecialTokens: true)` does), L2-normalised (`v / max(‖v‖, 1e-12)`).
    public func sentenceEmbedding(tokens: [Int]) throws -> [Float] {
        let hidden = try hiddenStates(tokens: tokens)
        let h = hidden.columnCount
        var sum = [Double](repeating: 0, count: h)
        for t in 0..<hidden.rowCount { for j in 0..<h { sum[j] += Double(hidden.values[t * h + j]) } }
        let mean = sum.map { $0 / Double(hidden.rowCount) }
        let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return mean.map { Float($0 / norm) }
    }

    static func addBias(_ m: inout Matrix<Float>, _ bias: [Float]) {
        let width = m.columnCount
        m.values.withUnsafeMutableBufferPointer { data in
            bias.withUnsafeBufferPointer { b in
                for t in 0..<m.rowCount { for j in 0..<width { data[t * width + j] += b[j] } }
            }
        }
    }

    /// Row-wise `(x − mean)/sqrt(var + eps)·w + b`, population variance, in place.
    static func layerNorm(_ m: inout Matrix<Float>, weight: [Float], bias: [Float], epsilon: Float) {
        let width = m.columnCount
        m.values.withUnsafeMutableBufferPointer { data in
            for t in 0..<m.rowCount {
                let base = t * width
                var mean: Float = 0
                for j in 0..<width { mean += data[base + j] }
                mean /= Float(width)
                var variance: Float = 0
                for j in 0..<width { let d = data[base + j] - mean; variance += d * d }
                variance /= Float(width)
                let scale = 1 / (variance + epsilon).squareRoot()
                for j in 0..<width { data[base + j] = (data[base + j] - mean) * scale * weight[j] + bias[j] }
            }
        }
    }

    /// softmax(Q Kᵀ/√hd) V per head, heads in parallel; `qkv` is `[T, 3·hidden]` (q | k | v).
    func attend(qkv: Matrix<Float>, into output: inout Matrix<Float>) throws {
        let c = configuration
        let count = qkv.rowCount, width = qkv.columnCount, h = c.hiddenSize
        let heads = c.attentionHeadCount, hd = h / heads
        let scale = 1 / Float(hd).squareRoot()
        let failure = FirstError()
        qkv.values.withUnsafeBufferPointer { source in
            output.values.withUnsafeMutableBufferPointer { destination in
                let src = source.baseAddress!
                nonisolated(unsafe) let dst = destination.baseAddress!
                Parallel.forEach(heads) { head in
                    func gather(_ offset: Int) -> Matrix<Float> {
                        var values = [Float](repeating: 0, count: count * hd)
                        for t in 0..<count {
                            for d in 0..<hd { values[t * hd + d] = src[t * width + offset + head * hd + d] }
                        }
                        return Matrix(rowCount: count, columnCount: hd, values: values)
                    }
                    do {
                        var scores = try LinearAlgebra.multiply(gather(0), gather(h), transposeB: true)
                        scores.values.withUnsafeMutableBufferPointer { s in
                            for t in 0..<count {
                                let base = t * count
                                var maximum = -Float.infinity
                                for u in 0..<count { s[base + u] *= scale; maximum = max(maximum, s[base + u]) }
                                var total: Float = 0
                                for u in 0..<count { let e = expf(s[base + u] - maximum); s[base + u] = e; total += e }
                                let inverse = 1 / total
                                for u in 0..<count { s[base + u] *= inverse }
                            }
                        }
                        let context = try LinearAlgebra.multiply(scores, gather(2 * h))
                        for t in 0..<count {
                            for d in 0..<hd { dst[t * h + head * hd + d] = context.values[t * hd + d] }
                        }
                    } catch {
                        failure.record(error)
                    }
                }
            }
        }
        try failure.rethrow()
    }
}
