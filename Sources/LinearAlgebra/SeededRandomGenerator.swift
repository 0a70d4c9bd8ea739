#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// A small seeded pseudo-random generator: xoshiro256** (Blackman & Vigna, "Scrambled linear
/// pseudorandom number generators", 2021), its state filled from the seed by splitmix64 as the
/// authors recommend. Gaussians use the Box–Muller transform (Box & Muller, 1958).
///
/// The same seed gives the same sequence on every run and machine (the Gaussians rely on the
/// C library's `log`, `sin`, `cos`, which are deterministic for a given libm).
public struct SeededRandomGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)
    /// The second Gaussian of the last Box–Muller pair, not yet returned.
    private var spareGaussian: Double?

    public init(seed: UInt64) {
        var mix = seed
        func splitmix64() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var z = mix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        // splitmix64 never yields four zero words in a row, so the state is never all-zero.
        state = (splitmix64(), splitmix64(), splitmix64(), splitmix64())
    }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, by: 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, by: 45)
        return result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal sample, N(0, 1), by Box–Muller: from uniforms `u₁ ∈ (0, 1]`,
    /// `u₂ ∈ [0, 1)`, the pair `√(−2 ln u₁)·(cos 2πu₂, sin 2πu₂)`; the sine half is kept for
    /// the next call.
    public mutating func nextGaussian() -> Double {
        if let spare = spareGaussian {
            spareGaussian = nil
            return spare
        }
        let u1 = Double((next() >> 11) + 1) * 0x1.0p-53  // (0, 1]: log stays finite
        let u2 = nextUniform()
        let radius = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        spareGaussian = radius * sin(angle)
        return radius * cos(angle)
    }

    /// A `[rowCount, columnCount]` matrix of independent N(0, σ²) samples, filled in row-major
    /// order.
    @_specialize(exported: true, where Scalar == Double)
    @_specialize(exported: true, where Scalar == Float)
    public mutating func gaussianMatrix<Scalar: BinaryFloatingPoint & Sendable>(
        rowCount: Int, columnCount: Int, standardDeviation: Double = 1
    ) -> Matrix<Scalar> {
        var values = [Scalar](repeating: 0, count: rowCount * columnCount)
        for index in values.indices { values[index] = Scalar(standardDeviation * nextGaussian()) }
        return Matrix(rowCount: rowCount, columnCount: columnCount, values: values)
    }

    private func rotateLeft(_ value: UInt64, by amount: UInt64) -> UInt64 {
        (value << amount) | (value >> (64 - amount))
    }
}
