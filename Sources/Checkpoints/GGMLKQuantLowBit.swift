/// Reference encoders for the 2- and 3-bit K-quants (super-blocks of 256), byte-identical to
/// ggml's `quantize_row_q2_K_ref` and `quantize_row_q3_K_ref` (`ggml/src/ggml-quants.c`).
/// Layouts in formats.md §2.5, the fits in `GGMLKQuantFits.swift`.
extension GGMLBlockCodec {
    /// Q2_K (84 B: `scales[16]`, `qs[64]`, `d`, `dmin`).
    ///
    /// Per sub-block j of 16: `make_qkx2_quants(16, nmax 3, weights |x|, rmin −0.5, rdelta 0.1,
    /// 15 steps, absolute error)` fits `x ≈ scaleⱼ·q − minⱼ`. `d = max scale/15` and
    /// `dmin = max min/15` (f16); `scales[j]` holds `round(15·scaleⱼ/max scale)` in its low
    /// nibble and `round(15·minⱼ/max min)` in its high nibble. Elements are re-quantized as
    /// `q = clamp(round((x + dmin·m)/(d·s)), 0, 3)` and packed four to a byte: element
    /// `128h + 32k + l` at bits `2k` of `qs[32h + l]`.
    static func quantizeQ2_K(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 16 + 16) { byteBuffer in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 + 16 + 16) { floatBuffer in
                let codes = byteBuffer.baseAddress!, scratch = codes + 256, packed = scratch + 16
                let weights = floatBuffer.baseAddress!, scales = weights + 16, mins = scales + 16
                var maxScale: Float = 0, maxMin: Float = 0
                for j in 0..<16 {
                    for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
                    let fit = makeQKX2Quants(count: 16, nmax: 3, x + 16 * j, weights: weights, codes: codes + 16 * j,
                                             scratch: scratch, rmin: -0.5, rdelta: 0.1, nstep: 15, useMAD: true)
                    scales[j] = fit.scale
                    mins[j] = fit.theMin
                    if fit.scale > maxScale { maxScale = fit.scale }
                    if fit.theMin > maxMin { maxMin = fit.theMin }
                }
                if maxScale > 0 {
                    let iscale = 15 / maxScale
                    for j in 0..<16 { packed[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j])) }
                    storeHalf(maxScale / 15, block, 80)
                } else {
                    for j in 0..<16 { packed[j] = 0 }
                    storeHalf(0, block, 80)
                }
                if maxMin > 0 {
                    let iscale = 15 / maxMin
                    for j in 0..<16 { packed[j] |= UInt8(truncatingIfNeeded: nearestInt(iscale * mins[j]) << 4) }
                    storeHalf(maxMin / 15, block, 82)
                } else {
                    storeHalf(0, block, 82)
                }
                block.copyMemory(from: packed, byteCount: 16)
                let d = halfValue(block, 80), dmin = halfValue(block, 82)
                for j in 0..<16 {
                    let subScale = d * Float(packed[j] & 0xF)
                    if subScale == 0 { continue }
                    let subMin = dmin * Float(packed[j] >> 4)
                    for i in 0..<16 {
                        codes[16 * j + i] = UInt8(clamp(nearestInt((x[16 * j + i] + subMin) / subScale), 0, 3))
                    }
                }
                packTwoBitCodes(codes, into: block + 16)
            }
        }
    }

    /// Q3_K (110 B: `hmask[32]`, `qs[64]`, `scales[12]`, `d`).
    ///
    /// Per sub-block j of 16: `make_q3_quants(16, nmax 4)` gives a signed scale. With `max` the
    /// scale of largest magnitude, `iscale = −32/max`, `d = 1/iscale` (f16) and 6-bit codes
    /// `clamp(round(iscale·scaleⱼ), −32, 31) + 32`: low nibbles in `scales[0..<8]` (sub-blocks
    /// 8–15 in the high halves), top two bits at bits `2·(j/4)` of `scales[8 + j%4]`. Elements
    /// are re-quantized as `q = clamp(round(x/(d·(code − 32))), −4, 3) + 4`; the low two bits
    /// are packed as in Q2_K and bit 2 of element e goes to bit `e/32` of `hmask[e%32]`.
    static func quantizeQ3_K(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { codeBuffer in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { scaleBuffer in
                let codes = codeBuffer.baseAddress!, scales = scaleBuffer.baseAddress!
                for j in 0..<16 { scales[j] = makeQ3Quants(count: 16, nmax: 4, x + 16 * j, codes: codes + 16 * j) }
                let maxScale = signedAbsoluteMaximum(scales, count: 16).signed
                let packed = (block + 96).assumingMemoryBound(to: UInt8.self)
                packed.initialize(repeating: 0, count: 12)
                if maxScale != 0 {
                    let iscale = -32 / maxScale
                    for j in 0..<16 {
                        var l = Int8(truncatingIfNeeded: nearestInt(iscale * scales[j]))
                        l = max(-32, min(31, l)) + 32
                        if j < 8 {
                            packed[j] = UInt8(l & 0xF)
                        } else {
                            packed[j - 8] |= UInt8(l & 0xF) << 4
                        }
                        packed[8 + j % 4] |= UInt8(l >> 4) << (2 * (j / 4))
                    }
                    storeHalf(1 / iscale, block, 108)
                } else {
                    storeHalf(0, block, 108)
                }
                let d = halfValue(block, 108)
                for j in 0..<16 {
                    let low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4
                    let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3
                    let subScale = d * Float(Int(low | high << 4) - 32)
                    if subScale == 0 { continue }
                    for i in 0..<16 {
                        codes[16 * j + i] = Int8(clamp(nearestInt(x[16 * j + i] / subScale), -4, 3) + 4)
                    }
                }
                let hmask = block.assumingMemoryBound(to: UInt8.self)
                hmask.initialize(repeating: 0, count: 32)
                let lowCodes = UnsafeMutableRawPointer(codes).assumingMemoryBound(to: UInt8.self)
                for e in 0..<256 where lowCodes[e] > 3 {
                    hmask[e % 32] |= 1 << (e / 32)
                    lowCodes[e] -= 4
                }
                packTwoBitCodes(lowCodes, into: block + 32)
            }
        }
    }

    /// Packs 256 two-bit codes four to a byte: element `128h + 32k + l` at bits `2k` of byte
    /// `32h + l` (Q2_K and Q3_K `qs`).
    @inline(__always)
    static func packTwoBitCodes(_ codes: UnsafePointer<UInt8>, into qs: UnsafeMutableRawPointer) {
        for h in 0..<2 {
            for l in 0..<32 {
                let base = codes + 128 * h + l
                let byte = base[0] | base[32] << 2 | base[64] << 4 | base[96] << 6
                qs.storeBytes(of: byte, toByteOffset: 32 * h + l, as: UInt8.self)
            }
        }
    }
}
