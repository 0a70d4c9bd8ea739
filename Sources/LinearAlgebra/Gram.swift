internal import CBLAS
import Tensors

// Gram matrices H = XᵀX of activations, the statistic of GPTQ-style calibration. The inputs are
// Float32 activations; the products and sums are Float64 (docs/ARCHITECTURE.md, "Numerics").

extension LinearAlgebra {
    /// Rows of `X` converted to Float64 per `dsyrk` call; bounds the extra memory to
    /// `gramChunkRows · features` doubles while keeping the summation order fixed.
    static let gramChunkRows = 256

    /// `H = Xᵀ · X` accumulated in Float64.
    ///
    /// Shapes: `X` is `[samples, features]` Float32 (one activation vector per row); `H` is
    /// `[features, features]`, symmetric, both triangles filled. Each element is converted to
    /// Float64 before it is multiplied, so `H` equals the exact-in-Float64 product up to
    /// Float64 rounding. BLAS `dsyrk` on chunks of rows.
    public static func gram(_ x: Matrix<Float>) -> Matrix<Double> {
        var h = Matrix<Double>(zeros: x.columnCount, x.columnCount)
        // Shapes agree by construction; only a dimension beyond 32 bits could throw.
        do { try accumulateGram(x, into: &h) } catch { preconditionFailure("\(error)") }
        return h
    }

    /// `H ← H + α · Xᵀ · X`, accumulated in Float64 (for summing calibration batches).
    ///
    /// Shapes: `X` `[samples, features]` Float32, `H` `[features, features]` symmetric Float64.
    /// Only the upper triangle of `H` is read; both triangles are written. BLAS `dsyrk`.
    public static func accumulateGram(_ x: Matrix<Float>, into h: inout Matrix<Double>, alpha: Double = 1) throws {
        let features = x.columnCount
        guard h.rowCount == features, h.columnCount == features else {
            throw LinearAlgebraError.shapeMismatch(operation: "dsyrk", shapes: [x.shape, h.shape])
        }
        guard features > 0 else { return }
        let n = try blasDimension(features, "dsyrk")
        var chunk = [Double](repeating: 0, count: min(gramChunkRows, x.rowCount) * features)
        x.values.withUnsafeBufferPointer { source in
            chunk.withUnsafeMutableBufferPointer { converted in
                h.values.withUnsafeMutableBufferPointer { target in
                    var start = 0
                    while start < x.rowCount {
                        let rows = min(gramChunkRows, x.rowCount - start)
                        let base = start * features
                        for index in 0..<(rows * features) { converted[index] = Double(source[base + index]) }
                        // Row-major Xᵀ·X of this chunk into the upper triangle of H.
                        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, Int32(rows), alpha,
                                    converted.baseAddress, n, 1, target.baseAddress, n)
                        start += rows
                    }
                    mirrorUpperToLower(target, size: features)
                }
            }
        }
    }

    /// `H = Xᵀ · X` for Float64 `X` `[samples, features]`; symmetric `[features, features]`.
    /// BLAS `dsyrk`.
    public static func gram(_ x: Matrix<Double>) -> Matrix<Double> {
        let features = x.columnCount
        var h = Matrix<Double>(zeros: features, features)
        guard features > 0, x.rowCount > 0 else { return h }
        precondition(features <= Int(Int32.max) && x.rowCount <= Int(Int32.max), "dimension beyond BLAS range")
        x.values.withUnsafeBufferPointer { source in
            h.values.withUnsafeMutableBufferPointer { target in
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(features), Int32(x.rowCount), 1,
                            source.baseAddress, Int32(features), 0, target.baseAddress, Int32(features))
                mirrorUpperToLower(target, size: features)
            }
        }
        return h
    }
}
