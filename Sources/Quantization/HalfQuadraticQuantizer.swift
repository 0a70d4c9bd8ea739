#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// HQQ: calibration-free half-quadratic optimisation of each group's zero point on the
/// asymmetric INT-k grid (Badri & Shaji 2023; mobiusml/hqq `hqq/core/quantize.py`
/// `Quantizer.quantize`, `hqq/core/optimize.py` `optimize_weights_proximal_v2`; algorithms.md §9.2).
///
/// Per group `w` of `groupSize` input columns (HQQ `axis = 1`), with the inverse scale `ι`:
///
///     ι = min((2^b − 1)/(max w − min w), 2e4);   z = −min(w)·ι   (rounded when b = 4, `round_zero`)
///     repeat `iterations` times, β ← 10, stop as soon as the error stops falling:
///         q  = clamp(round(w·ι + z), 0, 2^b − 1);   ŵ = (q − z)/ι;   e = mean |w − ŵ|
///         wₑ = sign(w − ŵ)·max(|w − ŵ| − |w − ŵ|^(p−1)/β, 0)      (p = 0.7, the lp shrinkage)
///         z  = mean(q − (w − wₑ)·ι);   β ← κ·β                    (κ = 1.01)
///
/// Differences from the reference, all deliberate: the early stop is per group (the reference
/// stops when the mean over the whole tensor stops falling), and a group keeps its best zero (v2
/// semantics; the legacy loop keeps the first non-improving one); the work is Float32 on the CPU.
/// The scale is not optimised (as in the reference's default). Stored form: `σ = 1/ι` rounded to
/// FP16 first (`ι` is then `1/σ`), the float zero rounded to FP16 before the final codes, as HQQ's
/// fp16 `meta["scale"]`/`meta["zero"]`; `x̂ = σ·(code − z)`.
public enum HalfQuadraticQuantizer {
    public static let isImplemented = true

    /// The optimiser's constants (HQQ `opt_params`).
    public struct Options: Sendable, Equatable {
        public var lpNorm: Float = 0.7
        public var beta: Float = 10
        public var kappa: Float = 1.01
        public var iterations: Int = 20
        public init() {}
    }

    public static func quantize(_ weight: Matrix<Float>, spec: QuantizationSpec) throws -> any QuantizedWeight {
        try quantizeGrid(weight, spec: spec)
    }

    public static func quantizeGrid(_ weight: Matrix<Float>, spec: QuantizationSpec,
                                    options: Options = Options()) throws -> GroupedGridWeight {
        try GroupedGridQuantizer.validate(weight, spec: spec, method: .hqq)
        guard !spec.symmetric else {
            throw QuantizationError.invalidParameter("symmetric", "hqq optimises a zero point; it is asymmetric only")
        }
        let (rows, columns) = (weight.rowCount, weight.columnCount)
        let size = GroupedGridQuantizer.groupSize(spec, columnCount: columns)
        let groupCount = rows * (columns / size)
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var scales = [Float](repeating: 0, count: groupCount)
        var zeros = [Float](repeating: 0, count: groupCount)
        weight.values.withUnsafeBufferPointer { source in
            codes.withUnsafeMutableBufferPointer { codeBuffer in
                scales.withUnsafeMutableBufferPointer { scaleBuffer in
                    zeros.withUnsafeMutableBufferPointer { zeroBuffer in
                        let targets = UncheckedSendable((codeBuffer, scaleBuffer, zeroBuffer))
                        Parallel.forEachChunk(groupCount, minimumChunk: max(1, 2048 / size)) { range in
                            let (codeOut, scaleOut, zeroOut) = targets.value
                            var scratch = [Float](repeating: 0, count: size)
                            scratch.withUnsafeMutableBufferPointer { scratch in
                                for group in range {
                                    let values = UnsafeBufferPointer(rebasing: source[(group * size)..<((group + 1) * size)])
                                    let (scale, zero) = optimizeGroup(values, bits: spec.bits, options: options, scratch: scratch)
                                    scaleOut[group] = scale
                                    zeroOut[group] = zero
                                    encodeGroup(values, scale: scale, zero: zero, bits: spec.bits,
                                                into: codeOut.baseAddress! + group * size)
                                }
                            }
                        }
                    }
                }
            }
        }
        return GroupedGridWeight(rowCount: rows, columnCount: columns, spec: spec, bits: spec.bits, groupSize: size,
                                 codes: codes, scales: scales, zeroPoints: .float16(zeros), levels: .integer,
                                 scaleBitCount: 16)
    }

    /// The stored `(σ, z)` of one group (`scratch` holds `q` between passes; `count ≥ 1`).
    static func optimizeGroup(_ w: UnsafeBufferPointer<Float>, bits: Int, options: Options,
                              scratch q: UnsafeMutableBufferPointer<Float>) -> (scale: Float, zero: Float) {
        let maxCode = Float((1 << bits) - 1)
        let (minimum, maximum) = GroupStatistics.minMax(w)
        let scale = IntegerGrid.float16Scale(1 / min(maxCode / (maximum - minimum), 2e4))
        let inverse = 1 / scale
        var zero = -minimum * inverse
        if bits == 4 { zero = zero.rounded(.toNearestOrEven) }
        let count = Float(w.count)
        var best = Float.infinity, bestZero = zero, beta = options.beta
        for _ in 0..<options.iterations {
            var errorSum: Float = 0
            for index in w.indices {
                let code = min(max((w[index] * inverse + zero).rounded(.toNearestOrEven), 0), maxCode)
                q[index] = code
                errorSum += abs(w[index] - (code - zero) / inverse)
            }
            let error = errorSum / count
            guard best - error > 0 else { zero = bestZero; break }
            best = error
            bestZero = zero
            var zeroSum: Float = 0
            let cutoff = shrinkCutoff(beta: beta, p: options.lpNorm)
            for index in w.indices {
                let residual = w[index] - (q[index] - zero) / inverse
                let shrunk = abs(residual) <= cutoff ? 0 : shrink(residual, beta: beta, p: options.lpNorm)
                zeroSum += q[index] - (w[index] - shrunk) * inverse
            }
            zero = zeroSum / count
            beta *= options.kappa
        }
        return (scale, Float(Float16(zero)))
    }

    /// The generalised soft threshold of the lp norm: `sign(x)·max(|x| − |x|^(p−1)/β, 0)`
    /// (`shrink_lp_op`); `x = 0` gives `0 − ∞`, clamped to 0.
    @inlinable
    static func shrink(_ x: Float, beta: Float, p: Float) -> Float {
        let magnitude = abs(x)
        let kept = max(magnitude - powf(magnitude, p - 1) / beta, 0)
        return x < 0 ? -kept : (x > 0 ? kept : 0)
    }

    /// Below this magnitude `shrink` is certainly 0 (`|x| ≤ |x|^(p−1)/β` ⟺ `|x| ≤ β^(−1/(2−p))`,
    /// kept 0.1% inside so float rounding cannot matter), so the loop skips `powf` for most
    /// residuals of real weights.
    static func shrinkCutoff(beta: Float, p: Float) -> Float {
        0.999 * powf(1 / beta, 1 / (2 - p))
    }

    /// Final codes `clamp(round(w/σ + z), 0, 2^b − 1)` with the stored `σ`, `z`.
    static func encodeGroup(_ w: UnsafeBufferPointer<Float>, scale: Float, zero: Float, bits: Int,
                            into codes: UnsafeMutablePointer<UInt8>) {
        let maxCode = Float((1 << bits) - 1)
        let inverse = 1 / scale
        for index in w.indices {
            codes[index] = UInt8(min(max((w[index] * inverse + zero).rounded(.toNearestOrEven), 0), maxCode))
        }
    }
}
