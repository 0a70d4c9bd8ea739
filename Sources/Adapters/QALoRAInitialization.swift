import LinearAlgebra
import Quantization
import Tensors

/// QA-LoRA (Xu et al., arXiv 2309.14717; yuhuixu1993/qa-lora `peft_utils.py`, `merge.py`): an
/// adapter constant over each quantization group of `L` input channels, so that its product
/// folds exactly into the INT-k zero points (`z' = z − s·(B·A)ᵀ / (L·σ)`, the merge issue).
///
/// Shapes: `A [r, in / L]`, `B [out, r]`, `ΔW[o, i] = s · (B·A)[o, i / L] / L` (mean pooling).
/// The quantization-compensating start: the best group-constant approximation of `E = W − Q` in
/// Frobenius norm is its per-group mean `Ē [out, in / L]` (each column repeated L times), so the
/// rank-r optimum is the truncated SVD of `Ē`, with `A` multiplied by `L` to undo the pooling.
enum QALoRAInitialization {
    static func run(_ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let group = context.spec.groupSize
        let error = context.errorBefore
        let (out, inputs) = (error.rowCount, error.columnCount)
        let groupCount = inputs / group
        var means = Matrix<Double>(zeros: out, groupCount)
        for row in 0..<out {
            for g in 0..<groupCount {
                var sum = 0.0
                for c in (g * group)..<((g + 1) * group) { sum += error[row, c] }
                means[row, g] = sum / Double(group)
            }
        }
        var factors = try LowRankCorrection.fit(error: means, rank: context.input.rank, svd: context.svd)
        for i in factors.loraA.values.indices { factors.loraA.values[i] *= Double(group) }
        let (a, b) = MethodOutcome.scaled(factors, scale: context.scale)
        return MethodOutcome(loraA: a, loraB: b, poolingGroupSize: group)
    }
}
