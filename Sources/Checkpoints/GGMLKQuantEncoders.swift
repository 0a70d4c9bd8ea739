import LoquatSupport

/// Reference encoders for the 4-, 5- and 6-bit K-quants (super-blocks of 256), byte-identical
/// to ggml's `quantize_row_q4_K_ref`, `quantize_row_q5_K_ref`, `quantize_row_q6_K_ref`
/// (`ggml/src/ggml-quants.c`; what `llama-quantize` writes without an importance matrix).
/// Layouts and the decoding formulas are in formats.md §2.5, the fits in
/// `GGMLKQuantFits.swift`. Each function writes one block from 256 Float32 inputs.
extension GGMLBlockCodec {
    /// Q4_K (144 B: `d`, `dmin`, `scales[12]`, `qs[128]`) and Q5_K (176 B: `d`, `dmin`,
    /// `scales[12]`, `qh[32]`, `qs[128]`).
    ///
    /// Per sub-block j of 32: weights `wᵢ = √(mean x²) + |xᵢ|` and `make_qkx2_quants` fit
    /// `x ≈ scaleⱼ·q − minⱼ` (Q4_K: q ∈ 0…15, rmin −1, 20 steps; Q5_K: q ∈ 0…31, rmin −0.5,
    /// 15 steps; rdelta 0.1, squared error). Then `d = max scale/63`, `dmin = max min/63` (f16)
    /// and 6-bit codes `ls = round(63·scaleⱼ/max scale)`, `lm = round(63·minⱼ/max min)`; sub-
    /// blocks 0–3 keep them in the low six bits of `scales[j]` / `scales[j+4]`, sub-blocks 4–7
    /// split them into a nibble of `scales[j+4]` and the top two bits of `scales[j−4]` /
    /// `scales[j]`. Finally every element is re-quantized with the rounded `d·ls` and `dmin·lm`:
    /// `q = clamp(round((x + dmin·lm)/(d·ls)))`. Q4_K packs element `64k + l` (l < 32) in the low
    /// nibble of `qs[32k + l]` and `64k + 32 + l` in its high nibble; Q5_K's fifth bits go to
    /// bit `2k` (resp. `2k+1`) of `qh[l]`.
    static func quantizeQ45_K(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer, hasHighBit: Bool) {
        let nmax: Int32 = hasHighBit ? 31 : 15
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 32 + 12 + 32) { byteBuffer in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 8 + 8) { floatBuffer in
                let codes = byteBuffer.baseAddress!, scratch = codes + 256, packed = scratch + 32, qh = packed + 12
                let weights = floatBuffer.baseAddress!, scales = weights + 32, mins = scales + 8
                var maxScale: Float = 0, maxMin: Float = 0
                for j in 0..<8 {
                    let xj = x + 32 * j
                    var sumX2: Float = 0
                    for l in 0..<32 { sumX2 += xj[l] * xj[l] }
                    let averageX = (sumX2 / 32).squareRoot()
                    for l in 0..<32 { weights[l] = averageX + abs(xj[l]) }
                    let fit = makeQKX2Quants(count: 32, nmax: nmax, xj, weights: weights, codes: codes + 32 * j,
                                             scratch: scratch, rmin: hasHighBit ? -0.5 : -1, rdelta: 0.1,
                                             nstep: hasHighBit ? 15 : 20, useMAD: false)
                    scales[j] = fit.scale
                    mins[j] = fit.theMin
                    if fit.scale > maxScale { maxScale = fit.scale }
                    if fit.theMin > maxMin { maxMin = fit.theMin }
                }
                let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
                let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
                packed.initialize(repeating: 0, count: 12 + 32)
                for j in 0..<8 {
                    let ls = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseScale * scales[j])))
                    let lm = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseMin * mins[j])))
                    if j < 4 {
                        packed[j] = ls
                        packed[j + 4] = lm
                    } else {
                        packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                        packed[j - 4] |= (ls >> 4) << 6
                        packed[j] |= (lm >> 4) << 6
                    }
                }
                storeHalf(maxScale / 63, block, 0)
                storeHalf(maxMin / 63, block, 2)
                (block + 4).copyMemory(from: packed, byteCount: 12)
                let d = halfValue(block, 0), dmin = halfValue(block, 2)
                for j in 0..<8 {
                    let (sc, m) = scaleAndMin(packed, j)
                    let subScale = d * Float(sc)
                    if subScale == 0 { continue }
                    let subMin = dmin * Float(m)
                    for i in 0..<32 {
                        codes[32 * j + i] = UInt8(clamp(nearestInt((x[32 * j + i] + subMin) / subScale), 0, nmax))
                    }
                }
                let qsOffset = hasHighBit ? 48 : 16
                for k in 0..<4 {
                    for l in 0..<32 {
                        let low = codes[64 * k + l], high = codes[64 * k + 32 + l]
                        block.storeBytes(of: (low & 0xF) | (high & 0xF) << 4, toByteOffset: qsOffset + 32 * k + l, as: UInt8.self)
                        qh[l] |= (low >> 4) << (2 * k) | (high >> 4) << (2 * k + 1)
                    }
                }
                if hasHighBit { (block + 16).copyMemory(from: qh, byteCount: 32) }
            }
        }
    }

    /// Q6_K (210 B: `ql[128]`, `qh[64]`, `int8 scales[16]`, `d`).
    ///
    /// Per sub-block of 16: `make_qx_quants(16, 32, rmse_type 1)` gives a signed scale. With
    /// `max` the scale of largest magnitude, `iscale = −128/max`, `d = 1/iscale` (f16) and
    /// `scales[j] = min(127, round(iscale·scaleⱼ))`; elements are re-quantized as
    /// `q = clamp(round(x/(d·scales[j])), −32, 31) + 32`. A block whose scales are all below
    /// 1e-15 is stored as zeros. Element `128h + 32k + l` keeps its low nibble in
    /// `ql[64h + 32·(k%2) + l]` (low half for k < 2, high half otherwise) and its top two bits
    /// at bit `2k` of `qh[32h + l]`.
    static func quantizeQ6_K(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { codeBuffer in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { scaleBuffer in
                let codes = codeBuffer.baseAddress!, scales = scaleBuffer.baseAddress!
                for j in 0..<16 { scales[j] = makeQXQuants(count: 16, nmax: 32, x + 16 * j, codes: codes + 16 * j) }
                let (maxScale, maxAbsoluteScale) = signedAbsoluteMaximum(scales, count: 16)
                if maxAbsoluteScale < groupMaximumEpsilon {
                    block.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                    storeHalf(0, block, 208)
                    return
                }
                let iscale = -128 / maxScale
                storeHalf(1 / iscale, block, 208)
                for j in 0..<16 {
                    let code = Int8(truncatingIfNeeded: min(127, nearestInt(iscale * scales[j])))
                    block.storeBytes(of: code, toByteOffset: 192 + j, as: Int8.self)
                }
                let d = halfValue(block, 208)
                for j in 0..<16 {
                    let subScale = d * Float(block.load(fromByteOffset: 192 + j, as: Int8.self))
                    if subScale == 0 { continue }
                    for i in 0..<16 {
                        codes[16 * j + i] = Int8(clamp(nearestInt(x[16 * j + i] / subScale), -32, 31) + 32)
                    }
                }
                for h in 0..<2 {
                    for l in 0..<32 {
                        let base = codes + 128 * h + l
                        let q0 = UInt8(bitPattern: base[0]), q1 = UInt8(bitPattern: base[32])
                        let q2 = UInt8(bitPattern: base[64]), q3 = UInt8(bitPattern: base[96])
                        block.storeBytes(of: (q0 & 0xF) | (q2 & 0xF) << 4, toByteOffset: 64 * h + l, as: UInt8.self)
                        block.storeBytes(of: (q1 & 0xF) | (q3 & 0xF) << 4, toByteOffset: 64 * h + 32 + l, as: UInt8.self)
                        let high = (q0 >> 4) | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6
                        block.storeBytes(of: high, toByteOffset: 128 + 32 * h + l, as: UInt8.self)
                    }
                }
            }
        }
    }

    /// The f16 field at `offset` of a block being written, as Float32.
    @inline(__always)
    static func halfValue(_ block: UnsafeMutableRawPointer, _ offset: Int) -> Float {
        FloatFormats.float(fromHalfBits: UInt16(littleEndian: block.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// Q4_K/Q5_K sub-block `j`'s 6-bit scale and min from the 12 packed bytes (ggml's
    /// `get_scale_min_k4`).
    @inline(__always)
    static func scaleAndMin(_ q: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}
