/// The normalized fast Walsh–Hadamard transform, applied in place to consecutive blocks of a
/// vector: each block `x` of `blockSize = 2^k` values becomes `H·x/√blockSize`, with `H` the
/// Sylvester Hadamard matrix `H[i, j] = (−1)^popcount(i & j)` (symmetric, `H·H = blockSize·I`,
/// so the normalized transform is orthogonal and its own inverse).
///
/// It runs as k stages of butterflies `(a, b) ↦ (a + b, a − b)` over pairs `h` apart,
/// h = 1, 2, 4, …, blockSize/2 — O(n log n) and no dense matrix (QuaRot
/// `fake_quant/hadamard_utils.py` `matmul_hadU`; QuIP#, arXiv 2402.04396) — then one multiply by
/// `1/√blockSize`. The fast path does the stages with h ≥ 8 eight lanes at a time; the scalar
/// reference does the same additions one pair at a time, so the two agree bit for bit.
public enum HadamardTransform {
    /// The largest power of two that divides `width` (`width & −width`): the block size of the
    /// block-diagonal transform for a row of that width (576 → 64, 1536 → 512, 384 → 128).
    public static func powerOfTwoBlockSize(forWidth width: Int) -> Int {
        precondition(width > 0, "width must be positive")
        return width & -width
    }

    /// `1/√blockSize` in Float32 (exact when blockSize is a power of four).
    public static func normalization(blockSize: Int) -> Float {
        Float(1 / Double(blockSize).squareRoot())
    }

    /// Fast path: transforms every block of `blockSize` consecutive values of `values` in place.
    /// `values.count` must be a multiple of `blockSize`, a power of two.
    public static func transformBlocks(_ values: UnsafeMutableBufferPointer<Float>, blockSize: Int) {
        precondition(blockSize > 0 && blockSize & (blockSize - 1) == 0 && values.count % blockSize == 0)
        guard let base = values.baseAddress else { return }
        let scale = normalization(blockSize: blockSize)
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let x = base + start
            var h = 1
            while h < blockSize && h < 8 {
                for i in stride(from: 0, to: blockSize, by: 2 * h) {
                    for j in i..<(i + h) {
                        let a = x[j], b = x[j + h]
                        x[j] = a + b
                        x[j + h] = a - b
                    }
                }
                h *= 2
            }
            while h < blockSize {
                for i in stride(from: 0, to: blockSize, by: 2 * h) {
                    for j in stride(from: i, to: i + h, by: 8) {
                        let a = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
                        let b = UnsafeRawPointer(x + j + h).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(x + j).storeBytes(of: a + b, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(x + j + h).storeBytes(of: a - b, as: SIMD8<Float>.self)
                    }
                }
                h *= 2
            }
            var j = 0
            while j + 8 <= blockSize {
                let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(x + j).storeBytes(of: v * scale, as: SIMD8<Float>.self)
                j += 8
            }
            while j < blockSize {
                x[j] *= scale
                j += 1
            }
        }
    }

    /// Scalar reference of `transformBlocks`, for any floating-point type (Float64 is used to
    /// rotate Gram matrices).
    public static func transformBlocksReference<Scalar: BinaryFloatingPoint>(_ values: inout [Scalar], blockSize: Int) {
        precondition(blockSize > 0 && blockSize & (blockSize - 1) == 0 && values.count % blockSize == 0)
        let scale = Scalar(1 / Double(blockSize).squareRoot())
        for start in stride(from: 0, to: values.count, by: blockSize) {
            var h = 1
            while h < blockSize {
                for i in stride(from: start, to: start + blockSize, by: 2 * h) {
                    for j in i..<(i + h) {
                        let a = values[j], b = values[j + h]
                        values[j] = a + b
                        values[j + h] = a - b
                    }
                }
                h *= 2
            }
            for j in start..<(start + blockSize) { values[j] *= scale }
        }
    }
}
