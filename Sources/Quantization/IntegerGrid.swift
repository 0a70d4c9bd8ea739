import Tensors

/// Uniform INT-k, `bits` 2…8, per group of `groupSize` input columns (algorithms.md §14).
///
/// - **Asymmetric**, GPTQ `Quantizer.find_params` (IST-DASLab/gptq `quant.py`): the range always
///   contains 0, `xmin = min(min(group), 0)`, `xmax = max(max(group), 0)` (`[−1, 1]` when both are
///   0); `σ = (xmax − xmin)/(2^b − 1)`, `z = round(−xmin/σ)` clamped to `0…2^b − 1`.
/// - **Symmetric**, QuaRot `sym_quant` / AWQ: signed codes `q ∈ −2^(b−1)…2^(b−1) − 1`,
///   `σ = max(absmax, 1e−5)/(2^(b−1) − 1)`; they are stored offset, `code = q + 2^(b−1)`, so both
///   variants share `x̂ = σ·(code − z)` with the constant `z = 2^(b−1)` (the most negative code
///   is reached only by clipping). This is not GPTQ's own `--sym` (`σ = 2·absmax/(2^b − 1)`).
/// - Codes `code = clamp(round(x/σ) + z, 0, 2^b − 1)`: division, not a reciprocal, and rounding
///   half to even, as `torch.round(x / scale)` in both references (§0.2, §14(e)).
/// - Scales are rounded to FP16 (clamped to [2⁻¹⁴, 65504]) *before* `z` and the codes are
///   computed, so `dequantized()` is exactly what an FP16-scale export (GPTQ `scales`) reproduces.
/// - `clipSearch` (GPTQ/QuaRot `mse=True`, `grid = 100`, `maxshrink = 0.8`): every group tries the
///   80 ratios `p = 1, 0.99, …, 0.21`, shrinking `(xmin, xmax)` (symmetric: `absmax`) by `p`, and
///   keeps the first `p` with the least squared error `Σ (x̂ − x)²` (the references use the
///   exponent 2.4; the squared error is what our error ledger reports). `p = 1` is a candidate,
///   so the search never does worse than plain min-max on a group.
public enum IntegerGrid {
    public static let isImplemented = true

    /// Clip ratios tried by `clipSearch`: `1 − i/100` for `i` in `0..<80`.
    public static let clipRatios: [Float] = (0..<80).map { Float(1 - Double($0) / 100) }

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        try quantizeGrid(weight, spec: spec)
    }

    /// The concrete stored form (for exporters and tests).
    public static func quantizeGrid(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> GroupedGridWeight {
        try GroupedGridQuantizer.validate(weight, spec: spec, method: .int)
        return GroupedGridQuantizer.quantize(weight, spec: spec, rule: rule(spec))
    }

    public static func rule(_ spec: QuantizationSpec) -> GridRule {
        GridRule(kind: .integer(symmetric: spec.symmetric), bits: spec.bits, clipSearch: spec.clipSearch)
    }

    /// A scale as stored: rounded to FP16 (nearest even), clamped to FP16's normal range so that
    /// it is never 0, subnormal or infinite.
    @inlinable
    public static func float16Scale(_ scale: Float) -> Float {
        Float(Float16(Swift.min(Swift.max(scale, 0x1p-14), 65504)))
    }

    /// Parameters from a group's range; `clipSearch` also needs the values.
    public static func fit(_ values: UnsafeBufferPointer<Float>, bits: Int, symmetric: Bool, clipSearch: Bool) -> GroupParameters {
        let (minimum, maximum) = GroupStatistics.minMax(values)
        return fit(values, minimum: minimum, maximum: maximum, bits: bits, symmetric: symmetric, clipSearch: clipSearch)
    }

    public static func fit(_ values: UnsafeBufferPointer<Float>, minimum: Float, maximum: Float, bits: Int,
                           symmetric: Bool, clipSearch: Bool) -> GroupParameters {
        let plain = parameters(minimum: minimum, maximum: maximum, bits: bits, symmetric: symmetric)
        guard clipSearch else { return plain }
        let maxCode = Float((1 << bits) - 1)
        var best = plain
        var bestError = Float.infinity
        for ratio in clipRatios {
            let candidate = parameters(minimum: ratio * minimum, maximum: ratio * maximum, bits: bits, symmetric: symmetric)
            let error = squaredError(values, candidate, maxCode: maxCode)
            if error < bestError {
                bestError = error
                best = candidate
            }
        }
        return best
    }

    /// `Σ (x̂ − x)²` of a group under `parameters`, summed in Float32 over 8 interleaved lanes
    /// (element `i` into lane `i mod 8`, then the lanes in order): this order is part of the
    /// definition, shared by the fast path and the reference, and lets the loop run in SIMD.
    @inlinable
    public static func squaredError(_ values: UnsafeBufferPointer<Float>, _ parameters: GroupParameters, maxCode: Float) -> Float {
        var lanes: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &lanes) { raw in
            let lane = raw.bindMemory(to: Float.self)
            let count = values.count
            let fullCount = count - count % 8
            var index = 0
            while index < fullCount {
                for offset in 0..<8 {
                    let value = values[index + offset]
                    let difference = parameters.scale * (roundedCode(value, parameters, maxCode: maxCode) - parameters.zeroPoint) - value
                    lane[offset] += difference * difference
                }
                index += 8
            }
            for index in fullCount..<count {
                let value = values[index]
                let difference = parameters.scale * (roundedCode(value, parameters, maxCode: maxCode) - parameters.zeroPoint) - value
                lane[index - fullCount] += difference * difference
            }
            var total: Float = 0
            for offset in 0..<8 { total += lane[offset] }
            return total
        }
    }

    /// Min-max parameters of a range (before any clipping search).
    @inlinable
    public static func parameters(minimum: Float, maximum: Float, bits: Int, symmetric: Bool) -> GroupParameters {
        if symmetric {
            let half = Float(1 << (bits - 1))
            let absmax = Swift.max(Swift.max(-minimum, maximum), 1e-5)
            return GroupParameters(scale: float16Scale(absmax / (half - 1)), zeroPoint: half)
        }
        let maxCode = Float((1 << bits) - 1)
        var low = Swift.min(minimum, 0), high = Swift.max(maximum, 0)
        if low == 0 && high == 0 { (low, high) = (-1, 1) }
        let scale = float16Scale((high - low) / maxCode)
        let zero = Swift.min(Swift.max((-low / scale).rounded(.toNearestOrEven), 0), maxCode)
        return GroupParameters(scale: scale, zeroPoint: zero)
    }

    /// `clamp(round(x/σ) + z, 0, maxCode)`, rounding half to even.
    @inlinable
    public static func code(_ value: Float, _ parameters: GroupParameters, maxCode: Float) -> UInt8 {
        let shifted = (value / parameters.scale).rounded(.toNearestOrEven) + parameters.zeroPoint
        return UInt8(Swift.min(Swift.max(shifted, 0), maxCode))
    }

    /// `code` as a Float by arithmetic and selects alone, so that loops over it vectorize on
    /// baseline x86-64 (no `roundps`): after clamping `x/σ` to ±2²², adding and subtracting 1.5·2²³
    /// rounds it to the nearest integer, ties to even, under the default rounding mode; the clamp
    /// cannot change the final code, which is clamped to `0…maxCode ≤ 255` anyway. (Swift's
    /// `min`/`max` order NaNs with branches; plain comparisons become `minps`/`maxps`.)
    @inlinable @inline(__always)
    public static func roundedCode(_ value: Float, _ parameters: GroupParameters, maxCode: Float) -> Float {
        let magic: Float = 12_582_912  // 1.5·2²³
        var quotient = value / parameters.scale
        quotient = quotient < -0x1p22 ? -0x1p22 : quotient
        quotient = quotient > 0x1p22 ? 0x1p22 : quotient
        var shifted = (quotient + magic) - magic + parameters.zeroPoint
        shifted = shifted < 0 ? 0 : shifted
        return shifted > maxCode ? maxCode : shifted
    }

    /// Fast path of `code` over a contiguous run (a loop the compiler vectorizes).
    public static func encode(_ values: UnsafePointer<Float>, count: Int, _ parameters: GroupParameters,
                              maxCode: Float, into codes: UnsafeMutablePointer<UInt8>) {
        for index in 0..<count {
            codes[index] = UInt8(truncatingIfNeeded: Int32(roundedCode(values[index], parameters, maxCode: maxCode)))
        }
    }
}
