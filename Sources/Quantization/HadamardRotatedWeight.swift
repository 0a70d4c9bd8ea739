import Tensors

/// A weight quantized in the rotated basis of `HadamardRotation`: `inner` holds
/// `quantize(W·Rᵀ)` (any grid, optionally with outliers, themselves in the rotated basis), and
/// `dequantized()` returns `dequantize(inner)·R`, so consumers always see W-space.
///
/// Storage: the inner weight's bits plus the 64-bit seed; the block size follows from the width
/// and the signs from the seed, so nothing else is stored.
public struct RotatedWeight: QuantizedWeight {
    public let inner: any QuantizedWeight
    public let rotation: HadamardRotation
    /// The full request (with `rotation` set); `inner.spec` is what the inner quantizer saw.
    public let spec: QuantizationSpec

    public init(inner: any QuantizedWeight, rotation: HadamardRotation, spec: QuantizationSpec) {
        precondition(inner.columnCount == rotation.width, "rotation width \(rotation.width) ≠ \(inner.columnCount) columns")
        self.inner = inner
        self.rotation = rotation
        self.spec = spec
    }

    public var rowCount: Int { inner.rowCount }
    public var columnCount: Int { inner.columnCount }

    /// Bits of the seed, the only number the rotation adds.
    public static let seedBitCount = 64

    public var storageBitCount: Int { inner.storageBitCount + Self.seedBitCount }

    public func dequantized() -> Matrix<Float> { rotation.unrotated(inner.dequantized()) }
}
