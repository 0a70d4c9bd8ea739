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
        var result = Matrix<Float>.uninitialized(rows.count, languageModelHead.rowCount)
        let blasThreads = BLASRuntime.threadCount
        if Parallel.workerCount > 1 { BLASRuntime.threadCount = 1 }
        defer { if Parallel.workerCount > 1 { BLASRuntime.threadCount = blasThreads } }
        try Self.rowParallelProduct(block, languageModelHead, into: &result, accumulate: false)
        return result
    }

    /// The hidden states after the final RMSNorm, `[T, hidden]`. `observe`, when given, sees the
    /// input `[T, in]` of every linear layer as it is computed (layer index, which input), for
    /// calibration statistics; it must not keep the matrix.
    public func finalHiddenStates(tokens: [Int], observe: LinearInputObserver? = nil) throws -> Matrix<Float> {
        try checkTokens(tokens)
        let c = configuration
        let count = tokens.count, h = c.hiddenSize
        let (nh, nkv, hd) = (c.headCount, c.keyValueHeadCount, c.headDimension)
        let qkvWidth = (nh + 2 * nkv) * hd

        // One owner of parallelism: our row split around single-threaded sgemm calls
        // (OpenBLAS's own threads spent ~13 % in sched_yield on a shared machine).
        let blasThreads = BLASRuntime.threadCount
        let single = Parallel.workerCount > 1 && !LlamaModel.useBLASThreads
        if single { BLASRuntime.threadCount = 1 }
        defer { if single { BLASRuntime.threadCount = blasThreads } }

        var x = Matrix<Float>.uninitialized(count, h)
        x.values.withUnsafeMutableBufferPointer { destination in
            embedding.values.withUnsafeBufferPointer { table in
                for (position, token) in tokens.enumerated() {
                    (destination.baseAddress! + position * h).update(from: table.baseAddress! + token * h, count: h)
                }
            }
        }
        let (cosines, sines) = LlamaKernels.ropeTables(positions: count, inverseFrequencies: inverseFrequencies)
        // Every buffer is made once per window and reused by all layers (Matrix(zeros:) is a
        // generic, unspecialized fill across modules: it showed up at 10 % in profiles).
        var normed = Matrix<Float>.uninitialized(count, h)
        var attention = Matrix<Float>.uninitialized(count, nh * hd)
        var activated = Matrix<Float>.uninitialized(count, c.intermediateSize)
        var qkv = Matrix<Float>.uninitialized(count, qkvWidth)
        var gateUp = Matrix<Float>.uninitialized(count, 2 * c.intermediateSize)
        var scratch = (0..<nh).map { _ in AttentionScratch(count: count, headDimension: hd) }

        for (layerIndex, layer) in layers.enumerated() {
            // Attention block.
            rmsNorm(x, into: &normed, weight: layer.inputNorm)
            try observe?(layerIndex, .attentionInput, normed)
            let layerAdapters = adapters?[layerIndex]
            try Self.rowParallelProduct(normed, layer.queryKeyValue, into: &qkv, accumulate: false)
            if let lora = layerAdapters?.queryKeyValue, !lora.isEmpty { try Self.addLoRA(lora, input: normed, output: &qkv) }
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
            try attend(qkv: qkv, into: &attention, scratch: &scratch)
            try observe?(layerIndex, .attentionOutput, attention)
            try Self.accumulateProjection(attention, layer.output, adapters: layerAdapters?.output ?? [], into: &x)

            // MLP block.
            rmsNorm(x, into: &normed, weight: layer.postAttentionNorm)
            try observe?(layerIndex, .mlpInput, normed)
            try Self.rowParallelProduct(normed, layer.gateUp, into: &gateUp, accumulate: false)
            if let lora = layerAdapters?.gateUp, !lora.isEmpty { try Self.addLoRA(lora, input: normed, output: &gateUp) }
            gateUp.values.withUnsafeBufferPointer { source in
                activated.values.withUnsafeMutableBufferPointer { destination in
                    LlamaKernels.swiGLU(source.baseAddress!, destination.baseAddress!, rows: count, width: c.intermediateSize)
                }
            }
            try observe?(layerIndex, .mlpActivated, activated)
            try Self.accumulateProjection(activated, layer.down, adapters: layerAdapters?.down ?? [], into: &x)
        }
        rmsNorm(x, into: &normed, weight: finalNorm)
        return normed
    }

    /// OpenBLAS threads for the projections instead of our row split. Measured no better on
    /// SmolLM2 (OpenBLAS spun in sched_yield), so our row split owns the cores; the library does
    /// not read the environment for it.
    static let useBLASThreads = false

    /// `C = A·Wᵀ` (or `C += A·Wᵀ`) with the rows of `A` split into one contiguous block per
    /// worker, each an independent single-threaded sgemm on copies of its rows (row blocks of a
    /// row-major matrix are contiguous, so each copy is one memcpy).
    static func rowParallelProduct(_ a: Matrix<Float>, _ w: Matrix<Float>, into c: inout Matrix<Float>,
                                   accumulate: Bool) throws {
        let rows = a.rowCount
        let workers = min(Parallel.workerCount, rows / 16)
        guard workers > 1, !LlamaModel.useBLASThreads else {
            try LinearAlgebra.multiplyAccumulate(a, w, into: &c, transposeB: true, beta: accumulate ? 1 : 0)
            return
        }
        let (k, n) = (a.columnCount, c.columnCount)
        let failure = FirstError()
        a.values.withUnsafeBufferPointer { source in
            c.values.withUnsafeMutableBufferPointer { destination in
                let src = source.baseAddress!, dst = destination.baseAddress!
                Parallel.forEachChunk(rows, minimumChunk: 16) { range in
                    let (start, end) = (range.lowerBound, range.upperBound)
                    let block = Matrix(rowCount: end - start, columnCount: k,
                                       values: Array(UnsafeBufferPointer(start: src + start * k, count: (end - start) * k)))
                    var out = accumulate
                        ? Matrix(rowCount: end - start, columnCount: n,
                                 values: Array(UnsafeBufferPointer(start: dst + start * n, count: (end - start) * n)))
                        : Matrix<Float>.uninitialized(end - start, n)
                    do {
                        try LinearAlgebra.multiplyAccumulate(block, w, into: &out, transposeB: true, beta: accumulate ? 1 : 0)
                        out.values.withUnsafeBufferPointer { (dst + start * n).update(from: $0.baseAddress!, count: $0.count) }
                    } catch {
                        failure.record(error)
                    }
                }
            }
        }
        try failure.rethrow()
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
    func attend(qkv: Matrix<Float>, into output: inout Matrix<Float>, scratch: inout [AttentionScratch]) throws {
        let c = configuration
        let count = qkv.rowCount, width = qkv.columnCount
        let (nh, nkv, hd) = (c.headCount, c.keyValueHeadCount, c.headDimension)
        let group = nh / nkv
        let scale = Float(1 / Double(hd).squareRoot())
        let outputWidth = output.columnCount
        let failure = FirstError()
        let blasThreads = BLASRuntime.threadCount
        let toggled = LlamaModel.useBLASThreads && Parallel.workerCount > 1
        if toggled { BLASRuntime.threadCount = 1 }
        defer { if toggled { BLASRuntime.threadCount = blasThreads } }

        qkv.values.withUnsafeBufferPointer { source in
            output.values.withUnsafeMutableBufferPointer { destination in
                scratch.withUnsafeMutableBufferPointer { scratches in
                    let src = source.baseAddress!, dst = destination.baseAddress!
                    Parallel.forEach(nh) { head in
                        let kvHead = head / group
                        // Each head owns its scratch element; heads never share one.
                        let work = scratches.baseAddress! + head
                        func gather(_ column: Int, rows: Range<Int>, into m: inout Matrix<Float>) {
                            m.values.withUnsafeMutableBufferPointer { values in
                                for t in rows {
                                    (values.baseAddress! + (t - rows.lowerBound) * hd).update(from: src + t * width + column, count: hd)
                                }
                            }
                        }
                        do {
                            // Causal: query block [r0, r1) only sees keys [0, r1), so scores are
                            // [r1 − r0, r1] instead of the full [T, T] (~40 % less work at T = 512).
                            for (index, rows) in work.pointee.blocks.enumerated() {
                                try work.pointee.withBlock(index) { block in
                                    gather(head * hd, rows: rows, into: &block.query)
                                    gather((nh + kvHead) * hd, rows: 0..<rows.upperBound, into: &block.key)
                                    gather((nh + nkv + kvHead) * hd, rows: 0..<rows.upperBound, into: &block.value)
                                    try LinearAlgebra.multiplyAccumulate(block.query, block.key, into: &block.scores,
                                                                         transposeB: true, alpha: scale, beta: 0)
                                    block.scores.values.withUnsafeMutableBufferPointer {
                                        LlamaKernels.causalSoftmax($0.baseAddress!, rows: rows.count, columns: rows.upperBound,
                                                                   firstRow: rows.lowerBound)
                                    }
                                    try LinearAlgebra.multiplyAccumulate(block.scores, block.value, into: &block.output, beta: 0)
                                    block.output.values.withUnsafeBufferPointer { values in
                                        for t in rows {
                                            (dst + t * outputWidth + head * hd).update(from: values.baseAddress! + (t - rows.lowerBound) * hd, count: hd)
                                        }
                                    }
                                }
                            }
                        } catch {
                            failure.record(error)
                        }
                    }
                }
            }
        }
        try failure.rethrow()
    }
}

/// One head's buffers for a window of `count` positions, per block of query rows.
struct AttentionScratch {
    /// Query rows per block (tests lower it to exercise several blocks on tiny windows).
    nonisolated(unsafe) static var queryBlockSize = 128

    struct Block {
        var query, key, value, output, scores: Matrix<Float>
    }

    let blocks: [Range<Int>]
    private var buffers: [Block]

    init(count: Int, headDimension: Int) {
        let size = max(1, Self.queryBlockSize)
        blocks = stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
        buffers = blocks.map { rows in
            Block(query: .uninitialized(rows.count, headDimension), key: .uninitialized(rows.upperBound, headDimension),
                  value: .uninitialized(rows.upperBound, headDimension), output: .uninitialized(rows.count, headDimension),
                  scores: .uninitialized(rows.count, rows.upperBound))
        }
    }

    mutating func withBlock(_ index: Int, _ body: (inout Block) throws -> Void) rethrows {
        try body(&buffers[index])
    }
}

extension Matrix where Scalar == Float {
    /// A matrix whose values are about to be overwritten (filled with zeros by a fast,
    /// specialized loop rather than the generic `Matrix(zeros:)`).
    static func uninitialized(_ rowCount: Int, _ columnCount: Int) -> Matrix<Float> {
        let count = rowCount * columnCount
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { buffer.baseAddress!.initialize(repeating: 0, count: count) }
            initialized = count
        }
        return Matrix(rowCount: rowCount, columnCount: columnCount, values: values)
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
