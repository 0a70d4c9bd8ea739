import Tensors

/// DoRA merge and unmerge (Liu et al., arXiv 2402.09353; PEFT `DoraLinearVariant.merge_safe` and
/// `unmerge`, algorithms.md §12).
///
/// With `W [out, in]`, `ΔW = s · B · A` (dense A for QA-LoRA), magnitude `m [out]` and the row norms
/// of the *original* weight `n = ‖W + ΔW‖_row` (over the input dimension, one per output unit):
///
///     merge:    W' = diag(f) · (W + ΔW),   f = m / n
///     unmerge:  W  = diag(f)⁻¹ · W' − ΔW   (with the n cached at merge time)
///
/// The norms cannot be recomputed from `W'` (its row norms are `m`), hence the cache. Everything
/// runs in Float64; only `W'` and the recovered `W` are rounded to Float32. A row with `n = 0`
/// (`W = −ΔW` there) merges to 0 (`f = 0`, where PEFT would divide by zero) and unmerges to `−ΔW`,
/// which is exact; a row with `m = 0` merges to 0 and cannot be recovered (it comes back as `−ΔW`).
public enum DoRAMerge {
    public static func merge(base: Matrix<Float>, layer: LoRALayer, scale: Double) -> (merged: Matrix<Float>, cachedNorms: [Double]) {
        let magnitude = checked(base, layer)
        let (rows, columns) = (base.rowCount, base.columnCount)
        var sum = layer.deltaWeight64(scale: scale)           // W + ΔW, in place
        var norms = [Double](repeating: 0, count: rows)
        var merged = Matrix<Float>(zeros: rows, columns)
        base.values.withUnsafeBufferPointer { w in
            sum.values.withUnsafeMutableBufferPointer { s in
                merged.values.withUnsafeMutableBufferPointer { out in
                    for row in 0..<rows {
                        let start = row * columns
                        var squares = 0.0
                        for i in start..<(start + columns) {
                            s[i] += Double(w[i])
                            squares += s[i] * s[i]
                        }
                        let norm = squares.squareRoot()
                        norms[row] = norm
                        let factor = norm == 0 ? 0 : Double(magnitude[row]) / norm
                        for i in start..<(start + columns) { out[i] = Float(factor * s[i]) }
                    }
                }
            }
        }
        return (merged, norms)
    }

    public static func unmerge(merged: Matrix<Float>, layer: LoRALayer, scale: Double, cachedNorms: [Double]) -> Matrix<Float> {
        let magnitude = checked(merged, layer)
        precondition(cachedNorms.count == merged.rowCount, "one cached norm per output row expected")
        let (rows, columns) = (merged.rowCount, merged.columnCount)
        let delta = layer.deltaWeight64(scale: scale)
        var original = Matrix<Float>(zeros: rows, columns)
        merged.values.withUnsafeBufferPointer { w in
            delta.values.withUnsafeBufferPointer { d in
                original.values.withUnsafeMutableBufferPointer { out in
                    for row in 0..<rows {
                        let m = Double(magnitude[row])
                        // 1 / f = n / m; a zero f (n = 0 or m = 0) leaves only −ΔW.
                        let inverse = m == 0 || cachedNorms[row] == 0 ? 0 : cachedNorms[row] / m
                        let start = row * columns
                        for i in start..<(start + columns) { out[i] = Float(Double(w[i]) * inverse - d[i]) }
                    }
                }
            }
        }
        return original
    }

    static func checked(_ weight: Matrix<Float>, _ layer: LoRALayer) -> [Float] {
        guard let magnitude = layer.magnitude else { preconditionFailure("\(layer.module) has no DoRA magnitude") }
        precondition(weight.rowCount == layer.outputWidth && weight.columnCount == layer.inputWidth,
                     "\(layer.module): weight \(weight.shape) but the adapter is [\(layer.outputWidth), \(layer.inputWidth)]")
        precondition(magnitude.count == weight.rowCount, "one magnitude per output row expected")
        return magnitude
    }
}
