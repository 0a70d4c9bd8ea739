/// The parameters of one group: `x̂ = scale · (level(code) − zeroPoint)`.
public struct GroupParameters: Sendable, Equatable {
    public var scale: Float
    public var zeroPoint: Float
    public init(scale: Float, zeroPoint: Float) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}

/// A grid without data: how one group's parameters are fitted and how a value rounds to a code.
/// Shared by round-to-nearest (`GroupedGridQuantizer`) and GPTQ, which fits a group when its
/// first column comes up and rounds column by column.
public struct GridRule: Sendable {
    public enum Kind: Sendable, Equatable {
        /// INT-k (algorithms.md §14). Symmetric: signed codes stored offset by `2^(b−1)`.
        case integer(symmetric: Bool)
        /// NormalFloat-k, nearest codebook entry after absmax scaling (algorithms.md §2).
        case normalFloat
        /// FP8 with `scale = absmax / maxFinite` (ZeroQuant-FP).
        case fp8(FP8Format)
    }

    public let kind: Kind
    public let bits: Int
    /// INT-k only: pick each group's clip ratio by least squared error (`IntegerGrid.clipRatios`).
    public let clipSearch: Bool
    /// Level of every code (`2^bits` entries; 256 for FP8).
    public let levels: [Float]
    /// `levels` as stored in a `GroupedGridWeight`.
    public let gridLevels: GridLevels
    /// Largest code, `2^bits − 1` (0x7E/0x7B are irrelevant for FP8, whose encoder saturates).
    public let maxCode: Float

    public init(kind: Kind, bits: Int, clipSearch: Bool = false) {
        self.kind = kind
        self.bits = bits
        self.clipSearch = clipSearch
        self.maxCode = Float((1 << bits) - 1)
        switch kind {
        case .integer:
            gridLevels = .integer
            levels = (0..<(1 << bits)).map { Float($0) }
        case .normalFloat:
            let codebook = NormalFloatCodebook.values(bits: bits)
            gridLevels = .codebook(codebook)
            levels = codebook
        case let .fp8(format):
            gridLevels = .fp8(format)
            levels = FP8Encoding.decodeTable(format)
        }
    }

    /// Bits stored per scale (FP16 for INT-k as GPTQ exports store them; FP32 otherwise).
    public var scaleBitCount: Int {
        if case .integer = kind { return 16 }
        return 32
    }

    /// The zero points a weight with these per-group zeros stores.
    public func zeroPoints(_ values: [Float]) -> GridZeroPoints {
        switch kind {
        case .integer(symmetric: true): return .midpoint
        case .integer(symmetric: false): return .integer(values)
        case .normalFloat, .fp8: return .none
        }
    }

    /// Fits one group from its values (any order; `count ≥ 1`).
    public func fit(_ values: UnsafeBufferPointer<Float>) -> GroupParameters {
        switch kind {
        case let .integer(symmetric):
            return IntegerGrid.fit(values, bits: bits, symmetric: symmetric, clipSearch: clipSearch)
        case .normalFloat:
            let absmax = GroupStatistics.absmax(values)
            return GroupParameters(scale: absmax > 0 ? absmax : 1, zeroPoint: 0)
        case let .fp8(format):
            let absmax = GroupStatistics.absmax(values)
            return GroupParameters(scale: absmax > 0 ? absmax / FP8Encoding.maxFinite(format) : 1, zeroPoint: 0)
        }
    }

    /// The code of one value (scalar; the exact definition every fast path must reproduce).
    @inlinable
    public func encode(_ value: Float, _ parameters: GroupParameters) -> UInt8 {
        switch kind {
        case .integer:
            return IntegerGrid.code(value, parameters, maxCode: maxCode)
        case .normalFloat:
            return NormalFloatCodebook.nearestCode(value / parameters.scale, levels)
        case let .fp8(format):
            return FP8Encoding.encode(value / parameters.scale, format)
        }
    }

    /// The dequantized value of one code.
    @inlinable
    public func decode(_ code: UInt8, _ parameters: GroupParameters) -> Float {
        parameters.scale * (levels[Int(code)] - parameters.zeroPoint)
    }
}

/// Reductions over one group, vectorized; min, max and absmax are exact in any order.
public enum GroupStatistics {
    /// `(min, max)` of a non-empty group.
    public static func minMax(_ values: UnsafeBufferPointer<Float>) -> (Float, Float) {
        let count = values.count
        var index = 0
        var low = SIMD8<Float>(repeating: values[0]), high = low
        let base = values.baseAddress!
        while index + 8 <= count {
            let chunk = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<Float>.self)
            low = pointwiseMin(low, chunk)
            high = pointwiseMax(high, chunk)
            index += 8
        }
        var minimum = low.min(), maximum = high.max()
        while index < count {
            minimum = Swift.min(minimum, values[index])
            maximum = Swift.max(maximum, values[index])
            index += 1
        }
        return (minimum, maximum)
    }

    /// `max |x|` of a group (0 when empty).
    public static func absmax(_ values: UnsafeBufferPointer<Float>) -> Float {
        guard !values.isEmpty else { return 0 }
        let (minimum, maximum) = minMax(values)
        return Swift.max(-minimum, maximum)
    }
}
