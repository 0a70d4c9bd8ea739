/// Exact FP8 encoders and decoders (formats.md §1.2), fast enough for quantization loops.
///
/// - E4M3 ("FN"): 1 sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; only
///   `S.1111.111` is NaN; largest finite 448; smallest normal 2⁻⁶, subnormal step 2⁻⁹.
/// - E5M2: 1 sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like with inf/NaN; largest
///   finite 57344; smallest normal 2⁻¹⁴, subnormal step 2⁻¹⁶.
///
/// Encoding rounds to nearest, ties to even, and saturates at ±max finite (torch's
/// `float8_*` casts in quantization code clamp first); NaN encodes as 0x7F. These are the
/// semantics of `LoquatSupport.FloatFormats.e4m3(from:)`/`e5m2(from:)`, which search all codes;
/// here the Float32 bit pattern is rounded directly: for a normal result, dropping
/// `23 − mantissaBits` low bits with round-to-nearest-even yields the FP8 exponent and mantissa
/// in one integer (a mantissa carry bumps the exponent, as it should); below the smallest
/// normal, `|x| / subnormalStep` rounded to the nearest even integer is the code itself.
public enum FP8Encoding {
    /// Largest finite magnitude: 448 (E4M3), 57344 (E5M2).
    @inlinable
    public static func maxFinite(_ format: FP8Format) -> Float { format == .e4m3 ? 448 : 57344 }

    /// Encodes one value (sign bit 0x80 kept, also for −0).
    @inlinable
    public static func encode(_ value: Float, _ format: FP8Format) -> UInt8 {
        format == .e4m3
            ? encode(value, mantissaBits: 3, bias: 7, maxCode: 0x7E)
            : encode(value, mantissaBits: 2, bias: 15, maxCode: 0x7B)
    }

    /// `maxCode` is the code of the largest finite magnitude (0x7E for E4M3, 0x7B for E5M2).
    @inlinable
    static func encode(_ value: Float, mantissaBits: UInt32, bias: UInt32, maxCode: UInt32) -> UInt8 {
        let bits = value.bitPattern
        let sign = UInt8(truncatingIfNeeded: (bits >> 24) & 0x80)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude > 0x7F80_0000 { return 0x7F }  // NaN
        let dropped = 23 - mantissaBits
        // Float32 exponent field of the smallest FP8 normal, 2^(1 − bias).
        let minNormalField = 127 + 1 - bias
        let code: UInt32
        if magnitude >= minNormalField << 23 {
            let rounded = (magnitude &+ ((1 << (dropped - 1)) - 1) &+ ((magnitude >> dropped) & 1)) >> dropped
            // Re-bias the exponent from 127 to `bias`; infinity and overflow land above maxCode.
            code = min(rounded &- ((127 - bias) << mantissaBits), maxCode)
        } else {
            // Subnormal range: |x| / 2^(1 − bias − mantissaBits) is exact (a power-of-two scale),
            // and its nearest-even integer is the code (up to 2^mantissaBits = smallest normal).
            let scaled = Float(bitPattern: magnitude) * Float(sign: .plus, exponent: Int(bias + mantissaBits) - 1, significand: 1)
            code = UInt32(scaled.rounded(.toNearestOrEven))
        }
        return sign | UInt8(truncatingIfNeeded: code)
    }

    /// The value of every byte (NaN codes decode to NaN; E5M2 0x7C/0xFC to ±inf).
    public static func decodeTable(_ format: FP8Format) -> [Float] {
        (0..<256).map { decode(UInt8($0), format) }
    }

    /// Decodes one byte: `±2^(e−bias)·(1 + m/2^M)`, or `±2^(1−bias)·m/2^M` when `e = 0`.
    @inlinable
    public static func decode(_ byte: UInt8, _ format: FP8Format) -> Float {
        let mantissaBits = format == .e4m3 ? 3 : 2
        let bias = format == .e4m3 ? 7 : 15
        let exponentMask = format == .e4m3 ? 0xF : 0x1F
        let exponent = (Int(byte) >> mantissaBits) & exponentMask
        let mantissa = Int(byte) & ((1 << mantissaBits) - 1)
        let sign: Float = byte & 0x80 != 0 ? -1 : 1
        if format == .e4m3 && exponent == 15 && mantissa == 7 { return .nan }
        if format == .e5m2 && exponent == 31 { return mantissa == 0 ? sign * .infinity : .nan }
        let fraction = Float(mantissa) / Float(1 << mantissaBits)
        if exponent == 0 { return sign * Float(sign: .plus, exponent: 1 - bias, significand: fraction) }
        return sign * Float(sign: .plus, exponent: exponent - bias, significand: 1 + fraction)
    }
}
