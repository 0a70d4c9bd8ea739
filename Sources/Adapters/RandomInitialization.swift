import LinearAlgebra
import Tensors

/// PEFT's data-free initialisations (`LoraLayer.reset_lora_parameters`): B = 0 and
/// - `lora` (`init_lora_weights=True`): `kaiming_uniform_(A, a=√5)`, i.e. `A ~ U(−1/√in, 1/√in)`;
/// - `gaussian`: `A ~ N(0, (1/r)²)`.
/// The adapter adds nothing at first, so the errors stay those of the base.
enum RandomInitialization {
    static func run(_ method: AdapterInitMethod, _ context: AdapterInitializer.LayerContext) -> MethodOutcome {
        let (out, inputs, rank) = (context.input.weight.rowCount, context.input.weight.columnCount, context.input.rank)
        var generator = SeededRandomGenerator(seed: LayerSeed.seed(context.options.seed, context.input.module))
        var a = Matrix<Float>(zeros: rank, inputs)
        switch method {
        case .gaussian:
            let deviation = 1 / Double(rank)
            for i in a.values.indices { a.values[i] = Float(generator.nextGaussian() * deviation) }
        default:
            let bound = 1 / Double(inputs).squareRoot()
            for i in a.values.indices { a.values[i] = Float((2 * generator.nextUniform() - 1) * bound) }
        }
        return MethodOutcome(loraA: a, loraB: Matrix(zeros: out, rank), usedSVD: false)
    }
}
