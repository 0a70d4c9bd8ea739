import LinearAlgebra
import Tensors

extension LoRALayer {
    /// `ΔW = s · B · A` `[out, in]` in Float64 (one `dgemm` with α = s), expanded over the pooling
    /// groups for QA-LoRA: `ΔW[o, i] = s · (B·A)[o, i / L] / L`. The Float64 counterpart of
    /// `LoRAAdapter.deltaWeight(of:)`, for callers that keep combining or factorizing.
    public func deltaWeight64(scale: Double) -> Matrix<Double> {
        // Shapes agree by construction (`A [r, in/L]`, `B [out, r]`).
        let product = try! LinearAlgebra.multiply(LowRankProduct.widened(loraB), LowRankProduct.widened(loraA), alpha: scale)
        guard let group = poolingGroupSize, group > 1 else { return product }
        let (rows, groups) = (product.rowCount, product.columnCount)
        var dense = Matrix<Double>(zeros: rows, groups * group)
        let inverse = 1 / Double(group)
        product.values.withUnsafeBufferPointer { p in
            dense.values.withUnsafeMutableBufferPointer { d in
                for row in 0..<rows {
                    for g in 0..<groups {
                        let value = p[row * groups + g] * inverse
                        let start = (row * groups + g) * group
                        for i in start..<(start + group) { d[i] = value }
                    }
                }
            }
        }
        return dense
    }

    /// `A` on the dense input in Float64, each entry multiplied by `factor`: `factor · A`, or for
    /// QA-LoRA `factor · A[k, i / L] / L` `[r, in]` (so `s · B · denseA64(1)` is ΔW).
    public func denseLoraA64(times factor: Double) -> Matrix<Double> {
        let group = max(poolingGroupSize ?? 1, 1)
        let (rank, width, pooled) = (self.rank, inputWidth, loraA.columnCount)
        var dense = Matrix<Double>(zeros: rank, width)
        let f = factor / Double(group)
        loraA.values.withUnsafeBufferPointer { a in
            dense.values.withUnsafeMutableBufferPointer { d in
                for k in 0..<rank {
                    for i in 0..<width { d[k * width + i] = Double(a[k * pooled + i / group]) * f }
                }
            }
        }
        return dense
    }
}
