/// Conversions between Float32 and the narrow float formats found in checkpoints.
///
/// - binary16 (IEEE half): Swift's `Float16` on x86_64 Linux does the conversion with correct
///   round-to-nearest-even, subnormals, inf and NaN.
/// - bfloat16: the upper 16 bits of a binary32. Encoding rounds to nearest even and forces a
///   quiet NaN, as ggml/gguf-py and PyTorch do (formats.md §1.2).
/// - F8 E4M3 ("FN": no infinities, only S.1111.111 is NaN, max 448) and E5M2 (IEEE-like).
public enum FloatFormats {
    @inlinable
    public static func float(fromHalfBits bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    @inlinable
    public static func halfBits(from value: Float) -> UInt16 { Float16(value).bitPattern }

    @inlinable
    public static func float(fromBFloat16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @inlinable
    public static func bfloat16Bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// F8 E4M3FN: `e = (b>>3)&15, m = b&7`; `e==15 && m==7` is NaN; `e==0` gives `±2^-6·m/8`,
    /// otherwise `±2^(e−7)·(1+m/8)`.
    @inlinable
    public static func float(fromE4M3 byte: UInt8) -> Float {
        let sign: Float = byte & 0x80 != 0 ? -1 : 1
        let exponent = Int((byte >> 3) & 0xF)
        let mantissa = Float(byte & 0x7)
        if exponent == 15 && byte & 0x7 == 7 { return .nan }
        if exponent == 0 { return sign * Float(sign: .plus, exponent: -6, significand: mantissa / 8) }
        return sign * Float(sign: .plus, exponent: exponent - 7, significand: 1 + mantissa / 8)
    }

    /// F8 E5M2: `e = (b>>2)&31, m = b&3`; `e==31` is inf (m=0) or NaN; `e==0` gives
    /// `±2^-14·m/4`, otherwise `±2^(e−15)·(1+m/4)`.
    @inlinable
    public static func float(fromE5M2 byte: UInt8) -> Float {
        let sign: Float = byte & 0x80 != 0 ? -1 : 1
        let exponent = Int((byte >> 2) & 0x1F)
        let mantissa = Float(byte & 0x3)
        if exponent == 31 { return byte & 0x3 == 0 ? sign * .infinity : .nan }
        if exponent == 0 { return sign * Float(sign: .plus, exponent: -14, significand: mantissa / 4) }
        return sign * Float(sign: .plus, exponent: exponent - 15, significand: 1 + mantissa / 4)
    }

    /// Round-to-nearest-even encoding to E4M3FN, saturating at ±448 (as `torch.float8_e4m3fn`
    /// casts with saturation in quantization code); NaN maps to 0x7F.
    public static func e4m3(from value: Float) -> UInt8 {
        encodeMinifloat(value, exponentBits: 4, mantissaBits: 3, bias: 7, maxFinite: 448, hasInfinity: false)
    }

    /// Round-to-nearest-even encoding to E5M2, saturating at ±57344; NaN maps to 0x7F.
    public static func e5m2(from value: Float) -> UInt8 {
        encodeMinifloat(value, exponentBits: 5, mantissaBits: 2, bias: 15, maxFinite: 57344, hasInfinity: true)
    }

    /// Exhaustive nearest-even search over the 127 non-negative codes: simple and exact; F8
    /// encoding is never on a hot path of the I/O layer (the quantizers have their own tables).
    static func encodeMinifloat(_ value: Float, exponentBits: Int, mantissaBits: Int, bias: Int,
                                maxFinite: Float, hasInfinity: Bool) -> UInt8 {
        if value.isNaN { return 0x7F }
        let signBit: UInt8 = value.sign == .minus ? 0x80 : 0
        let magnitude = min(abs(value), maxFinite)
        var best: UInt8 = 0
        var bestError = Float.infinity
        for code in UInt8(0)...UInt8(0x7F) {
            let candidate = exponentBits == 4 ? float(fromE4M3: code) : float(fromE5M2: code)
            guard candidate.isFinite else { continue }
            let error = abs(candidate - magnitude)
            // Ties go to the even code (last mantissa bit clear).
            if error < bestError || (error == bestError && code & 1 == 0) {
                best = code
                bestError = error
            }
        }
        return signBit | best
    }
}
