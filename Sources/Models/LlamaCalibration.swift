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
        var sums = CalibrationAccumulator(layerCount: model.layers.count, siteCount: sites.count)
        for (index, window) in windows.enumerated() {
            _ = try model.finalHiddenStates(tokens: window) { layer, site, input in
                try sums.add(layer: layer, site: sites.firstIndex(of: site)!, input: input)
            }
            sums.countTokens(window.count)
            try progress(index + 1, windows.count)
        }
        return sums.statistics { layer, site in sites[site].projections.map { "model.layers.\(layer).\($0).weight" } }
    }
}
