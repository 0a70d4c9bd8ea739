import LinearAlgebra
import Quantization
import Tensors

/// Running calibration statistics over (layer, input site) slots, for any architecture: the
/// fp64 Gram matrix `Σ_t x_tᵀ x_t`, Σ|x| and Σx² per channel, and the token count. Both the Llama
/// and the BERT collectors feed it from their forward-pass observers.
struct CalibrationAccumulator {
    private var grams: [[Matrix<Double>?]]
    private var absoluteSums: [[[Double]]]
    private var squareSums: [[[Double]]]
    private(set) var tokenCount = 0

    init(layerCount: Int, siteCount: Int) {
        grams = Array(repeating: Array(repeating: nil, count: siteCount), count: layerCount)
        absoluteSums = Array(repeating: Array(repeating: [], count: siteCount), count: layerCount)
        squareSums = absoluteSums
    }

    /// Adds one input `[T, in]` of a site's linear layers.
    mutating func add(layer: Int, site: Int, input: Matrix<Float>) throws {
        if grams[layer][site] == nil {
            grams[layer][site] = Matrix<Double>(zeros: input.columnCount, input.columnCount)
            absoluteSums[layer][site] = [Double](repeating: 0, count: input.columnCount)
            squareSums[layer][site] = absoluteSums[layer][site]
        }
        try LinearAlgebra.accumulateGram(input, into: &grams[layer][site]!)
        Self.accumulateChannels(input, absolute: &absoluteSums[layer][site], squares: &squareSums[layer][site])
    }

    mutating func countTokens(_ count: Int) { tokenCount += count }

    /// The statistics by HF weight name: every projection `names(layer, site)` of a slot shares them.
    func statistics(names: (Int, Int) -> [String]) -> [String: LayerCalibration] {
        var result: [String: LayerCalibration] = [:]
        let count = Double(max(1, tokenCount))
        for layer in grams.indices {
            for site in grams[layer].indices {
                guard let gram = grams[layer][site] else { continue }
                let statistics = LayerCalibration(gram: gram, tokenCount: tokenCount,
                                                  meanAbsolute: absoluteSums[layer][site].map { $0 / count },
                                                  rootMeanSquare: squareSums[layer][site].map { ($0 / count).squareRoot() })
                for name in names(layer, site) { result[name] = statistics }
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
