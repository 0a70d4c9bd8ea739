import LinearAlgebra
import Quantization
import Tensors

/// Calibration statistics of a BERT encoder, the same as `LlamaCalibration`: per linear input,
/// the fp64 Gram matrix `Σ_t x_tᵀ x_t`, per-channel mean |x| and RMS, and the token count.
public enum BertCalibration {
    /// `windows`: token sequences, each a complete BERT input (`[CLS] … [SEP]`, ≤ 512 ids; see
    /// `windows(tokens:contextLength:classToken:separatorToken:)`). Returns the statistics by HF
    /// weight name (`encoder.layer.N.attention.self.query.weight`, …); q/k/v share values.
    public static func collect(model: BertModel, windows: [[Int]],
                               progress: (Int, Int) throws -> Void) throws -> [String: LayerCalibration] {
        let sites = BertLinearInputSite.allCases
        var sums = CalibrationAccumulator(layerCount: model.layers.count, siteCount: sites.count)
        for (index, window) in windows.enumerated() {
            _ = try model.hiddenStates(tokens: window) { layer, site, input in
                try sums.add(layer: layer, site: sites.firstIndex(of: site)!, input: input)
            }
            sums.countTokens(window.count)
            try progress(index + 1, windows.count)
        }
        return sums.statistics { layer, site in sites[site].projections.map { "encoder.layer.\(layer).\($0).weight" } }
    }

    /// BERT calibration windows: the text's token ids *without* specials, split into consecutive
    /// chunks of at most `contextLength − 2` ids, each wrapped as `[CLS] chunk [SEP]` so that
    /// every window is a well-formed input of ≤ `contextLength` positions (≤ 512 for MiniLM).
    /// Every token (specials included) counts toward the token count.
    public static func windows(tokens: [Int], contextLength: Int, classToken: Int, separatorToken: Int) -> [[Int]] {
        let chunk = max(1, contextLength - 2)
        return stride(from: 0, to: tokens.count, by: chunk).map {
            [classToken] + tokens[$0..<min($0 + chunk, tokens.count)] + [separatorToken]
        }
    }
}
