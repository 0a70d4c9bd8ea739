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
        var grams: [[Matrix<Double>?]] = Array(repeating: Array(repeating: nil, count: sites.count), count: model.layers.count)
        var absoluteSums: [[[Double]]] = Array(repeating: Array(repeating: [], count: sites.count), count: model.layers.count)
        var squareSums = absoluteSums
        var tokenCount = 0
        for (index, window) in windows.enumerated() {
            _ = try model.hiddenStates(tokens: window) { layer, site, input in
                let slot = sites.firstIndex(of: site)!
                if grams[layer][slot] == nil {
                    grams[layer][slot] = Matrix<Double>(zeros: input.columnCount, input.columnCount)
                    absoluteSums[layer][slot] = [Double](repeating: 0, count: input.columnCount)
                    squareSums[layer][slot] = absoluteSums[layer][slot]
                }
                try LinearAlgebra.accumulateGram(input, into: &grams[layer][slot]!)
                LlamaCalibration.accumulateChannels(input, absolute: &absoluteSums[layer][slot], squares: &squareSums[layer][slot])
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
                for projection in site.projections { result["encoder.layer.\(layer).\(projection).weight"] = statistics }
            }
        }
        return result
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
