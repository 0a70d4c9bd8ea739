import LinearAlgebra
import Tensors

/// GPTQ's column loop with lazy block updates (`GPTQ.fasterquant`, the inner `for i1` loop).
///
/// Layout: the permuted `W` is held transposed, one `[blockColumns, rows]` matrix per block of
/// `blockSize` columns, so a weight column is a contiguous run over the output rows. Within a
/// block, rows are independent: row chunks run in parallel, each walking the block's columns in
/// order (quantize, `e = (w − q)/U_cc`, rank-1 update of the block's later columns). After the
/// block, every later block `m` gets `Wᵀ_m −= U[block, m]ᵀ · Err` (one sgemm each).
enum GPTQBlockSolver {
    static func solve(_ problem: GPTQProblem) throws -> GPTQSolution {
        let (rows, columns, size, blockSize) = (problem.rowCount, problem.columnCount, problem.groupSize, problem.blockSize)
        let groupCount = problem.groupCount
        let rule = problem.rule
        let blockStarts = Array(stride(from: 0, to: columns, by: blockSize))
        var blocks: [Matrix<Float>] = blockStarts.map { start in
            let count = min(blockSize, columns - start)
            var block = Matrix<Float>(zeros: count, rows)
            for row in 0..<rows { for j in 0..<count { block[j, row] = problem.weight[row, start + j] } }
            return block
        }
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var parameters = problem.channelParameters
            ?? [GroupParameters](repeating: GroupParameters(scale: 1, zeroPoint: 0), count: rows * groupCount)
        let upper = problem.upper

        for (blockNumber, i1) in blockStarts.enumerated() {
            let count = min(blockSize, columns - i1), i2 = i1 + count
            var current = Matrix<Float>(zeros: 0, 0)
            swap(&current, &blocks[blockNumber])  // this block is consumed here
            // Columns past the block that a group starting inside it reaches (read-only copies).
            var extraEnd = i2
            if problem.channelParameters == nil {
                var start = (i1 + size - 1) / size * size
                while start < i2 { extraEnd = max(extraEnd, min(start + size, columns)); start += size }
            }
            var extra = [Float]()
            for column in i2..<extraEnd {
                let block = blocks[column / blockSize], j = column % blockSize
                extra.append(contentsOf: block.values[(j * rows)..<((j + 1) * rows)])
            }
            var errors = Matrix<Float>(zeros: count, rows)
            current.values.withUnsafeMutableBufferPointer { block in
                errors.values.withUnsafeMutableBufferPointer { errorBuffer in
                    extra.withUnsafeBufferPointer { extra in
                        upper.values.withUnsafeBufferPointer { u in
                            codes.withUnsafeMutableBufferPointer { codeBuffer in
                                parameters.withUnsafeMutableBufferPointer { parameterBuffer in
                                    let shared = UncheckedSendable((block, errorBuffer, codeBuffer, parameterBuffer))
                                    Parallel.forEachChunk(rows, minimumChunk: 64) { range in
                                        let (block, errorBuffer, codeBuffer, parameterBuffer) = shared.value
                                        var scratch = [Float](repeating: 0, count: size)
                                        for j in 0..<count {
                                            let c = i1 + j
                                            if problem.channelParameters == nil && c % size == 0 {
                                                for row in range {
                                                    for k in 0..<size {
                                                        let column = c + k
                                                        scratch[k] = column < i2 ? block[(column - i1) * rows + row] : extra[(column - i2) * rows + row]
                                                    }
                                                    parameterBuffer[row * groupCount + c / size] =
                                                        scratch.withUnsafeBufferPointer { rule.fit($0) }
                                                }
                                            }
                                            let d = u[c * columns + c]
                                            let column = block.baseAddress! + j * rows
                                            let error = errorBuffer.baseAddress! + j * rows
                                            for row in range {
                                                let p = parameterBuffer[row * groupCount + c / size]
                                                let code = rule.encode(column[row], p)
                                                codeBuffer[row * columns + c] = code
                                                error[row] = (column[row] - rule.decode(code, p)) / d
                                            }
                                            for k in (j + 1)..<max(j + 1, count) {
                                                let factor = u[c * columns + i1 + k]
                                                let later = block.baseAddress! + k * rows
                                                for row in range { later[row] -= factor * error[row] }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // Lazy update of every later block: Wᵀ_m ← Wᵀ_m − U[i1..<i2, m]ᵀ · Err.
            for later in (blockNumber + 1)..<max(blockNumber + 1, blockStarts.count) {
                let start = blockStarts[later], laterCount = blocks[later].rowCount
                var coupling = Matrix<Float>(zeros: count, laterCount)
                for j in 0..<count { for k in 0..<laterCount { coupling[j, k] = upper[i1 + j, start + k] } }
                try LinearAlgebra.multiplyAccumulate(coupling, errors, into: &blocks[later], transposeA: true, alpha: -1, beta: 1)
            }
        }
        return GPTQSolution(codes: codes, parameters: parameters)
    }

    /// Scalar reference: row-major `W`, the same order of operations, the lazy update as plain
    /// loops (summed over the block's columns in order) instead of sgemm.
    static func solveReference(_ problem: GPTQProblem) -> GPTQSolution {
        let (rows, columns, size, blockSize) = (problem.rowCount, problem.columnCount, problem.groupSize, problem.blockSize)
        let groupCount = problem.groupCount
        let rule = problem.rule, u = problem.upper
        var w = problem.weight
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var parameters = problem.channelParameters
            ?? [GroupParameters](repeating: GroupParameters(scale: 1, zeroPoint: 0), count: rows * groupCount)
        for i1 in stride(from: 0, to: columns, by: blockSize) {
            let i2 = min(i1 + blockSize, columns)
            var errors = Matrix<Float>(zeros: i2 - i1, rows)
            for c in i1..<i2 {
                if problem.channelParameters == nil && c % size == 0 {
                    for row in 0..<rows {
                        let group = Array(w.values[(row * columns + c)..<(row * columns + c + size)])
                        parameters[row * groupCount + c / size] = group.withUnsafeBufferPointer { rule.fit($0) }
                    }
                }
                for row in 0..<rows {
                    let p = parameters[row * groupCount + c / size]
                    let code = rule.encode(w[row, c], p)
                    codes[row * columns + c] = code
                    let e = (w[row, c] - rule.decode(code, p)) / u[c, c]
                    errors[c - i1, row] = e
                    for k in (c + 1)..<max(c + 1, i2) { w[row, k] -= u[c, k] * e }
                }
            }
            for row in 0..<rows {
                for k in i2..<max(i2, columns) {
                    var sum: Float = 0
                    for j in i1..<i2 { sum += errors[j - i1, row] * u[j, k] }
                    w[row, k] -= sum
                }
            }
        }
        return GPTQSolution(codes: codes, parameters: parameters)
    }
}
