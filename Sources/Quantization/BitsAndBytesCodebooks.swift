/// bitsandbytes' two 4-bit data types and the rounding rule its CPU quantizer applies to them.
///
/// Tables are the float32 values `bitsandbytes.functional.get_4bit_type(name)` returns on the
/// CPU (bitsandbytes 0.50.2; `bitsandbytes/functional.py`, algorithms.md §1(b)), indexed by the
/// 4-bit code. The quantizer is the PyTorch backend's (`bitsandbytes/backends/default/ops.py`,
/// `quantize_4bit`), which is what bitsandbytes runs on a CPU: the code of a scaled value `u` is
/// the entry of the ascending table whose position is the number of float32 midpoints
/// `(c[k] + c[k+1]) / 2` strictly below `u` (`torch.bucketize`, right=False), so a value equal
/// to a midpoint stays at the lower entry.
public enum BitsAndBytesQuantType: String, Sendable, Codable, CaseIterable {
    /// NormalFloat4 (QLoRA): 16 quantiles of N(0, 1) scaled to [-1, 1], codes in value order.
    case nf4
    /// bitsandbytes' FP4: `[sign | 3 magnitude bits]`, magnitudes {0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4}
    /// in code order (not OCP E2M1).
    case fp4

    /// The method of `QuantizationSpec` this type belongs to.
    public init?(method: QuantizationMethod) {
        switch method {
        case .nf4: self = .nf4
        case .fp4: self = .fp4
        default: return nil
        }
    }
}

/// A 16-entry code table with its quantization thresholds.
public struct BitsAndBytesCodebook: Sendable, Equatable {
    public let quantType: BitsAndBytesQuantType
    /// `values[code]`, float32, the `quant_map` tensor of a bnb checkpoint.
    public let values: [Float]
    /// The 15 ascending thresholds: float32 `(s[k] + s[k+1]) / 2` of the sorted table `s`.
    public let midpoints: [Float]
    /// `sortedCodes[k]` is the code of the k-th smallest entry (ties as `torch.argsort` orders them).
    public let sortedCodes: [UInt8]

    /// The code of a scaled value `u ∈ [-1, 1]`: `sortedCodes[#{k : midpoints[k] < u}]`.
    @inlinable
    public func code(forScaled u: Float) -> UInt8 {
        var position = 0
        for midpoint in midpoints where midpoint < u { position += 1 }
        return sortedCodes[position]
    }

    /// The code a zero scaled value gets; bnb pads an odd element count with it.
    public var zeroCode: UInt8 { code(forScaled: 0) }

    public static func of(_ quantType: BitsAndBytesQuantType) -> BitsAndBytesCodebook {
        quantType == .nf4 ? nf4 : fp4
    }

    /// NF4 (`create_normal_map(offset=0.9677083, use_extra_value=True)`, hard-coded as bnb does).
    public static let nf4 = BitsAndBytesCodebook(quantType: .nf4, values: [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ], sortedCodes: Array(0...15))

    /// FP4: `[0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3] / 12` in float32.
    /// The Python list's `-0` is the integer zero, so code 8 is +0.0 like code 0. torch.argsort
    /// puts code 0 before code 8 among the two zeros, hence a scaled value in (0, 1/384] gets
    /// code 8 and one in (-1/384, 0] code 0 — on the CPU path the sign bit of a tiny value is the
    /// opposite of CUDA's; both decode to zero.
    public static let fp4 = BitsAndBytesCodebook(quantType: .fp4, values: [
        0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3,
    ].map { Float($0) / 12 }, sortedCodes: [11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3])

    private init(quantType: BitsAndBytesQuantType, values: [Float], sortedCodes: [UInt8]) {
        precondition(values.count == 16 && sortedCodes.count == 16)
        self.quantType = quantType
        self.values = values
        self.sortedCodes = sortedCodes
        let sorted = sortedCodes.map { values[Int($0)] }
        self.midpoints = (0..<15).map { (sorted[$0] + sorted[$0 + 1]) / 2 }
    }
}
