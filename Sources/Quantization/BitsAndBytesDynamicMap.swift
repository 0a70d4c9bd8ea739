/// The second level of bitsandbytes' double quantization: the signed dynamic 8-bit map and the
/// blockwise 8-bit quantizer of bnb's CPU library, plus the float32 mean torch uses for the offset.
///
/// Double quantization (algorithms.md §1(b), bnb `quantize_4bit(compress_statistics=True)`):
/// `offset = mean(absmax)`, then `absmax − offset` is quantized in blocks of 256 with the map
/// below: `absmax2[j] = max |a_i − offset|`, `qabsmax[i] = lut[index((a_i − offset) · (1/absmax2[j]))]`.
/// Dequantized: `absmax_i = map[qabsmax_i] · absmax2[i / 256] + offset` (two float32 roundings).
public enum BitsAndBytesDynamicMap {
    /// Blocks of first-level absmax values sharing one nested absmax.
    public static let nestedBlockSize = 256

    /// `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)` exactly as bnb
    /// returns it (float32, ascending): for i = 0…6 the 2^i midpoints of
    /// `torch.linspace(0.1, 1, 2^i + 1)` times ±10^(i−6), then 0 and +1. 127 negative entries,
    /// one zero, 128 positive; no −1. Hard-coded as bit patterns because the values depend on
    /// torch's float32 linspace (checked against bnb by the golden test).
    public static let signed: [Float] = bitPatterns.map { Float(bitPattern: $0) }

    private static let bitPatterns: [UInt32] = [
        0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
        0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
        0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
        0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
        0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
        0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
        0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
        0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
        0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
        0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
        0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
        0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
        0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
        0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
        0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
        0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
        0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
        0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
        0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
        0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
        0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
        0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
        0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
        0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
        0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
        0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
        0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
        0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
        0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
        0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
        0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
        0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
    ]

    /// bnb's CPU quantizer (`csrc/cpu_ops.cpp`, `quantize_cpu_impl`) does not search the map: it
    /// looks the scaled value up in a 65536-entry table. Entry `i` stands for
    /// `v_i = −1 + (2·i)/65535` (float32) and holds the number of float32 midpoints
    /// `0.5·(m[k] + m[k+1])` strictly below `v_i`; a value `u` reads entry
    /// `⌊((clamp(u, −1, 1) + 1)·0.5)·65535 + 0.5⌋`. This is not always the nearest entry.
    public static let signedLookupTable: [UInt8] = lookupTable(for: signed)

    static func lookupTable(for map: [Float]) -> [UInt8] {
        precondition(map.count == 256)
        let midpoints = (0..<255).map { 0.5 as Float * (map[$0] + map[$0 + 1]) }
        var table = [UInt8](repeating: 0, count: 65536)
        var code = 0
        for i in 0..<65536 {
            let value: Float = -1 + (2 * Float(i)) / Float(65535)
            while code < 255 && midpoints[code] < value { code += 1 }
            table[i] = UInt8(code)
        }
        return table
    }

    /// The lookup-table index of a scaled value, as bnb's `norm_to_lut_index` computes it.
    @inlinable
    public static func lookupIndex(_ scaled: Float) -> Int {
        let clamped = min(max(scaled, -1), 1)
        let position: Float = (clamped + 1) * 0.5 * Float(65535) + 0.5
        return Int(position)  // truncation, as the C++ cast to uint16_t
    }

    /// 8-bit blockwise quantization as bnb's CPU library does it (`quantize_blockwise` on a
    /// float32 CPU tensor): per block of `blockSize`, `absmax = max |x|`; a zero block gets code 0
    /// everywhere; otherwise `code = lut[lookupIndex(x · (1/absmax))]`. Returns (codes, absmax).
    public static func quantizeBlockwise(_ values: [Float], blockSize: Int = nestedBlockSize) -> (codes: [UInt8], absmax: [Float]) {
        let blockCount = (values.count + blockSize - 1) / blockSize
        var codes = [UInt8](repeating: 0, count: values.count)
        var absmax = [Float](repeating: 0, count: blockCount)
        let table = signedLookupTable
        for block in 0..<blockCount {
            let range = (block * blockSize)..<min(values.count, (block + 1) * blockSize)
            var maximum: Float = 0
            for i in range { maximum = max(maximum, abs(values[i])) }
            absmax[block] = maximum
            if maximum == 0 { continue }
            let reciprocal = 1 / maximum
            for i in range { codes[i] = table[lookupIndex(values[i] * reciprocal)] }
        }
        return (codes, absmax)
    }

    /// `map[code_i] · absmax[i / blockSize]` (bnb's `dequantize_blockwise` on the CPU).
    public static func dequantizeBlockwise(_ codes: [UInt8], absmax: [Float], map: [Float] = signed,
                                           blockSize: Int = nestedBlockSize) -> [Float] {
        codes.indices.map { map[Int(codes[$0])] * absmax[$0 / blockSize] }
    }

    /// `torch.mean` of a contiguous float32 vector on the CPU: ATen's `cascade_sum`
    /// (aten/src/ATen/native/cpu/SumKernel.cpp) with 8-lane vectors (the kernel torch dispatches
    /// for float sums on AVX2 and AVX-512 machines alike), then `sum / n` in float32. Over 32768
    /// values with `torchThreadCount` > 1 torch sums one contiguous chunk per thread
    /// (`min(threads, ⌈n/32768⌉)` chunks of `⌈n/chunks⌉`) and adds the partial sums in thread
    /// order, which can change the last bit; pass the thread count of the bnb run to match it.
    public static func torchMean(_ values: UnsafeBufferPointer<Float>, torchThreadCount: Int = 1) -> Float {
        let count = values.count
        let grainSize = 32768
        guard torchThreadCount > 1, count >= grainSize else { return torchSum(values) / Float(count) }
        let chunkCount = min(torchThreadCount, (count + grainSize - 1) / grainSize)
        let chunkSize = (count + chunkCount - 1) / chunkCount
        var total: Float = 0
        for start in stride(from: 0, to: count, by: chunkSize) {
            total += torchSum(UnsafeBufferPointer(rebasing: values[start..<min(count, start + chunkSize)]))
        }
        return total / Float(count)
    }

    static func torchSum(_ values: UnsafeBufferPointer<Float>) -> Float {
        let laneCount = 8
        let vectorCount = values.count / laneCount
        func vector(_ index: Int) -> SIMD8<Float> {
            UnsafeRawPointer(values.baseAddress! + index * laneCount).loadUnaligned(as: SIMD8<Float>.self)
        }
        // row_sum: the vectors as a (-1, 4) array summed by multi_row_sum with 4 cascade levels.
        let rowCount = vectorCount / 4
        let levelCount = 4
        let ceilLog2 = rowCount <= 1 ? 0 : Int.bitWidth - (rowCount - 1).leadingZeroBitCount
        let levelPower = max(4, ceilLog2 / levelCount)
        let levelStep = 1 << levelPower
        let levelMask = levelStep - 1
        // accumulators[level * 4 + k]: the partial sum of column k at cascade level `level`.
        var accumulators = [SIMD8<Float>](repeating: .zero, count: levelCount * 4)
        var row = 0
        while row + levelStep <= rowCount {
            for _ in 0..<levelStep {
                for k in 0..<4 { accumulators[k] += vector(row * 4 + k) }
                row += 1
            }
            for level in 1..<levelCount {
                for k in 0..<4 {
                    accumulators[level * 4 + k] += accumulators[(level - 1) * 4 + k]
                    accumulators[(level - 1) * 4 + k] = .zero
                }
                if row & (levelMask << (level * levelPower)) != 0 { break }
            }
        }
        while row < rowCount {
            for k in 0..<4 { accumulators[k] += vector(row * 4 + k) }
            row += 1
        }
        for level in 1..<levelCount {
            for k in 0..<4 { accumulators[k] += accumulators[level * 4 + k] }
        }
        var sum = accumulators[0]
        for index in (rowCount * 4)..<vectorCount { sum += vector(index) }
        for k in 1..<4 { sum += accumulators[k] }
        var total: Float = 0
        for index in (vectorCount * laneCount)..<values.count { total += values[index] }
        for lane in 0..<laneCount { total += sum[lane] }
        return total
    }
}
