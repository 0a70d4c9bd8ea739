import LinearAlgebra
import Quantization
import Tensors

/// Initialisations that move part of W itself into the adapter (algorithms.md §7).
enum WeightDerivedInitialization {
    /// PiSSA (PEFT `pissa_init`): `s·B·A = U_r S_r V_rᵀ` of W, base ← `W − s·B·A`. With a
    /// quantized model the residual is re-quantized (QPiSSA, GraphPKU/PiSSA `pissa_quant`); with
    /// `iterations` T > 1, T − 1 rounds follow: refit the SVD to `R = W − Q`, re-quantize `W − B·A`.
    /// The adapter is the last fit (the principal part), as the reference returns it.
    static func pissa(_ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let input = context.input
        let w = LowRankProduct.widened(input.weight)
        let iterations = context.options.iterationCount(for: .pissa)
        var factors = try LowRankCorrection.fit(error: w, rank: input.rank, svd: context.svd)
        guard input.quantized != nil else {
            let (a, b) = MethodOutcome.scaled(factors, scale: context.scale)
            let base = residualBase(input.weight, a: a, b: b, scale: context.scale)
            return MethodOutcome(loraA: a, loraB: b, newBase: .fullPrecision(base), iterations: 1)
        }
        var quantized = try context.quantize(subtractingProduct(input.weight, factors))
        for _ in 1..<max(1, iterations) {
            let residual = LayerErrors.residual(original: input.weight, approximation: quantized.dequantized())
            factors = try LowRankCorrection.fit(error: residual, rank: input.rank, svd: context.svd)
            quantized = try context.quantize(subtractingProduct(input.weight, factors))
        }
        let (a, b) = MethodOutcome.scaled(factors, scale: context.scale)
        return MethodOutcome(loraA: a, loraB: b, newBase: .quantized(quantized), iterations: iterations)
    }

    /// OLoRA (PEFT `olora_init`): thin QR `W = Q·R`, `B = Q[:, :r]`, `A = R[:r, :]`, base ←
    /// `W − s·B·A` (re-quantized for a quantized model). No division by `s`.
    static func olora(_ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let input = context.input
        let rank = input.rank
        let decomposition = try LinearAlgebra.qr(LowRankProduct.widened(input.weight))
        var b = Matrix<Float>(zeros: input.weight.rowCount, rank)
        for row in 0..<b.rowCount { for k in 0..<rank { b[row, k] = Float(decomposition.q[row, k]) } }
        var a = Matrix<Float>(zeros: rank, input.weight.columnCount)
        for k in 0..<rank { for c in 0..<a.columnCount { a[k, c] = Float(decomposition.r[k, c]) } }
        let base = residualBase(input.weight, a: a, b: b, scale: context.scale)
        let newBase: NewBase = input.quantized != nil ? .quantized(try context.quantize(base)) : .fullPrecision(base)
        return MethodOutcome(loraA: a, loraB: b, newBase: newBase, usedSVD: false)
    }

    /// `W − s·B·A` in Float32, from the stored (Float32) factors, computed in Float64.
    static func residualBase(_ w: Matrix<Float>, a: Matrix<Float>, b: Matrix<Float>, scale: Double) -> Matrix<Float> {
        let delta = LowRankProduct.delta(loraB: b, loraA: a, scale: scale)
        var base = w
        for i in base.values.indices { base.values[i] = Float(Double(w.values[i]) - Double(delta.values[i])) }
        return base
    }

    /// `W − B·A` (unscaled factors) in Float32, as PEFT's `loftq_init` forms it (`weight −
    /// torch.mm(L, R)` in fp32): one sgemm with β = 1 on a copy of W, no Float64 temporaries.
    static func subtractingProduct(_ w: Matrix<Float>, _ factors: LowRankFactors) throws -> Matrix<Float> {
        var result = w
        try LinearAlgebra.multiplyAccumulate(LowRankProduct.narrowed(factors.loraB), LowRankProduct.narrowed(factors.loraA),
                                             into: &result, alpha: -1, beta: 1)
        return result
    }
}
