import Foundation
import Tensors
@testable import Quantization

/// A tiny symmetric absmax round-to-nearest INT-k grid, local to the rotation and outlier tests
/// so they do not depend on the int family (written in parallel): per group of `groupSize`
/// columns (0 = the row), `scale = max|w|/(2^(bits−1) − 1)`, `q = clamp(round(w/scale),
/// −2^(bits−1), 2^(bits−1) − 1)`, `ŵ = scale·q`. Stores `bits` per code and a 16-bit scale per
/// group.
struct LocalRoundToNearestWeight: QuantizedWeight {
    let rowCount: Int
    let columnCount: Int
    let spec: QuantizationSpec
    let values: [Float]
    let groupCount: Int

    var storageBitCount: Int { spec.bits * rowCount * columnCount + 16 * groupCount }

    func dequantized() -> Matrix<Float> { Matrix(rowCount: rowCount, columnCount: columnCount, values: values) }

    static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) -> LocalRoundToNearestWeight {
        let groupSize = spec.groupSize == 0 ? weight.columnCount : spec.groupSize
        let maxCode = Float((1 << (spec.bits - 1)) - 1)
        var values = weight.values
        var groupCount = 0
        for row in 0..<weight.rowCount {
            for start in stride(from: row * weight.columnCount, to: (row + 1) * weight.columnCount, by: groupSize) {
                let end = min(start + groupSize, (row + 1) * weight.columnCount)
                groupCount += 1
                let absmax = values[start..<end].reduce(Float(0)) { max($0, abs($1)) }
                let scale = absmax > 0 ? absmax / maxCode : 1
                for i in start..<end {
                    values[i] = scale * min(maxCode, max(-maxCode - 1, (values[i] / scale).rounded()))
                }
            }
        }
        return LocalRoundToNearestWeight(rowCount: weight.rowCount, columnCount: weight.columnCount, spec: spec,
                                         values: values, groupCount: groupCount)
    }

    /// The grid step for `IncoherenceAndOutliers.quantize(…, grid:)`, with the inner spec.
    static func grid(_ spec: QuantizationSpec) -> IncoherenceAndOutliers.Grid {
        var inner = spec
        inner.rotation = nil
        inner.outliers = nil
        return { matrix, _ in quantize(matrix, spec: inner) }
    }
}

/// Inputs shared by the rotation and outlier tests.
enum IncoherenceTestMatrices {
    /// N(0, σ²) entries from `SeededRandomGenerator`-independent Box–Muller over SplitMix64.
    static func gaussian(_ rowCount: Int, _ columnCount: Int, seed: UInt64, standardDeviation: Double = 0.02) -> Matrix<Float> {
        var state = seed
        func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) * 0x1.0p-53
        }
        let values = (0..<(rowCount * columnCount)).map { _ -> Float in
            let radius = (-2 * Foundation.log(1 - uniform())).squareRoot()
            return Float(standardDeviation * radius * Foundation.cos(2 * Double.pi * uniform()))
        }
        return Matrix(rowCount: rowCount, columnCount: columnCount, values: values)
    }

    /// A Gaussian matrix whose `outlierColumns` columns are scaled by `factor`: the activation-
    /// outlier channels LLM weights show (QuaRot §1).
    static func gaussianWithOutlierColumns(_ rowCount: Int, _ columnCount: Int, outlierColumns: [Int],
                                           factor: Float, seed: UInt64) -> Matrix<Float> {
        var matrix = gaussian(rowCount, columnCount, seed: seed)
        for row in 0..<rowCount {
            for column in outlierColumns { matrix[row, column] *= factor }
        }
        return matrix
    }

    static func relativeError(_ original: Matrix<Float>, _ approximation: Matrix<Float>) -> Double {
        var error = 0.0, norm = 0.0
        for (a, b) in zip(original.values, approximation.values) {
            error += (Double(a) - Double(b)) * (Double(a) - Double(b))
            norm += Double(a) * Double(a)
        }
        return (error / norm).squareRoot()
    }
}
