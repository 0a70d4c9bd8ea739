import Tensors

/// Deterministic small matrices and naive references for numeric tests. Independent of
/// LinearAlgebra on purpose: the references must not share code with what they check.
public enum RandomMatrices {
    /// Values uniform in `[-1, 1)` from a 64-bit linear congruential generator (Knuth's MMIX
    /// constants), filled row-major; the same seed gives the same matrix.
    public static func uniform<Scalar: BinaryFloatingPoint & Sendable>(_ rowCount: Int, _ columnCount: Int,
                                                                       seed: UInt64) -> Matrix<Scalar> {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        var values = [Scalar](repeating: 0, count: rowCount * columnCount)
        for index in values.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values[index] = Scalar(Double(state >> 11) * 0x1.0p-52 - 1)
        }
        return Matrix(rowCount: rowCount, columnCount: columnCount, values: values)
    }

    /// `op(A) · op(B)` by the textbook triple loop, summed in Float64.
    public static func naiveProduct<Scalar: BinaryFloatingPoint & Sendable>(
        _ a: Matrix<Scalar>, _ b: Matrix<Scalar>, transposeA: Bool = false, transposeB: Bool = false
    ) -> Matrix<Double> {
        let opA = transposeA ? a.transposed : a
        let opB = transposeB ? b.transposed : b
        precondition(opA.columnCount == opB.rowCount, "inner dimensions differ")
        var result = Matrix<Double>(zeros: opA.rowCount, opB.columnCount)
        for i in 0..<opA.rowCount {
            for j in 0..<opB.columnCount {
                var sum = 0.0
                for k in 0..<opA.columnCount { sum += Double(opA[i, k]) * Double(opB[k, j]) }
                result[i, j] = sum
            }
        }
        return result
    }

    /// The matrix converted elementwise to Float64.
    public static func double<Scalar: BinaryFloatingPoint & Sendable>(_ m: Matrix<Scalar>) -> Matrix<Double> {
        Matrix(rowCount: m.rowCount, columnCount: m.columnCount, values: m.values.map { Double($0) })
    }

    /// `max |I − MᵀM|` (columns of `M` orthonormal when ≈ 0), in Float64.
    public static func columnOrthonormalityError<Scalar: BinaryFloatingPoint & Sendable>(_ m: Matrix<Scalar>) -> Double {
        let gram = naiveProduct(m, m, transposeA: true)
        return gram.maxAbsDifference(Matrix<Double>.identity(m.columnCount))
    }
}
