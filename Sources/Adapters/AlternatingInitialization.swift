import LinearAlgebra
import Quantization
import Tensors

/// Methods that alternate between quantizing and a low-rank fit (algorithms.md §2, §6).
enum AlternatingInitialization {
    /// LoftQ (PEFT `loftq_init`): `R ← W`; T times: `Q ← q(R)`, `B·A ← SVD_r(W − Q)`,
    /// `R ← W − B·A` (skipped after the last round). Returns the last Q with the SVD of its own
    /// residual, so the pair is consistent. Any quantizer of `quantize` works.
    static func loftq(_ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let input = context.input
        let iterations = context.options.iterationCount(for: .loftq)
        var target = input.weight
        var quantized: any QuantizedWeight
        var factors: LowRankFactors
        var round = 1
        repeat {
            quantized = try context.quantize(target)
            let error = LayerErrors.residualFloat(original: input.weight, approximation: quantized.dequantized())
            factors = try LowRankCorrection.fit(error: error, rank: input.rank, svd: context.svd)
            if round == iterations { break }
            target = try WeightDerivedInitialization.subtractingProduct(input.weight, factors)
            round += 1
        } while true
        let (a, b) = MethodOutcome.scaled(factors, scale: context.scale)
        return MethodOutcome(loraA: a, loraB: b, newBase: .quantized(quantized), iterations: iterations)
    }

    /// LQ-LoRA (Guo et al., arXiv 2311.12023; HanGuo97/lq-lora
    /// `lowrank_quantized_sparse_decomposition`): `Q ← 0`; up to T times: `B·A ← SVD_r(W − Q)`,
    /// `Q ← q(W − B·A)`, stop when the error grows. Unlike the reference, which returns the iterate
    /// that was worse, the best iterate is kept. `activationWeighted` applies the rank-1
    /// weighting with the input RMS per channel as column weights (the reference's Fisher
    /// heuristic with activations in place of squared gradients).
    static func lqLoRA(_ context: AdapterInitializer.LayerContext) throws -> MethodOutcome {
        let input = context.input
        let iterations = context.options.iterationCount(for: .lqLoRA)
        let (out, inputs) = (input.weight.rowCount, input.weight.columnCount)
        var weighting = LowRankWeighting.none
        var columnWeights = [Double](repeating: 1, count: inputs)
        if context.options.activationWeighted, let calibration = input.calibration {
            columnWeights = CalibratedInitialization.normalizedScale(calibration.rootMeanSquare)
            weighting = .rankOne(rows: [Double](repeating: 1, count: out), columns: columnWeights)
        }
        // Oversampled randomized SVD (the reference passes p = 10, niter = 2).
        var svd = context.svd
        svd.oversampling = 10
        var error = LowRankProduct.widened(input.weight)
        var best: (error: Double, factors: LowRankFactors, quantized: any QuantizedWeight)?
        var rounds = 0
        for _ in 0..<iterations {
            rounds += 1
            let factors = try LowRankCorrection.fit(error: error, rank: input.rank, weighting: weighting, svd: svd)
            let quantized = try context.quantize(try WeightDerivedInitialization.subtractingProduct(input.weight, factors))
            let dequantized = quantized.dequantized()
            let product = try LowRankProduct.product(loraB: factors.loraB, loraA: factors.loraA)
            var objective = 0.0
            for row in 0..<out {
                for c in 0..<inputs {
                    let index = row * inputs + c
                    let residual = (Double(input.weight.values[index]) - Double(dequantized.values[index]) - product.values[index]) * columnWeights[c]
                    objective += residual * residual
                }
            }
            if let best, objective >= best.error { break }
            best = (objective, factors, quantized)
            error = LayerErrors.residual(original: input.weight, approximation: dequantized)
        }
        let (a, b) = MethodOutcome.scaled(best!.factors, scale: context.scale)
        return MethodOutcome(loraA: a, loraB: b, newBase: .quantized(best!.quantized), iterations: rounds)
    }
}
