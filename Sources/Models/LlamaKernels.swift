import Foundation
import Tensors

/// Row-wise kernels of the forward pass on raw row-major buffers (fp32 values; sums in Double).
enum LlamaKernels {
    /// HF RMSNorm per row: `y = x / sqrt(mean(x²) + eps) · weight`.
    static func rmsNorm(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                        weight: UnsafePointer<Float>, epsilon: Double) {
        Parallel.forEach(rows, minimumChunk: 16) { row in
            let x = input + row * width, y = output + row * width
            var sum: Float = 0
            var index = 0
            // Four partial sums in Float, combined in Double: fast and accurate enough for
            // widths in the thousands (the relative error is ~1e-7).
            var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
            while index + 4 <= width {
                s0 += x[index] * x[index]; s1 += x[index + 1] * x[index + 1]
                s2 += x[index + 2] * x[index + 2]; s3 += x[index + 3] * x[index + 3]
                index += 4
            }
            while index < width { sum += x[index] * x[index]; index += 1 }
            let total = Double(s0) + Double(s1) + Double(s2) + Double(s3) + Double(sum)
            let scale = Float(1 / (total / Double(width) + epsilon).squareRoot())
            for i in 0..<width { y[i] = (x[i] * scale) * weight[i] }
        }
    }

    /// cos/sin of `p · inv_freq[i]` for `p < positions`, `i < hd/2`: two `[positions, hd/2]` tables.
    static func ropeTables(positions: Int, inverseFrequencies: [Double]) -> (cos: [Float], sin: [Float]) {
        let half = inverseFrequencies.count
        var cosines = [Float](repeating: 0, count: positions * half), sines = cosines
        for p in 0..<positions {
            for i in 0..<half {
                // HF forms the angle in fp32 (`position · inv_freq`); Double here is at least as exact.
                let angle = Double(p) * inverseFrequencies[i]
                cosines[p * half + i] = Float(cos(angle))
                sines[p * half + i] = Float(sin(angle))
            }
        }
        return (cosines, sines)
    }

    /// rotate_half RoPE in place on `headCount` heads of `hd` values starting at column
    /// `firstColumn` of each row (row `p` is position `p`).
    static func applyRope(_ data: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, firstColumn: Int,
                          headCount: Int, headDimension: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headDimension / 2
        Parallel.forEach(rows, minimumChunk: 16) { p in
            let c = cos + p * half, s = sin + p * half
            for head in 0..<headCount {
                let x = data + p * rowStride + firstColumn + head * headDimension
                for i in 0..<half {
                    let x0 = x[i], x1 = x[i + half]
                    x[i] = x0 * c[i] - x1 * s[i]
                    x[i + half] = x1 * c[i] + x0 * s[i]
                }
            }
        }
    }

    /// In-place causal softmax of a `[rows, columns]` block of scores whose row `i` is position
    /// `firstRow + i`: softmax over columns `0…firstRow + i`, the rest zeroed.
    static func causalSoftmax(_ scores: UnsafeMutablePointer<Float>, rows: Int, columns: Int, firstRow: Int) {
        for i in 0..<rows {
            let row = scores + i * columns
            let count = firstRow + i + 1
            let maximum = maximumValue(row, count: count)
            // Exponentials in a loop without a reduction (so it vectorizes), then the sum with
            // eight partial sums (Swift does not reassociate float additions by itself).
            for j in 0..<count { row[j] = fastExp(row[j] - maximum) }
            let inverse = 1 / sum(row, count: count)
            for j in 0..<count { row[j] *= inverse }
            if count < columns { (row + count).update(repeating: 0, count: columns - count) }
        }
    }

    @inline(__always)
    static func maximumValue(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= count {
            m = pointwiseMax(m, SIMD8<Float>(x[j], x[j + 1], x[j + 2], x[j + 3], x[j + 4], x[j + 5], x[j + 6], x[j + 7]))
            j += 8
        }
        var result = m.max()
        while j < count { result = Swift.max(result, x[j]); j += 1 }
        return result
    }

    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var s = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= count {
            s += SIMD8<Float>(x[j], x[j + 1], x[j + 2], x[j + 3], x[j + 4], x[j + 5], x[j + 6], x[j + 7])
            j += 8
        }
        var result = s.sum()
        while j < count { result += x[j]; j += 1 }
        return result
    }

    /// `out[t, j] = silu(gateUp[t, j]) · gateUp[t, I + j]`.
    static func swiGLU(_ gateUp: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        Parallel.forEach(rows, minimumChunk: 16) { t in
            let g = gateUp + t * 2 * width, u = g + width, y = output + t * width
            for j in 0..<width {
                let x = g[j]
                y[j] = x / (1 + fastExp(-x)) * u[j]
            }
        }
    }

    /// `exp(x)` in Float with ~1 ulp error: Cody–Waite range reduction by ln 2 and a degree-6
    /// polynomial on [−ln2/2, ln2/2]. Branch-free so the loops it is in vectorize: inputs are
    /// clamped to [−87, 88], so anything below −87 gives exp(−87) ≈ 1.6e−38 instead of a
    /// subnormal or 0 (harmless in softmax and SiLU, where such terms vanish against 1).
    @inline(__always)
    static func fastExp(_ input: Float) -> Float {
        let x = Swift.min(Swift.max(input, -87), 88)
        // Round to nearest by the 1.5·2²³ trick (no call to rintf, so the loop vectorizes).
        let n = (x * 1.442695041 + 12_582_912) - 12_582_912
        let r = (x - n * 0.693145752) - n * 1.428606765e-6
        var p: Float = 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // n ∈ [−126, 127] here, so 2ⁿ is a normal float built from its exponent bits.
        return p * Float(bitPattern: UInt32(bitPattern: Int32(n) + 127) << 23)
    }
}
