import LinearAlgebra
import Quantization
import Tensors

/// QA-LoRA's exact merge into the zero points (Xu et al., arXiv 2309.14717; yuhuixu1993/qa-lora
/// `merge.py`; algorithms.md §8(b)).
///
/// With contiguous groups of `L` input channels, per-group scales `σ [out, G]` and zeros
/// `z [out, G]` (our row-major layout, `G = in / L`), a QA-LoRA layer adds
/// `ΔW[o, i] = s · (B·A)[o, g] / L` for every `i` of group `g`: constant per group. Hence
///
///     σ[o,g]·(q[o,i] − z[o,g]) + ΔW[o,i] = σ[o,g]·(q[o,i] − z'[o,g]),
///     z'[o,g] = z[o,g] − s · (B·A)[o,g] / (L · σ[o,g]),
///
/// with the codes and scales unchanged. The new zeros are real numbers; they are stored rounded to
/// FP16 (`GridZeroPoints.float16`, as HQQ stores its zeros), so element `(o, i)` of the folded
/// weight differs from `dequant(Q) + ΔW` by `σ[o,g] · |z' − fp16(z')| ≤ σ[o,g] · ulp16(z') / 2`
/// (plus Float32 rounding of the dequantization). Rounding them back to integers (GPTQ's packed
/// `qzeros`) would break exactness (§8(e)). Symmetric grids (the implied midpoint zero) become
/// asymmetric ones with float zeros: the returned weight's `spec.symmetric` is false.
/// Requires `layer.poolingGroupSize == weight.groupSize`, an integer grid and no `g_idx`.
public enum QALoRAMerge {
    public static func fold(_ weight: GroupedGridWeight, layer: LoRALayer, scale: Double) throws -> GroupedGridWeight {
        let (rows, groups, size) = (weight.rowCount, weight.groupCount, weight.groupSize)
        guard weight.levels == .integer, weight.groupIndex == nil else {
            throw AdapterError.invalidParameter("model", "\(layer.module): qa-lora folds into the zero points of an integer grid with contiguous groups (no codebook, FP8 or act-order g_idx)")
        }
        guard layer.poolingGroupSize == size else {
            throw AdapterError.invalidParameter("adapter", "\(layer.module): the adapter pools groups of \(layer.poolingGroupSize.map(String.init) ?? "1") inputs but the weight is quantized in groups of \(size)")
        }
        guard layer.magnitude == nil else {
            throw AdapterError.invalidParameter("adapter", "\(layer.module): a DoRA magnitude cannot fold into zero points")
        }
        guard layer.outputWidth == rows, layer.inputWidth == weight.columnCount, layer.loraA.columnCount == groups else {
            throw AdapterError.invalidParameter("adapter", "\(layer.module): the adapter is [\(layer.outputWidth), \(layer.inputWidth)] but the weight is [\(rows), \(weight.columnCount)]")
        }
        // (B·A) [out, G] in Float64, times s / L.
        let product = try LinearAlgebra.multiply(LowRankProduct.widened(layer.loraB), LowRankProduct.widened(layer.loraA),
                                                 alpha: scale / Double(size))
        let zeros = weight.zeroPointValues
        var folded = [Float](repeating: 0, count: rows * groups)
        for index in 0..<(rows * groups) {
            let sigma = Double(weight.scales[index])
            guard sigma != 0 else {
                throw AdapterError.invalidParameter("model", "\(layer.module): group \(index % groups) of row \(index / groups) has scale 0, so no zero point can carry the adapter")
            }
            let value = Float16(Double(zeros[index]) - product.values[index] / sigma)
            guard value.isFinite else {
                throw AdapterError.invalidParameter("adapter", "\(layer.module): the folded zero point of row \(index / groups), group \(index % groups) leaves FP16's range")
            }
            folded[index] = Float(value)
        }
        var spec = weight.spec
        spec.symmetric = false                      // every group now carries its own zero
        return GroupedGridWeight(rowCount: rows, columnCount: weight.columnCount, spec: spec, bits: weight.bits,
                                 groupSize: size, codes: weight.codes, scales: weight.scales, zeroPoints: .float16(folded),
                                 levels: .integer, groupIndex: nil, scaleBitCount: weight.scaleBitCount)
    }
}
