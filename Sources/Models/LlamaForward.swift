import Foundation
import Tensors
import LinearAlgebra

/// The batched forward pass: all `T` positions of a window go through each projection as one
/// sgemm (`[T, in] · Wᵀ`), attention runs per head in parallel (one `[T, T]` score sgemm and one
/// `[T, T]·[T, hd]` sgemm per head, single-threaded BLAS inside the parallel loop).
extension LlamaModel {
    /// Logits `[T, vocab]` for a window of token ids (positions `0..<T`).
    public func logits(tokens: [Int]) throws -> Matrix<Float> {
        let hidden = try finalHiddenStates(tokens: tokens)
        return try logits(hidden: hidden, rows: 0..<hidden.rowCount)
    }

    /// Logits of some rows of the final hidden states: `[rows.count, vocab]`. Perplexity asks
    /// only for the rows it scores, in blocks, so the `[T, vocab]` matrix is never whole.
    public func logits(hidden: Matrix<Float>, rows: Range<Int>) throws -> Matrix<Float> {
        let width = hidden.columnCount
        let block = Matrix(rowCount: rows.count, columnCount: width,
                           values: Array(hidden.values[(rows.lowerBound * width)..<(rows.upperBound * width)]))
        return try LinearAlgebra.multiply(block, languageModelHead, transposeB: true)
    }

    /// The hidden states after the final RMSNorm, `[T, hidden]`.
    public func finalHiddenStates(tokens: [Int]) throws -> Matrix<Float> {
        try checkTokens(tokens)
        let c = configuration
        let count = tokens.count, h = c.hiddenSize
        let (nh, nkv, hd) = (c.headCount, c.keyValueHeadCount, c.headDimension)
        let qkvWidth = (nh + 2 * nkv) * hd

        var x = Matrix<Float>(zeros: count, h)
        x.values.withUnsafeMutableBufferPointer { destination in
            embedding.values.withUnsafeBufferPointer { table in
                for (position, token) in tokens.enumerated() {
                    (destination.baseAddress! + position * h).update(from: table.baseAddress! + token * h, count: h)
                }
            }
        }
        let (cosines, sines) = LlamaKernels.ropeTables(positions: count, inverseFrequencies: inverseFrequencies)
        var normed = Matrix<Float>(zeros: count, h)
        var attention = Matrix<Float>(zeros: count, nh * hd)
        var activated = Matrix<Float>(zeros: count, c.intermediateSize)

        for layer in layers {
            // Attention block.
            rmsNorm(x, into: &normed, weight: layer.inputNorm)
            var qkv = try LinearAlgebra.multiply(normed, layer.queryKeyValue, transposeB: true)
            qkv.values.withUnsafeMutableBufferPointer { data in
                if let bias = layer.queryKeyValueBias {
                    for t in 0..<count { for j in 0..<qkvWidth { data[t * qkvWidth + j] += bias[j] } }
                }
                cosines.withUnsafeBufferPointer { cosBuffer in
                    sines.withUnsafeBufferPointer { sinBuffer in
                        // q heads then k heads are contiguous: rotate all nh + nkv heads in one pass.
                        LlamaKernels.applyRope(data.baseAddress!, rows: count, rowStride: qkvWidth, firstColumn: 0,
                                               headCount: nh + nkv, headDimension: hd,
                                               cos: cosBuffer.baseAddress!, sin: sinBuffer.baseAddress!)
                    }
                }
            }
            try attend(qkv: qkv, into: &attention)
            try LinearAlgebra.multiplyAccumulate(attention, layer.output, into: &x, transposeB: true, beta: 1)

            // MLP block.
            rmsNorm(x, into: &normed, weight: layer.postAttentionNorm)
            let gateUp = try LinearAlgebra.multiply(normed, layer.gateUp, transposeB: true)
            gateUp.values.withUnsafeBufferPointer { source in
                activated.values.withUnsafeMutableBufferPointer { destination in
                    LlamaKernels.swiGLU(source.baseAddress!, destination.baseAddress!, rows: count, width: c.intermediateSize)
                }
            }
            try LinearAlgebra.multiplyAccumulate(activated, layer.down, into: &x, transposeB: true, beta: 1)
        }
        rmsNorm(x, into: &normed, weight: finalNorm)
        return normed
    }

    func rmsNorm(_ x: Matrix<Float>, into output: inout Matrix<Float>, weight: [Float]) {
        x.values.withUnsafeBufferPointer { input in
            output.values.withUnsafeMutableBufferPointer { destination in
                weight.withUnsafeBufferPointer { w in
                    LlamaKernels.rmsNorm(input.baseAddress!, destination.baseAddress!, rows: x.rowCount,
                                         width: x.columnCount, weight: w.baseAddress!, epsilon: configuration.normEpsilon)
                }
            }
        }
    }

    /// Causal multi-head attention with GQA (query head `i` reads KV head `i / (nh/nkv)`),
    /// softmax in fp32; writes the concatenated head outputs `[T, nh·hd]`.
    func attend(qkv: Matrix<Float>, into output: inout Matrix<Float>) throws {
        let c = configuration
        let count = qkv.rowCount, width = qkv.columnCount
        let (nh, nkv, hd) = (c.headCount, c.keyValueHeadCount, c.headDimension)
        let group = nh / nkv
        let scale = Float(1 / Double(hd).squareRoot())
        let outputWidth = output.columnCount
        let failure = FirstError()

        // Our loop owns the cores here; BLAS runs single-threaded inside it.
        let blasThreads = BLASRuntime.threadCount
        if Parallel.workerCount > 1 { BLASRuntime.threadCount = 1 }
        defer { if Parallel.workerCount > 1 { BLASRuntime.threadCount = blasThreads } }

        qkv.values.withUnsafeBufferPointer { source in
            output.values.withUnsafeMutableBufferPointer { destination in
                let src = source.baseAddress!, dst = destination.baseAddress!
                Parallel.forEach(nh) { head in
                    let kvHead = head / group
                    func gather(_ column: Int) -> Matrix<Float> {
                        var m = Matrix<Float>(zeros: count, hd)
                        m.values.withUnsafeMutableBufferPointer { values in
                            for t in 0..<count { (values.baseAddress! + t * hd).update(from: src + t * width + column, count: hd) }
                        }
                        return m
                    }
                    let query = gather(head * hd)
                    let key = gather((nh + kvHead) * hd)
                    let value = gather((nh + nkv + kvHead) * hd)
                    do {
                        var scores = try LinearAlgebra.multiply(query, key, transposeB: true, alpha: scale)
                        scores.values.withUnsafeMutableBufferPointer {
                            LlamaKernels.causalSoftmax($0.baseAddress!, size: count)
                        }
                        let headOutput = try LinearAlgebra.multiply(scores, value)
                        headOutput.values.withUnsafeBufferPointer { values in
                            for t in 0..<count {
                                (dst + t * outputWidth + head * hd).update(from: values.baseAddress! + t * hd, count: hd)
                            }
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

/// Keeps the first error thrown inside a parallel loop, whose body cannot throw.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?

    func record(_ newError: Error) {
        lock.lock(); defer { lock.unlock() }
        if error == nil { error = newError }
    }

    func rethrow() throws {
        lock.lock(); defer { lock.unlock() }
        if let error { throw error }
    }
}
