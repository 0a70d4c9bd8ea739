import Foundation
import Tensors

/// The scalar reference of the forward pass: formats.md §6.1 position by position with naive
/// loops and Double accumulation, no BLAS, no parallelism, no fused kernels. Slow; for tests on
/// small configurations, where the batched `logits(tokens:)` must agree with it.
extension LlamaModel {
    public func referenceLogits(tokens: [Int]) throws -> Matrix<Float> {
        try checkTokens(tokens)
        let c = configuration
        let (h, nh, nkv, hd, inter) = (c.hiddenSize, c.headCount, c.keyValueHeadCount, c.headDimension, c.intermediateSize)
        let count = tokens.count

        func linear(_ w: Matrix<Float>, rowOffset: Int, rows: Int, _ x: [Double]) -> [Double] {
            (0..<rows).map { r in
                var sum = 0.0
                for i in 0..<w.columnCount { sum += Double(w[rowOffset + r, i]) * x[i] }
                return sum
            }
        }
        func norm(_ x: [Double], _ weight: [Float]) -> [Double] {
            let meanSquare = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
            let scale = 1 / (meanSquare + c.normEpsilon).squareRoot()
            return x.indices.map { x[$0] * scale * Double(weight[$0]) }
        }
        func rope(_ x: inout [Double], head: Int, position: Int) {
            let half = hd / 2
            for i in 0..<half {
                let angle = Double(position) * inverseFrequencies[i]
                let (a, b) = (x[head * hd + i], x[head * hd + i + half])
                x[head * hd + i] = a * cos(angle) - b * sin(angle)
                x[head * hd + i + half] = b * cos(angle) + a * sin(angle)
            }
        }

        var states = tokens.map { token in (0..<h).map { Double(embedding[token, $0]) } }
        for layer in layers {
            var queries: [[Double]] = [], keys: [[Double]] = [], values: [[Double]] = []
            for p in 0..<count {
                let a = norm(states[p], layer.inputNorm)
                var q = linear(layer.queryKeyValue, rowOffset: 0, rows: nh * hd, a)
                var k = linear(layer.queryKeyValue, rowOffset: nh * hd, rows: nkv * hd, a)
                var v = linear(layer.queryKeyValue, rowOffset: (nh + nkv) * hd, rows: nkv * hd, a)
                if let bias = layer.queryKeyValueBias {
                    for i in q.indices { q[i] += Double(bias[i]) }
                    for i in k.indices { k[i] += Double(bias[nh * hd + i]) }
                    for i in v.indices { v[i] += Double(bias[(nh + nkv) * hd + i]) }
                }
                for head in 0..<nh { rope(&q, head: head, position: p) }
                for head in 0..<nkv { rope(&k, head: head, position: p) }
                queries.append(q); keys.append(k); values.append(v)
            }
            for p in 0..<count {
                var concatenated = [Double](repeating: 0, count: nh * hd)
                for head in 0..<nh {
                    let kvHead = head / (nh / nkv)
                    var scores = (0...p).map { j in
                        var dot = 0.0
                        for d in 0..<hd { dot += queries[p][head * hd + d] * keys[j][kvHead * hd + d] }
                        return dot / Double(hd).squareRoot()
                    }
                    let maximum = scores.max()!
                    scores = scores.map { exp($0 - maximum) }
                    let total = scores.reduce(0, +)
                    for j in 0...p {
                        for d in 0..<hd { concatenated[head * hd + d] += scores[j] / total * values[j][kvHead * hd + d] }
                    }
                }
                let attentionOutput = linear(layer.output, rowOffset: 0, rows: h, concatenated)
                for i in 0..<h { states[p][i] += attentionOutput[i] }
                let b = norm(states[p], layer.postAttentionNorm)
                let gate = linear(layer.gateUp, rowOffset: 0, rows: inter, b)
                let up = linear(layer.gateUp, rowOffset: inter, rows: inter, b)
                let activated = (0..<inter).map { gate[$0] / (1 + exp(-gate[$0])) * up[$0] }
                let down = linear(layer.down, rowOffset: 0, rows: h, activated)
                for i in 0..<h { states[p][i] += down[i] }
            }
        }
        var result = Matrix<Float>(zeros: count, c.vocabularySize)
        for p in 0..<count {
            let final = norm(states[p], finalNorm)
            let row = linear(languageModelHead, rowOffset: 0, rows: c.vocabularySize, final)
            for v in 0..<c.vocabularySize { result[p, v] = Float(row[v]) }
        }
        return result
    }
}
