import LoquatSupport
import Tensors

/// Scalar reference dequantization: element `e` of one block, computed alone, straight from the
/// formats.md §2.5 formulas (checked there against ggml `dequantize_row_*` in
/// `ggml/src/ggml-quants.c`). Slow and obvious on purpose; the fast kernels are tested against
/// it. Multiplications are grouped as ggml groups them (`(d·scale)·q − dmin·min`), so both paths
/// round identically.
extension GGMLBlockCodec {
    typealias ReferenceElement = (_ block: UnsafeRawPointer, _ e: Int) -> Float

    static func referenceElement(for dtype: DType) -> ReferenceElement? {
        switch dtype {
        case .f32: return { block, _ in Float(bitPattern: UInt32(littleEndian: block.loadUnaligned(as: UInt32.self))) }
        case .f16: return { block, _ in half(block, 0) }
        case .bf16:
            return { block, _ in
                FloatFormats.float(fromBFloat16Bits: UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
            }
        case .q8_0: return referenceQ8_0
        case .q4_0: return referenceQ4_0
        case .q4_1: return referenceQ4_1
        case .q5_0: return referenceQ5_0
        case .q5_1: return referenceQ5_1
        case .iq4_nl: return referenceIQ4_NL
        case .q2_K: return referenceQ2_K
        case .q3_K: return referenceQ3_K
        case .q4_K: return referenceQ4_K
        case .q5_K: return referenceQ5_K
        case .q6_K: return referenceQ6_K
        default: return nil
        }
    }

    @inline(__always)
    private static func byte(_ block: UnsafeRawPointer, _ offset: Int) -> Int { Int(block.load(fromByteOffset: offset, as: UInt8.self)) }

    @inline(__always)
    private static func signedByte(_ block: UnsafeRawPointer, _ offset: Int) -> Int { Int(block.load(fromByteOffset: offset, as: Int8.self)) }

    /// 4-bit code of element `e` of a 32-block whose nibbles start at `qs`: low nibbles hold
    /// elements 0–15, high nibbles 16–31.
    @inline(__always)
    private static func nibble(_ block: UnsafeRawPointer, qs: Int, _ e: Int) -> Int {
        e < 16 ? byte(block, qs + e) & 0xF : byte(block, qs + e - 16) >> 4
    }

    /// Bit `e` of the little-endian u32 at `offset` (Q5 high bits).
    @inline(__always)
    private static func bit(_ block: UnsafeRawPointer, _ offset: Int, _ e: Int) -> Int {
        Int((UInt32(littleEndian: block.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) >> UInt32(e)) & 1)
    }

    /// Q8_0 (34 B): `d`, `int8 qs[32]`; `x = d·qs[e]`.
    static func referenceQ8_0(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        half(block, 0) * Float(signedByte(block, 2 + e))
    }

    /// Q4_0 (18 B): `d`, `qs[16]`; `x = d·(nibble − 8)`.
    static func referenceQ4_0(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        half(block, 0) * Float(nibble(block, qs: 2, e) - 8)
    }

    /// Q4_1 (20 B): `d`, `m`, `qs[16]`; `x = d·nibble + m`.
    static func referenceQ4_1(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        half(block, 0) * Float(nibble(block, qs: 4, e)) + half(block, 2)
    }

    /// Q5_0 (22 B): `d`, `qh` (u32), `qs[16]`; `x = d·((nibble | bit e of qh << 4) − 16)`.
    static func referenceQ5_0(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        half(block, 0) * Float((nibble(block, qs: 6, e) | bit(block, 2, e) << 4) - 16)
    }

    /// Q5_1 (24 B): `d`, `m`, `qh` (u32), `qs[16]`; `x = d·(nibble | bit e of qh << 4) + m`.
    static func referenceQ5_1(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        half(block, 0) * Float(nibble(block, qs: 8, e) | bit(block, 4, e) << 4) + half(block, 2)
    }

    /// IQ4_NL (18 B): `d`, `qs[16]`; `x = d·T[nibble]`.
    static func referenceIQ4_NL(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        half(block, 0) * Float(iq4nlValues[nibble(block, qs: 2, e)])
    }

    /// The 2-bit field of K-quant element `e` (Q2_K, Q3_K low bits) from `qs` at `offset`.
    @inline(__always)
    private static func twoBits(_ block: UnsafeRawPointer, qs: Int, _ e: Int) -> Int {
        (byte(block, qs + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3
    }

    /// Q2_K (84 B): `scales[16]`, `qs[64]`, `d`, `dmin`; `x = d·(s & 0xF)·q − dmin·(s >> 4)`.
    static func referenceQ2_K(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        let s = byte(block, e / 16)
        return half(block, 80) * Float(s & 0xF) * Float(twoBits(block, qs: 16, e)) - half(block, 82) * Float(s >> 4)
    }

    /// Q3_K (110 B): `hmask[32]`, `qs[64]`, `scales[12]`, `d`; signed 3-bit `q = lo + 4·hb − 4`,
    /// 6-bit scale `sc − 32`; `x = d·sc·q`.
    static func referenceQ3_K(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        let high = (byte(block, e % 32) >> (e / 32)) & 1
        let q = twoBits(block, qs: 32, e) + 4 * high - 4
        let s = e / 16
        let low4 = s < 8 ? byte(block, 96 + s) & 0xF : byte(block, 96 + s - 8) >> 4
        let high2 = (byte(block, 96 + 8 + s % 4) >> (2 * (s / 4))) & 3
        let scale = (low4 | high2 << 4) - 32
        return half(block, 108) * Float(scale) * Float(q)
    }

    /// The 6-bit scale and min of sub-block `s` (0…7) from the 12 packed bytes at `offset`
    /// (`get_scale_min_k4` in ggml).
    static func scaleMin(_ block: UnsafeRawPointer, _ offset: Int, _ s: Int) -> (scale: Int, min: Int) {
        if s < 4 {
            return (byte(block, offset + s) & 63, byte(block, offset + s + 4) & 63)
        }
        let scale = (byte(block, offset + s + 4) & 0xF) | ((byte(block, offset + s - 4) >> 6) << 4)
        let min = (byte(block, offset + s + 4) >> 4) | ((byte(block, offset + s) >> 6) << 4)
        return (scale, min)
    }

    /// Q4_K (144 B): `d`, `dmin`, `scales[12]`, `qs[128]`; `x = d·sc·q − dmin·mn`.
    static func referenceQ4_K(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        let (scale, min) = scaleMin(block, 4, e / 32)
        let packed = byte(block, 16 + 32 * (e / 64) + e % 32)
        let q = (e % 64) < 32 ? packed & 0xF : packed >> 4
        return half(block, 0) * Float(scale) * Float(q) - half(block, 2) * Float(min)
    }

    /// Q5_K (176 B): `d`, `dmin`, `scales[12]`, `qh[32]`, `qs[128]`; Q4_K plus
    /// `16·((qh[e%32] >> (e/32)) & 1)`.
    static func referenceQ5_K(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        let (scale, min) = scaleMin(block, 4, e / 32)
        let packed = byte(block, 48 + 32 * (e / 64) + e % 32)
        let low = (e % 64) < 32 ? packed & 0xF : packed >> 4
        let q = low + 16 * ((byte(block, 16 + e % 32) >> (e / 32)) & 1)
        return half(block, 0) * Float(scale) * Float(q) - half(block, 2) * Float(min)
    }

    /// Q6_K (210 B): `ql[128]`, `qh[64]`, `int8 scales[16]`, `d`;
    /// `q = (low4 | high2 << 4) − 32`, `x = d·scales[e/16]·q`.
    static func referenceQ6_K(_ block: UnsafeRawPointer, _ e: Int) -> Float {
        let h = e / 128, k = (e % 128) / 32, l = e % 32
        let low4 = (byte(block, 64 * h + 32 * (k % 2) + l) >> (4 * (k / 2))) & 0xF
        let high2 = (byte(block, 128 + 32 * h + l) >> (2 * k)) & 3
        let q = (low4 | high2 << 4) - 32
        return half(block, 208) * Float(signedByte(block, 192 + e / 16)) * Float(q)
    }
}
