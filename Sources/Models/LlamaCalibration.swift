import LinearAlgebra
import Quantization
import Tensors

/// Where a linear layer of a Llama block reads its input. Layers that read the same input share
/// one statistic: q/k/v read `attentionInput`, gate/up read `mlpInput`.
public enum LinearInputSite: Sendable, CaseIterable {
    case attentionInput, attentionOutput, mlpInput, mlpActivated

    /// The HF weight names (under `model.layers.N.`) that read this input.
    public var projections: [String] {
        switch self {
        case .attentionInput: return ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]
        case .attentionOutput: return ["self_attn.o_proj"]
        case .mlpInput: return ["mlp.gate_proj", "mlp.up_proj"]
        case .mlpActivated: return ["mlp.down_proj"]
        }
    }
}

/// Sees each linear layer's input `[T, in]` during a forward pass: (layer index, site, input).
public typealias LinearInputObserver = (Int, LinearInputSite, Matrix<Float>) throws -> Void

/// Calibration statistics of a Llama model (algorithms.md §3, §4, §9): per linear input, the
/// fp64 Gram matrix `H = Σ_t x_tᵀ x_t [in, in]`, the per-channel mean |x| and RMS, and the token
/// count, accumulated over non-overlapping windows of the calibration text.
public enum LlamaCalibration {
    /// `windows`: token windows (each run from position 0). `progress(done, total)` after each
    /// window; throw from it to stop. Returns the statistics by HF weight name
    /// (`model.layers.N.self_attn.q_proj.weight`, …); names that share an input share values.
    public static func collect(model: LlamaModel, windows: [[Int]],
                               progress: (Int, Int) throws -> Void) throws -> [String: LayerCalibration] {
        let sites = LinearInputSite.allCases
        var grams: [[Matrix<Double>?]] = Array(repeating: Array(repeating: nil, count: sites.count), count: model.layers.count)
        var absoluteSums: [[[Double]]] = Array(repeating: Array(repeating: [], count: sites.count), count: model.layers.count)
        var squareSums = absoluteSums
        var tokenCount = 0
        for (index, window) in windows.enumerated() {
            _ = try model.finalHiddenStates(tokens: window) { layer, site, input in
                let slot = sites.firstIndex(of: site)!
                if grams[layer][slot] == nil {
                    grams[layer][slot] = Matrix<Double>(zeros: input.columnCount, input.columnCount)
                    absoluteSums[layer][slot] = [Double](repeating: 0, count: input.columnCount)
                    squareSums[layer][slot] = absoluteSums[layer][slot]
                }
                try LinearAlgebra.accumulateGram(input, into: &grams[layer][slot]!)
                Self.accumulateChannels(input, absolute: &absoluteSums[layer][slot], squares: &squareSums[layer][slot])
            }
            tokenCount += window.count
            try progress(index + 1, windows.count)
        }
        var result: [String: LayerCalibration] = [:]
        let count = Double(max(1, tokenCount))
        for layer in 0..<model.layers.count {
            for (slot, site) in sites.enumerated() {
                guard let gram = grams[layer][slot] else { continue }
                let statistics = LayerCalibration(gram: gram, tokenCount: tokenCount,
                                                  meanAbsolute: absoluteSums[layer][slot].map { $0 / count },
                                                  rootMeanSquare: squareSums[layer][slot].map { ($0 / count).squareRoot() })
                for projection in site.projections { result["model.layers.\(layer).\(projection).weight"] = statistics }
            }
        }
        return result
    }

    /// Σ_t |x_tj| and Σ_t x_tj² per column j, in Float64.
    static func accumulateChannels(_ input: Matrix<Float>, absolute: inout [Double], squares: inout [Double]) {
        let width = input.columnCount
        input.values.withUnsafeBufferPointer { values in
            for row in 0..<input.rowCount {
                let base = row * width
                for column in 0..<width {
                    let value = Double(values[base + column])
                    absolute[column] += abs(value)
                    squares[column] += value * value
                }
            }
        }
    }
}
