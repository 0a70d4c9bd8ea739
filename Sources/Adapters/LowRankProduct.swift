import LinearAlgebra
import Tensors

/// Products of LoRA factors, in Float64.
public enum LowRankProduct {
    /// `s · B · A` `[out, in]`; with a pooling group `L` (QA-LoRA) `A` is `[r, in / L]` and
    /// `ΔW[o, i] = s · (B·A)[o, i / L] / L`.
    public static func delta(loraB: Matrix<Float>, loraA: Matrix<Float>, scale: Double,
                             poolingGroupSize: Int? = nil) -> Matrix<Float> {
        let product = try! LinearAlgebra.multiply(widened(loraB), widened(loraA))   // shapes agree by construction
        guard let group = poolingGroupSize, group > 1 else {
            return Matrix(rowCount: product.rowCount, columnCount: product.columnCount,
                          values: product.values.map { Float($0 * scale) })
        }
        let groupCount = product.columnCount
        var result = Matrix<Float>(zeros: product.rowCount, groupCount * group)
        let factor = scale / Double(group)
        for row in 0..<product.rowCount {
            for g in 0..<groupCount {
                let value = Float(product[row, g] * factor)
                let start = row * result.columnCount + g * group
                for i in start..<(start + group) { result.values[i] = value }
            }
        }
        return result
    }

    /// `B · A` in Float64 (no scale, no pooling).
    public static func product(loraB: Matrix<Double>, loraA: Matrix<Double>) throws -> Matrix<Double> {
        try LinearAlgebra.multiply(loraB, loraA)
    }

    public static func widened(_ matrix: Matrix<Float>) -> Matrix<Double> {
        Matrix(rowCount: matrix.rowCount, columnCount: matrix.columnCount, values: matrix.values.map(Double.init))
    }

    public static func narrowed(_ matrix: Matrix<Double>) -> Matrix<Float> {
        Matrix(rowCount: matrix.rowCount, columnCount: matrix.columnCount, values: matrix.values.map { Float($0) })
    }
}
