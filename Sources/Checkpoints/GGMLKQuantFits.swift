/// The per-sub-block fits behind ggml's K-quant reference quantizers (`ggml/src/ggml-quants.c`:
/// `nearest_int`, `make_qkx2_quants`, `make_qx_quants`, `make_q3_quants`; formats.md §2.6),
/// written from their description. Every Float32 operation is performed in ggml's order and
/// without fused multiply-adds, so the chosen codes and scales are bit-identical to ggml built
/// without FMA contraction (the default x86-64 target; `-march=native` builds may contract
/// `a·b + c` and differ in rare ties).
extension GGMLBlockCodec {
    /// Sub-blocks whose largest |x| is below this are all zero (ggml's `GROUP_MAX_EPS`).
    static let groupMaximumEpsilon: Float = 1e-15

    /// Round half to even for |value| ≤ 2²² (ggml's `nearest_int`): adding 1.5·2²³ moves the
    /// integer part into the low mantissa bits, where the FPU has already rounded it to nearest
    /// even. Outside that range the result is meaningless but never traps, as in release ggml.
    @inline(__always)
    static func nearestInt(_ value: Float) -> Int32 {
        let shifted = value + 12_582_912
        return Int32(bitPattern: shifted.bitPattern & 0x007F_FFFF) - 0x0040_0000
    }

    @inline(__always)
    static func clamp(_ value: Int32, _ lower: Int32, _ upper: Int32) -> Int32 { max(lower, min(upper, value)) }

    /// Asymmetric fit `x ≈ scale·L − theMin` with codes `L ∈ 0…nmax` minimising the weighted
    /// error Σ wᵢ·err(scale·Lᵢ + min − xᵢ) (squared, or absolute when `useMAD`); ggml's
    /// `make_qkx2_quants`. Starts from the min–max grid, then tries inverse scales
    /// `(nmax + rmin + rdelta·k)/(max − min)` for k = 0…nstep, each followed by the closed-form
    /// weighted least-squares scale and min for its codes (min clamped to ≤ 0).
    /// Returns `(scale, theMin)` with `theMin = −min ≥ 0`; writes the codes to `codes[0..<n]`.
    static func makeQKX2Quants(count n: Int, nmax: Int32, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                               codes: UnsafeMutablePointer<UInt8>, scratch: UnsafeMutablePointer<UInt8>,
                               rmin: Float, rdelta: Float, nstep: Int, useMAD: Bool) -> (scale: Float, theMin: Float) {
        var minimum = x[0], maximum = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < minimum { minimum = x[i] }
            if x[i] > maximum { maximum = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if minimum > 0 { minimum = 0 }
        if maximum == minimum {
            for i in 0..<n { codes[i] = 0 }
            return (0, -minimum)
        }
        var iscale = Float(nmax) / (maximum - minimum)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = clamp(nearestInt(iscale * (x[i] - minimum)), 0, nmax)
            codes[i] = UInt8(l)
            var diff = scale * Float(l) + minimum - x[i]
            diff = useMAD ? abs(diff) : diff * diff
            bestError += weights[i] * diff
        }
        if nstep < 1 { return (scale, -minimum) }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + Float(nmax)) / (maximum - minimum)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = clamp(nearestInt(iscale * (x[i] - minimum)), 0, nmax)
                scratch[i] = UInt8(l)
                let w = weights[i], lf = Float(l)
                sumL += w * lf
                sumL2 += w * lf * lf
                sumXL += w * lf * x[i]
            }
            let determinant = sumW * sumL2 - sumL * sumL
            guard determinant > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / determinant
            var thisMin = (sumL2 * sumX - sumL * sumXL) / determinant
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var currentError: Float = 0
            for i in 0..<n {
                var diff = thisScale * Float(scratch[i]) + thisMin - x[i]
                diff = useMAD ? abs(diff) : diff * diff
                currentError += weights[i] * diff
            }
            if currentError < bestError {
                for i in 0..<n { codes[i] = scratch[i] }
                bestError = currentError
                scale = thisScale
                minimum = thisMin
            }
        }
        return (scale, -minimum)
    }

    /// The element of largest magnitude with its sign (first one on ties), and that magnitude.
    @inline(__always)
    static func signedAbsoluteMaximum(_ x: UnsafePointer<Float>, count n: Int) -> (signed: Float, magnitude: Float) {
        var signed: Float = 0, magnitude: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > magnitude { magnitude = ax; signed = x[i] }
        }
        return (signed, magnitude)
    }

    /// Codes `l = clamp(round(iscale·x), −nmax, nmax−1)` stored as `l + codeOffset`, and the
    /// sums `Σw·x·l`, `Σw·l²` with weights `w = x²` that the symmetric fits compare.
    @inline(__always)
    static func roundSymmetric(count n: Int, nmax: Int32, _ x: UnsafePointer<Float>, iscale: Float,
                               codes: UnsafeMutablePointer<Int8>, codeOffset: Int32) -> (sumLX: Float, sumL2: Float) {
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = clamp(nearestInt(iscale * x[i]), -nmax, nmax - 1)
            codes[i] = Int8(l + codeOffset)
            let w = x[i] * x[i], lf = Float(l)
            sumLX += w * x[i] * lf
            sumL2 += w * lf * lf
        }
        return (sumLX, sumL2)
    }

    /// Symmetric fit `x ≈ scale·(L − nmax)` with `L − nmax ∈ −nmax…nmax−1`, weights `x²`
    /// (ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights, the only form
    /// the reference Q6_K uses). Starts at `iscale = −nmax/max` (max = signed largest-magnitude
    /// element) and tries `−(nmax + 0.1·k)/max` for k = ±1…±9, keeping the codes whose
    /// least-squares scale `Σw·x·l / Σw·l²` explains the most energy. Returns the scale; codes
    /// (offset by nmax) go to `codes[0..<n]`.
    static func makeQXQuants(count n: Int, nmax: Int32, _ x: UnsafePointer<Float>, codes: UnsafeMutablePointer<Int8>) -> Float {
        let (signedMax, magnitude) = signedAbsoluteMaximum(x, count: n)
        if magnitude < groupMaximumEpsilon {
            for i in 0..<n { codes[i] = 0 }
            return 0
        }
        var iscale = Float(-nmax) / signedMax
        var (sumLX, sumL2) = roundSymmetric(count: n, nmax: nmax, x, iscale: iscale, codes: codes, codeOffset: nmax)
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(Float(nmax) + 0.1 * Float(step)) / signedMax
            sumLX = 0
            sumL2 = 0
            for i in 0..<n {
                let lf = Float(clamp(nearestInt(iscale * x[i]), -nmax, nmax - 1))
                let w = x[i] * x[i]
                sumLX += w * x[i] * lf
                sumL2 += w * lf * lf
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n { codes[i] = Int8(nmax + clamp(nearestInt(iscale * x[i]), -nmax, nmax - 1)) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }

    /// Symmetric 3-bit fit for Q3_K (ggml's `make_q3_quants` with `do_rmse`): codes
    /// `l ∈ −nmax…nmax−1` from `iscale = −nmax/max`, then up to five sweeps of coordinate
    /// descent, each element moved to `round(x·Σ₋ᵢl² / Σ₋ᵢxl)` when that raises the explained
    /// energy `(Σw·x·l)²/Σw·l²` (weights `x²`). Returns the least-squares scale; codes (offset by
    /// nmax) go to `codes[0..<n]`.
    static func makeQ3Quants(count n: Int, nmax: Int32, _ x: UnsafePointer<Float>, codes: UnsafeMutablePointer<Int8>) -> Float {
        let (signedMax, magnitude) = signedAbsoluteMaximum(x, count: n)
        if magnitude < groupMaximumEpsilon {
            for i in 0..<n { codes[i] = 0 }
            return 0
        }
        var (sumLX, sumL2) = roundSymmetric(count: n, nmax: nmax, x, iscale: Float(-nmax) / signedMax, codes: codes, codeOffset: 0)
        for _ in 0..<5 {
            var changedCount = 0
            for i in 0..<n {
                let w = x[i] * x[i]
                let current = Float(codes[i])
                var slx = sumLX - w * x[i] * current
                guard slx > 0 else { continue }
                var sl2 = sumL2 - w * current * current
                let newL = clamp(nearestInt(x[i] * sl2 / slx), -nmax, nmax - 1)
                guard newL != Int32(codes[i]) else { continue }
                let newLF = Float(newL)
                slx += w * x[i] * newLF
                sl2 += w * newLF * newLF
                if sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2 {
                    codes[i] = Int8(newL)
                    sumLX = slx
                    sumL2 = sl2
                    changedCount += 1
                }
            }
            if changedCount == 0 { break }
        }
        for i in 0..<n { codes[i] += Int8(nmax) }
        return sumL2 > 0 ? sumLX / sumL2 : 0
    }
}
