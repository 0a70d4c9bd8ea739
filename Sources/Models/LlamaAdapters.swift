import Adapters
import LinearAlgebra
import Tensors

/// One unmerged LoRA on a sub-block of a stacked projection (q/k/v share one `[T, qkv]` output,
/// gate/up one `[T, 2·intermediate]`): `y[:, offset ..< offset + out] += (x·Aᵀ)·(s·B)ᵀ`, and for
/// DoRA the sub-block is then scaled per column by `f = m / ‖W + s·B·A‖_row` (PEFT
/// `DoraLinearVariant.forward` with dropout off; the bias is added after, unscaled).
public struct LinearLoRA: Sendable {
    /// `[r, in]` (QA-LoRA pooling expanded to the dense input width).
    public let loraA: Matrix<Float>
    /// `s · B`, `[out, r]`.
    public let scaledB: Matrix<Float>
    public let columnOffset: Int
    public let doraFactor: [Float]?
}

/// The adapters of one decoder layer, per stacked projection.
public struct LlamaLayerLoRA: Sendable {
    public var queryKeyValue: [LinearLoRA] = []
    public var output: [LinearLoRA] = []
    public var gateUp: [LinearLoRA] = []
    public var down: [LinearLoRA] = []
    var isEmpty: Bool { queryKeyValue.isEmpty && output.isEmpty && gateUp.isEmpty && down.isEmpty }
}

public enum LlamaAdapterError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The adapter names a module this model does not have, or has with another shape.
    case mismatch(module: String, reason: String)

    public var description: String {
        switch self { case let .mismatch(module, reason): return "\(module): \(reason)" }
    }
}

extension LlamaModel {
    /// This model with `adapter` applied unmerged to its projections (weights shared, not
    /// copied). Every adapted module must be one of the seven projections with matching shapes.
    public func applying(_ adapter: LoRAAdapter) throws -> LlamaModel {
        let c = configuration
        let (h, hd, nh, nkv, inter) = (c.hiddenSize, c.headDimension, c.headCount, c.keyValueHeadCount, c.intermediateSize)
        var perLayer = [LlamaLayerLoRA](repeating: LlamaLayerLoRA(), count: layers.count)
        for layer in adapter.layers {
            let parts = layer.module.split(separator: ".")
            guard parts.count == 5, parts[0] == "model", parts[1] == "layers", let index = Int(parts[2]), index >= 0, index < layers.count else {
                throw LlamaAdapterError.mismatch(module: layer.module, reason: "not a projection of this model's \(layers.count) decoder layers")
            }
            let weights = layers[index]
            let slot: (matrix: Matrix<Float>, offset: Int, rows: Int, columns: Int)
            switch "\(parts[3]).\(parts[4])" {
            case "self_attn.q_proj": slot = (weights.queryKeyValue, 0, nh * hd, h)
            case "self_attn.k_proj": slot = (weights.queryKeyValue, nh * hd, nkv * hd, h)
            case "self_attn.v_proj": slot = (weights.queryKeyValue, (nh + nkv) * hd, nkv * hd, h)
            case "self_attn.o_proj": slot = (weights.output, 0, h, nh * hd)
            case "mlp.gate_proj": slot = (weights.gateUp, 0, inter, h)
            case "mlp.up_proj": slot = (weights.gateUp, inter, inter, h)
            case "mlp.down_proj": slot = (weights.down, 0, h, inter)
            default: throw LlamaAdapterError.mismatch(module: layer.module, reason: "not one of the seven Llama projections")
            }
            guard layer.outputWidth == slot.rows, layer.inputWidth == slot.columns else {
                throw LlamaAdapterError.mismatch(module: layer.module,
                    reason: "the adapter is [\(layer.outputWidth), \(layer.inputWidth)] but the model's weight is [\(slot.rows), \(slot.columns)]")
            }
            let scale = Float(adapter.scale(of: layer))
            let dense = layer.denseLoraA
            var factor: [Float]?
            if let magnitude = layer.magnitude {
                let base = Matrix(rowCount: slot.rows, columnCount: slot.columns,
                                  values: Array(slot.matrix.values[(slot.offset * slot.columns)..<((slot.offset + slot.rows) * slot.columns)]))
                var plain = layer
                plain.magnitude = nil                                                    // ‖W + ΔW‖_row, not yet rescaled
                let norms = RowNorms.of(adapter.adaptedWeight(base: base, layer: plain))
                factor = zip(magnitude, norms).map { m, n in n == 0 ? 0 : Float(Double(m) / n) }
            }
            let lora = LinearLoRA(loraA: dense, scaledB: Matrix(rowCount: layer.loraB.rowCount, columnCount: layer.loraB.columnCount,
                                                                 values: layer.loraB.values.map { $0 * scale }),
                                  columnOffset: slot.offset, doraFactor: factor)
            switch parts[4] {
            case "q_proj", "k_proj", "v_proj": perLayer[index].queryKeyValue.append(lora)
            case "o_proj": perLayer[index].output.append(lora)
            case "gate_proj", "up_proj": perLayer[index].gateUp.append(lora)
            default: perLayer[index].down.append(lora)
            }
        }
        return try LlamaModel(configuration: configuration, embedding: embedding, layers: layers, finalNorm: finalNorm,
                              languageModelHead: languageModelHead, adapters: perLayer, ropeFrequencyFactors: ropeFrequencyFactors)
    }

    /// Adds each adapter's `(x·Aᵀ)·(s·B)ᵀ` into its columns of `output` `[T, stacked out]`, then
    /// applies the DoRA factor to those columns. `output` holds `x·Wᵀ` of the same sub-blocks.
    static func addLoRA(_ adapters: [LinearLoRA], input: Matrix<Float>, output: inout Matrix<Float>) throws {
        for lora in adapters {
            let reduced = try LinearAlgebra.multiply(input, lora.loraA, transposeB: true)          // [T, r]
            let delta = try LinearAlgebra.multiply(reduced, lora.scaledB, transposeB: true)        // [T, out]
            let (rows, width, stride, offset) = (delta.rowCount, delta.columnCount, output.columnCount, lora.columnOffset)
            output.values.withUnsafeMutableBufferPointer { out in
                delta.values.withUnsafeBufferPointer { d in
                    for t in 0..<rows {
                        let base = t * stride + offset
                        for j in 0..<width { out[base + j] += d[t * width + j] }
                        if let factor = lora.doraFactor { for j in 0..<width { out[base + j] *= factor[j] } }
                    }
                }
            }
        }
    }

    /// `x += a·Wᵀ` with the layer's adapters on W. Without DoRA the base product accumulates into
    /// `x` exactly as without adapters and the LoRA term is added after (so a zero B changes
    /// nothing, to the bit); with DoRA the product goes through a scratch buffer to be rescaled.
    static func accumulateProjection(_ a: Matrix<Float>, _ w: Matrix<Float>, adapters: [LinearLoRA],
                                     into x: inout Matrix<Float>) throws {
        if adapters.contains(where: { $0.doraFactor != nil }) {
            var product = Matrix<Float>.uninitialized(a.rowCount, w.rowCount)
            try rowParallelProduct(a, w, into: &product, accumulate: false)
            try addLoRA(adapters, input: a, output: &product)
            for i in x.values.indices { x.values[i] += product.values[i] }
            return
        }
        try rowParallelProduct(a, w, into: &x, accumulate: true)
        guard !adapters.isEmpty else { return }
        var delta = Matrix<Float>(zeros: a.rowCount, w.rowCount)
        try addLoRA(adapters, input: a, output: &delta)
        for i in x.values.indices { x.values[i] += delta.values[i] }
    }
}
