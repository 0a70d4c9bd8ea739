import Tensors

/// How far a quantized matrix `Q` is from its original `W` (both `[out, in]`), the numbers of
/// `quantize`'s per-layer ledger. Sums are accumulated in Float64 from exact Float64
/// differences, so the result does not depend on the Float32 rounding of `W − Q`.
public struct WeightErrorMetrics: Sendable, Equatable {
    /// ‖W‖²_F.
    public var weightSquaredNorm: Double
    /// ‖W − Q‖²_F.
    public var errorSquaredNorm: Double
    /// max |W − Q| over all elements.
    public var maxAbsError: Double

    public init(weightSquaredNorm: Double, errorSquaredNorm: Double, maxAbsError: Double) {
        self.weightSquaredNorm = weightSquaredNorm
        self.errorSquaredNorm = errorSquaredNorm
        self.maxAbsError = maxAbsError
    }

    /// ‖W − Q‖_F / ‖W‖_F; 0 for an exact copy, +∞ for a nonzero error on an all-zero `W`.
    public var relativeError: Double {
        if errorSquaredNorm == 0 { return 0 }
        return weightSquaredNorm == 0 ? .infinity : (errorSquaredNorm / weightSquaredNorm).squareRoot()
    }

    /// Signal-to-quantization-noise ratio in decibels, 10·log10(‖W‖² / ‖W − Q‖²); +∞ for an
    /// exact copy (the wire reports it as null).
    public var sqnrDecibels: Double {
        if errorSquaredNorm == 0 { return .infinity }
        if weightSquaredNorm == 0 { return -.infinity }
        return 10 * log10Double(weightSquaredNorm / errorSquaredNorm)
    }
}

public enum ErrorMetrics {
    /// The fast path: one pass over both matrices, four elements per step in two `SIMD2<Double>`
    /// accumulators per quantity (SSE2's Float64 width: measured 6× faster than `SIMD8<Double>`
    /// built from `SIMD8<Float>`, whose generic widening is not vectorised). Single-threaded on
    /// purpose: `quantize` runs layers in parallel.
    public static func weightError(original: Matrix<Float>, approximation: Matrix<Float>) -> WeightErrorMetrics {
        precondition(original.shape == approximation.shape, "shapes \(original.shape) and \(approximation.shape) differ")
        let count = original.values.count
        return original.values.withUnsafeBufferPointer { wBuffer in
            approximation.values.withUnsafeBufferPointer { qBuffer in
                guard count > 0 else { return WeightErrorMetrics(weightSquaredNorm: 0, errorSquaredNorm: 0, maxAbsError: 0) }
                let w = wBuffer.baseAddress!, q = qBuffer.baseAddress!
                var signalA = SIMD2<Double>(repeating: 0), signalB = signalA, noiseA = signalA, noiseB = signalA
                var largestA = 0.0, largestB = 0.0
                let vectorEnd = count - count % 4
                var index = 0
                while index < vectorEnd {
                    let wa = SIMD2<Double>(Double(w[index]), Double(w[index + 1]))
                    let wb = SIMD2<Double>(Double(w[index + 2]), Double(w[index + 3]))
                    let da = wa - SIMD2<Double>(Double(q[index]), Double(q[index + 1]))
                    let db = wb - SIMD2<Double>(Double(q[index + 2]), Double(q[index + 3]))
                    signalA += wa * wa
                    signalB += wb * wb
                    noiseA += da * da
                    noiseB += db * db
                    largestA = max(largestA, max(abs(da[0]), abs(da[1])))
                    largestB = max(largestB, max(abs(db[0]), abs(db[1])))
                    index += 4
                }
                var signal = (signalA + signalB).sum(), noise = (noiseA + noiseB).sum(), largest = max(largestA, largestB)
                while index < count {
                    let wi = Double(w[index]), difference = wi - Double(q[index])
                    signal += wi * wi
                    noise += difference * difference
                    largest = max(largest, abs(difference))
                    index += 1
                }
                return WeightErrorMetrics(weightSquaredNorm: signal, errorSquaredNorm: noise, maxAbsError: largest)
            }
        }
    }

    /// The scalar reference the fast path is tested against: one Float64 accumulator each.
    public static func weightErrorReference(original: Matrix<Float>, approximation: Matrix<Float>) -> WeightErrorMetrics {
        precondition(original.shape == approximation.shape)
        var signal = 0.0, noise = 0.0, largest = 0.0
        for index in original.values.indices {
            let w = Double(original.values[index]), q = Double(approximation.values[index])
            signal += w * w
            noise += (w - q) * (w - q)
            largest = max(largest, abs(w - q))
        }
        return WeightErrorMetrics(weightSquaredNorm: signal, errorSquaredNorm: noise, maxAbsError: largest)
    }

    /// The layer-output error ‖X(W − Q)ᵀ‖_F / ‖XWᵀ‖_F from the inputs' Gram matrix
    /// `H = XᵀX [in, in]` alone, since ‖XMᵀ‖²_F = tr(M H Mᵀ) = Σ_rows m·H·mᵀ. Float64 throughout;
    /// O(out·in²), meant for the calibrated layers of one request. nil when ‖XWᵀ‖ = 0.
    public static func outputRelativeError(original: Matrix<Float>, approximation: Matrix<Float>, gram: Matrix<Double>) -> Double? {
        precondition(original.shape == approximation.shape)
        precondition(gram.rowCount == original.columnCount && gram.columnCount == original.columnCount,
                     "the Gram matrix must be [in, in] = [\(original.columnCount), \(original.columnCount)]")
        let columns = original.columnCount
        var signal = 0.0, noise = 0.0
        var w = [Double](repeating: 0, count: columns), e = [Double](repeating: 0, count: columns)
        for row in 0..<original.rowCount {
            for c in 0..<columns {
                w[c] = Double(original[row, c])
                e[c] = w[c] - Double(approximation[row, c])
            }
            gram.values.withUnsafeBufferPointer { h in
                for i in 0..<columns {
                    var hw = 0.0, he = 0.0
                    let hRow = h.baseAddress! + i * columns
                    for j in 0..<columns {
                        hw += hRow[j] * w[j]
                        he += hRow[j] * e[j]
                    }
                    signal += w[i] * hw
                    noise += e[i] * he
                }
            }
        }
        guard signal > 0 else { return nil }
        return (max(noise, 0) / signal).squareRoot()
    }
}

#if canImport(Glibc)
import Glibc
private func log10Double(_ x: Double) -> Double { Glibc.log10(x) }
#else
import Foundation
private func log10Double(_ x: Double) -> Double { Foundation.log10(x) }
#endif
