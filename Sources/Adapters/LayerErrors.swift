import LinearAlgebra
import Quantization
import Tensors

/// The per-layer numbers `initAdapter` reports, all relative Frobenius norms in Float64.
public enum LayerErrors {
    /// `W − approximation` in Float64 `[out, in]`.
    public static func residual(original: Matrix<Float>, approximation: Matrix<Float>) -> Matrix<Double> {
        precondition(original.shape == approximation.shape)
        var values = [Double](repeating: 0, count: original.values.count)
        original.values.withUnsafeBufferPointer { w in
            approximation.values.withUnsafeBufferPointer { q in
                for i in values.indices { values[i] = Double(w[i]) - Double(q[i]) }
            }
        }
        return Matrix(rowCount: original.rowCount, columnCount: original.columnCount, values: values)
    }

    /// `W − approximation` in Float32 (PEFT's fp32 residual).
    public static func residualFloat(original: Matrix<Float>, approximation: Matrix<Float>) -> Matrix<Float> {
        precondition(original.shape == approximation.shape)
        var result = original
        result.values.withUnsafeMutableBufferPointer { w in
            approximation.values.withUnsafeBufferPointer { q in
                for i in 0..<w.count { w[i] -= q[i] }
            }
        }
        return result
    }

    /// `‖M‖²_F`.
    public static func squaredNorm(_ m: Matrix<Double>) -> Double { m.values.reduce(0) { $0 + $1 * $1 } }

    /// `‖M‖²_F` of a Float32 matrix, accumulated in Float64 four lanes at a time.
    public static func squaredNorm(_ m: Matrix<Float>) -> Double {
        m.values.withUnsafeBufferPointer { e in
            var lanes = SIMD4<Double>()
            let vectorEnd = e.count - e.count % 4
            var i = 0
            while i < vectorEnd {
                let v = SIMD4<Double>(Double(e[i]), Double(e[i + 1]), Double(e[i + 2]), Double(e[i + 3]))
                lanes += v * v
                i += 4
            }
            var total = lanes.sum()
            while i < e.count { total += Double(e[i]) * Double(e[i]); i += 1 }
            return total
        }
    }

    /// `‖X Mᵀ‖²_F = tr(M H Mᵀ)` from the Gram matrix `H = XᵀX [in, in]`: one `dgemm` and a dot.
    public static func outputSquaredNorm(_ m: Matrix<Double>, gram: Matrix<Double>) throws -> Double {
        let mh = try LinearAlgebra.multiply(m, gram)
        var sum = 0.0
        mh.values.withUnsafeBufferPointer { a in
            m.values.withUnsafeBufferPointer { b in
                for i in 0..<a.count { sum += a[i] * b[i] }
            }
        }
        return max(sum, 0)
    }

    /// `‖E − ΔW‖` where `ΔW` is what the adapter adds, `E = W − base` in Float64.
    public static func subtracting(_ e: Matrix<Double>, _ delta: Matrix<Float>) -> Matrix<Double> {
        precondition(e.shape == delta.shape)
        var result = e
        for i in result.values.indices { result.values[i] -= Double(delta.values[i]) }
        return result
    }

    public static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        if numerator == 0 { return 0 }
        return denominator == 0 ? .infinity : (numerator / denominator).squareRoot()
    }
}
