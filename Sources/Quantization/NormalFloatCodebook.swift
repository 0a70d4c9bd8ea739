#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NormalFloat-k codebooks as LoftQ builds them (yxli2123/LoftQ `glue/utils_qaunt.py`
/// `create_normal_map(offset=0.9677083, symmetric=False)`, the same recipe as PEFT's
/// `NFQuantizer.create_normal_map(use_extra_value=True)`; algorithms.md §2):
///
///     positive = Φ⁻¹(linspace(offset, 0.5, 2^(k−1) + 1)[:-1])     (2^(k−1) values)
///     negative = −Φ⁻¹(linspace(offset, 0.5, 2^(k−1))[:-1])         (2^(k−1) − 1 values)
///     codebook = sort(positive ∪ {0} ∪ negative) / max
///
/// It is the asymmetric variant (one more positive value than negative, an exact zero, +1 and −1
/// both present). `linspace` is evaluated in Float32 as PyTorch's scalar CPU kernel does
/// (`start + step·i` for the first half, `end − step·(steps − 1 − i)` for the rest); Φ⁻¹ in
/// Float64 (scipy's `norm.ppf`), the results rounded to Float32 and divided by the max in Float32.
/// NF4 built this way equals bitsandbytes' NF4 table to about 1e−7 but not bit for bit: bnb
/// hard-codes its table from a Float64 build, so a few entries differ in the last place.
public enum NormalFloatCodebook {
    /// LoftQ's and QLoRA's offset: ½(1 − 1/(2·15) + 1 − 1/(2·16)), rounded as they print it.
    public static let offset: Float = 0.9677083

    /// The `2^bits` sorted Float32 values in [−1, 1].
    public static func values(bits: Int) -> [Float] {
        precondition((1...8).contains(bits), "NormalFloat codebooks take 1…8 bits")
        let half = 1 << (bits - 1)
        let positive = linspace(offset, 0.5, half + 1).dropLast().map { Float(inverseNormalCDF(Double($0))) }
        let negative = linspace(offset, 0.5, half).dropLast().map { Float(-inverseNormalCDF(Double($0))) }
        let sorted = (positive + [0] + negative).sorted()
        let maximum = sorted[sorted.count - 1]
        return sorted.map { $0 / maximum }
    }

    /// `torch.linspace(start, end, steps)` in Float32 on the CPU (its scalar kernel).
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [start] : [] }
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { index in
            index < halfway ? start + step * Float(index) : end - step * Float(steps - index - 1)
        }
    }

    /// Φ⁻¹(p) for 0 < p < 1: Acklam's rational approximation (relative error < 1.2e−9), then one
    /// Halley step on `Φ(x) − p` with the C library's `erfc`, which brings it to Float64 accuracy.
    public static func inverseNormalCDF(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "Φ⁻¹ needs 0 < p < 1")
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        for _ in 0..<2 {
            let error = 0.5 * erfc(-x / 2.0.squareRoot()) - p
            let u = error * (2 * Double.pi).squareRoot() * exp(x * x / 2)
            x -= u / (1 + x * u / 2)
        }
        return x
    }

    /// The index of the codebook entry nearest to `u`, the lowest index on ties (`torch.argmin`
    /// of `|u − c|`). Binary search for the first entry ≥ u, then a local descent: the float
    /// distances `|u − cₖ|` along a sorted codebook fall then rise (rounding is monotone), so the
    /// descent ends on the global minimum, and stepping left on ties gives the lowest index.
    @inlinable
    public static func nearestCode(_ u: Float, _ levels: [Float]) -> UInt8 {
        levels.withUnsafeBufferPointer { nearestCode(u, $0) }
    }

    @inlinable
    public static func nearestCode(_ u: Float, _ levels: UnsafeBufferPointer<Float>) -> UInt8 {
        // Branch-free lower bound (first entry ≥ u, or the last entry).
        var base = 0, remaining = levels.count
        while remaining > 1 {
            let half = remaining / 2
            base = levels[base + half - 1] < u ? base + half : base
            remaining -= half
        }
        var index = base
        while index + 1 < levels.count && abs(u - levels[index + 1]) < abs(u - levels[index]) { index += 1 }
        while index > 0 && abs(u - levels[index - 1]) <= abs(u - levels[index]) { index -= 1 }
        return UInt8(index)
    }

    /// Scalar reference of `nearestCode`: a scan of every entry, first minimum wins.
    public static func nearestCodeReference(_ u: Float, _ levels: [Float]) -> UInt8 {
        var best = 0
        for index in levels.indices where abs(u - levels[index]) < abs(u - levels[best]) { best = index }
        return UInt8(best)
    }
}
