import LoquatSupport
import Tensors

/// Fast dequantization kernels: whole blocks at a time over raw pointers, loop structure as in
/// ggml's `dequantize_row_*` (`ggml/src/ggml-quants.c`). Each computes exactly the Float32
/// operations of the reference formulas (`GGMLBlockCodecReference.swift`) in the same order, so
/// the two agree bit for bit.
extension GGMLBlockCodec {
    /// Decodes `blockCount` consecutive blocks from `source` into `destination`.
    typealias Kernel = (_ source: UnsafeRawPointer, _ blockCount: Int, _ destination: UnsafeMutablePointer<Float>) -> Void

    static func kernel(for dtype: DType) -> Kernel? {
        switch dtype {
        case .f32: return { source, count, destination in
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        }
        case .f16: return decodeF16
        case .bf16: return decodeBF16
        case .q8_0: return decodeQ8_0
        case .q4_0: return { decodeNibbles32($0, $1, $2, hasMin: false, table: nil) }
        case .q4_1: return { decodeNibbles32($0, $1, $2, hasMin: true, table: nil) }
        case .iq4_nl: return { decodeNibbles32($0, $1, $2, hasMin: false, table: iq4nlFloats) }
        case .q5_0: return { decodeQ5($0, $1, $2, hasMin: false) }
        case .q5_1: return { decodeQ5($0, $1, $2, hasMin: true) }
        case .q2_K: return decodeQ2_K
        case .q3_K: return decodeQ3_K
        case .q4_K: return { decodeQ45_K($0, $1, $2, hasHighBit: false) }
        case .q5_K: return { decodeQ45_K($0, $1, $2, hasHighBit: true) }
        case .q6_K: return decodeQ6_K
        default: return nil
        }
    }

    /// binary16 → Float32 for all 65536 bit patterns (as ggml's `ggml_table_f32_f16`), built
    /// with `FloatFormats` so it matches the reference exactly. Never freed.
    nonisolated(unsafe) static let halfTable: UnsafePointer<Float> = {
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 65_536)
        for bits in 0..<65_536 { table[bits] = FloatFormats.float(fromHalfBits: UInt16(bits)) }
        return UnsafePointer(table)
    }()

    static let iq4nlFloats: [Float] = iq4nlValues.map { Float($0) }

    @inline(__always)
    private static func u8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 { p.load(fromByteOffset: offset, as: UInt8.self) }

    @inline(__always)
    private static func h(_ table: UnsafePointer<Float>, _ p: UnsafeRawPointer, _ offset: Int) -> Float {
        table[Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))]
    }

    private static func decodeF16(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>) {
        let table = halfTable
        for i in 0..<count { y[i] = h(table, source, 2 * i) }
    }

    private static func decodeBF16(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            y[i] = Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
        }
    }

    /// Q8_0: `d`, `int8 qs[32]`.
    private static func decodeQ8_0(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>) {
        let table = halfTable
        for b in 0..<count {
            let block = source + 34 * b, out = y + 32 * b
            let d = h(table, block, 0)
            for i in 0..<32 { out[i] = d * Float(block.load(fromByteOffset: 2 + i, as: Int8.self)) }
        }
    }

    /// Q4_0 / Q4_1 / IQ4_NL: `d` [, `m`], `qs[16]`; low nibbles are elements 0–15, high 16–31.
    /// Q4_0 maps a code to `code − 8`, IQ4_NL through `table`; Q4_1 adds `m`.
    private static func decodeNibbles32(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>,
                                        hasMin: Bool, table values: [Float]?) {
        let table = halfTable
        let blockByteCount = hasMin ? 20 : 18
        let qsOffset = hasMin ? 4 : 2
        var levels = [Float](repeating: 0, count: 16)
        for code in 0..<16 { levels[code] = values?[code] ?? Float(hasMin ? code : code - 8) }
        levels.withUnsafeBufferPointer { level in
            for b in 0..<count {
                let block = source + blockByteCount * b, out = y + 32 * b
                let d = h(table, block, 0)
                if hasMin {
                    let m = h(table, block, 2)
                    for j in 0..<16 {
                        let packed = Int(u8(block, qsOffset + j))
                        out[j] = d * level[packed & 0xF] + m
                        out[j + 16] = d * level[packed >> 4] + m
                    }
                } else {
                    for j in 0..<16 {
                        let packed = Int(u8(block, qsOffset + j))
                        out[j] = d * level[packed & 0xF]
                        out[j + 16] = d * level[packed >> 4]
                    }
                }
            }
        }
    }

    /// Q5_0 / Q5_1: `d` [, `m`], `qh` (u32, bit e = fifth bit of element e), `qs[16]`.
    private static func decodeQ5(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>, hasMin: Bool) {
        let table = halfTable
        let blockByteCount = hasMin ? 24 : 22
        let qhOffset = hasMin ? 4 : 2
        let bias: Int32 = hasMin ? 0 : 16
        for b in 0..<count {
            let block = source + blockByteCount * b, out = y + 32 * b
            let d = h(table, block, 0)
            let m: Float = hasMin ? h(table, block, 2) : 0
            let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
            for j in 0..<16 {
                let packed = UInt32(u8(block, qhOffset + 4 + j))
                let low = Int32((packed & 0xF) | ((qh >> UInt32(j)) & 1) << 4) - bias
                let high = Int32((packed >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4) - bias
                if hasMin {
                    out[j] = d * Float(low) + m
                    out[j + 16] = d * Float(high) + m
                } else {
                    out[j] = d * Float(low)
                    out[j + 16] = d * Float(high)
                }
            }
        }
    }

    /// Q2_K: `scales[16]`, `qs[64]`, `d`, `dmin`. Two halves of 128; in each, four 2-bit planes
    /// of 32 elements; sub-block `s` of 16 has scale `d·(sc & 0xF)` and min `dmin·(sc >> 4)`.
    private static func decodeQ2_K(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>) {
        let table = halfTable
        for b in 0..<count {
            let block = source + 84 * b, out = y + 256 * b
            let d = h(table, block, 80), dmin = h(table, block, 82)
            for half in 0..<2 {
                let qs = 16 + 32 * half
                for plane in 0..<4 {
                    let shift = UInt8(2 * plane)
                    for part in 0..<2 {
                        let sc = u8(block, 8 * half + 2 * plane + part)
                        let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                        let base = 128 * half + 32 * plane + 16 * part
                        for l in 0..<16 {
                            out[base + l] = dl * Float((u8(block, qs + 16 * part + l) >> shift) & 3) - ml
                        }
                    }
                }
            }
        }
    }

    /// Q3_K: `hmask[32]`, `qs[64]`, `scales[12]` (16 six-bit scales), `d`. Low bits as Q2_K; a
    /// cleared `hmask` bit subtracts 4.
    private static func decodeQ3_K(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>) {
        let table = halfTable
        var scales = [Float](repeating: 0, count: 16)
        for b in 0..<count {
            let block = source + 110 * b, out = y + 256 * b
            let d = h(table, block, 108)
            for s in 0..<16 {
                let low4 = s < 8 ? u8(block, 96 + s) & 0xF : u8(block, 96 + s - 8) >> 4
                let high2 = (u8(block, 104 + s % 4) >> UInt8(2 * (s / 4))) & 3
                scales[s] = d * Float(Int(low4 | high2 << 4) - 32)
            }
            for half in 0..<2 {
                for plane in 0..<4 {
                    let shift = UInt8(2 * plane), maskShift = UInt8(4 * half + plane)
                    for l in 0..<32 {
                        let low = Int((u8(block, 32 + 32 * half + l) >> shift) & 3)
                        let high = Int((u8(block, l) >> maskShift) & 1)
                        let e = 128 * half + 32 * plane + l
                        out[e] = scales[e / 16] * Float(low + 4 * high - 4)
                    }
                }
            }
        }
    }

    /// Q4_K / Q5_K: `d`, `dmin`, `scales[12]` (eight 6-bit scale/min pairs), [`qh[32]`,]
    /// `qs[128]`. Four chunks of 64: low nibbles are the first 32, high nibbles the next 32.
    private static func decodeQ45_K(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>,
                                    hasHighBit: Bool) {
        let table = halfTable
        let blockByteCount = hasHighBit ? 176 : 144
        let qsOffset = hasHighBit ? 48 : 16
        for b in 0..<count {
            let block = source + blockByteCount * b, out = y + 256 * b
            let d = h(table, block, 0), dmin = h(table, block, 2)
            for chunk in 0..<4 {
                for part in 0..<2 {
                    let s = 2 * chunk + part
                    let (scale, min) = scaleMin(block, 4, s)
                    let dl = d * Float(scale), ml = dmin * Float(min)
                    let shift = UInt8(4 * part)
                    for l in 0..<32 {
                        var q = Int((u8(block, qsOffset + 32 * chunk + l) >> shift) & 0xF)
                        if hasHighBit { q += 16 * Int((u8(block, 16 + l) >> UInt8(s)) & 1) }
                        out[32 * s + l] = dl * Float(q) - ml
                    }
                }
            }
        }
    }

    /// Q6_K: `ql[128]`, `qh[64]`, `int8 scales[16]`, `d`. Two halves of 128; each byte of `ql`
    /// and `qh` feeds elements 32 apart.
    private static func decodeQ6_K(_ source: UnsafeRawPointer, _ count: Int, _ y: UnsafeMutablePointer<Float>) {
        let table = halfTable
        for b in 0..<count {
            let block = source + 210 * b, out = y + 256 * b
            let d = h(table, block, 208)
            for half in 0..<2 {
                for l in 0..<32 {
                    let ql0 = u8(block, 64 * half + l), ql1 = u8(block, 64 * half + 32 + l)
                    let qh = u8(block, 128 + 32 * half + l)
                    for k in 0..<4 {
                        let low4 = ((k % 2 == 0 ? ql0 : ql1) >> UInt8(4 * (k / 2))) & 0xF
                        let high2 = (qh >> UInt8(2 * k)) & 3
                        let e = 128 * half + 32 * k + l
                        let scale = Float(block.load(fromByteOffset: 192 + e / 16, as: Int8.self))
                        out[e] = d * scale * Float(Int(low4 | high2 << 4) - 32)
                    }
                }
            }
        }
    }
}
