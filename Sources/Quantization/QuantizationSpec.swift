import Tensors

/// The weight formats `quantize` knows. Families live one per file; `Quantizer` dispatches.
public enum QuantizationMethod: String, CaseIterable, Sendable, Codable {
    /// bitsandbytes NF4, bit-identical (blocksize 64 by default, absmax, high nibble first).
    case nf4
    /// bitsandbytes FP4 (its own 3-bit magnitude table, not OCP E2M1), bit-identical.
    case fp4
    /// NormalFloat-k codebooks built as LoftQ builds them (bits 2, 3, 4, 8).
    case nf
    /// Uniform INT-k, symmetric or asymmetric, any group size, optional MSE clipping.
    case int
    /// FP8 E4M3 / E5M2 with per-channel or per-group scales (ZeroQuant-FP).
    case fp8
    /// Half-quadratic zero/scale optimisation, calibration-free (HQQ).
    case hqq
    /// GPTQ/OPTQ with a calibration Hessian, on an int or nf grid.
    case gptq
}

/// FP8 encodings.
public enum FP8Format: String, Sendable, Codable { case e4m3, e5m2 }

/// Incoherence processing before quantization.
public struct RotationSpec: Sendable, Equatable, Codable {
    /// Only "hadamard" (QuaRot-style randomized Hadamard) for now.
    public var kind: String
    /// Seed of the random signs; recorded so the rotation can be rebuilt exactly.
    public var seed: UInt64
    public init(kind: String = "hadamard", seed: UInt64) {
        self.kind = kind
        self.seed = seed
    }
}

/// SpQR-style sparse outliers kept in high precision beside the grid.
public enum OutlierSpec: Sendable, Equatable, Codable {
    /// Keep this fraction of weights (0 < f < 1), the largest by |w − q(w)| error.
    case fraction(Double)
    /// Keep every weight whose |w| exceeds `threshold` × the row's RMS.
    case threshold(Double)
}

/// GPTQ options (algorithms.md §9).
public struct GPTQOptions: Sendable, Equatable, Codable {
    /// Relative dampening λ: H + λ·mean(diag H)·I. GPTQ default 0.01.
    public var dampening: Double = 0.01
    /// Columns per lazy block update. Default 128.
    public var blockSize: Int = 128
    /// Process columns by descending diag(H) ("act-order").
    public var actOrder: Bool = false
    /// The grid GPTQ rounds to: `.int` or `.nf`.
    public var grid: QuantizationMethod = .int
    public init() {}
}

/// One complete description of how to quantize a weight matrix `[out, in]`. Groups run along
/// the input dimension (a row), as in GPTQ/AWQ/HQQ; bitsandbytes formats use blocks of the
/// row-major flattened matrix, which coincide when `in` is a multiple of the block size.
public struct QuantizationSpec: Sendable, Equatable, Codable {
    public var method: QuantizationMethod
    /// Bits per code (nf4/fp4: 4; nf: 2, 3, 4, 8; int: 2…8; fp8: 8; hqq: 1…8; gptq: the grid's).
    public var bits: Int
    /// Elements per scale group; `groupSize == 0` means one group per row (per-channel).
    public var groupSize: Int
    /// int/hqq: symmetric (no zero point) or asymmetric.
    public var symmetric: Bool
    /// nf4/fp4: double-quantize the absmax (8-bit dynamic map, blocks of 256, mean offset).
    public var doubleQuant: Bool
    /// int: search the clipping ratio that minimises the MSE of each group.
    public var clipSearch: Bool
    public var fp8Format: FP8Format
    public var gptq: GPTQOptions
    public var rotation: RotationSpec?
    public var outliers: OutlierSpec?

    public init(method: QuantizationMethod, bits: Int? = nil, groupSize: Int? = nil, symmetric: Bool? = nil,
                doubleQuant: Bool = false, clipSearch: Bool = false, fp8Format: FP8Format = .e4m3,
                gptq: GPTQOptions = GPTQOptions(), rotation: RotationSpec? = nil, outliers: OutlierSpec? = nil) {
        self.method = method
        self.bits = bits ?? QuantizationSpec.defaultBits(method)
        self.groupSize = groupSize ?? QuantizationSpec.defaultGroupSize(method)
        self.symmetric = symmetric ?? (method == .int ? true : false)
        self.doubleQuant = doubleQuant
        self.clipSearch = clipSearch
        self.fp8Format = fp8Format
        self.gptq = gptq
        self.rotation = rotation
        self.outliers = outliers
    }

    public static func defaultBits(_ method: QuantizationMethod) -> Int {
        switch method {
        case .nf4, .fp4, .nf, .int, .hqq, .gptq: return 4
        case .fp8: return 8
        }
    }

    /// bitsandbytes blocksize 64; GPTQ/HQQ/INT group 64 (a divisor of every SmolLM2 and MiniLM
    /// width); FP8 per-channel.
    public static func defaultGroupSize(_ method: QuantizationMethod) -> Int {
        switch method {
        case .fp8: return 0
        default: return 64
        }
    }

    /// The bit widths each method accepts.
    public static func allowedBits(_ method: QuantizationMethod) -> ClosedRange<Int> {
        switch method {
        case .nf4, .fp4: return 4...4
        case .nf: return 2...8
        case .int, .gptq: return 2...8
        case .fp8: return 8...8
        case .hqq: return 1...8
        }
    }

    /// Checks the combination; errors name the parameter (`bits`, `groupSize`, …).
    public func validate(columnCount: Int? = nil) throws {
        guard QuantizationSpec.allowedBits(method).contains(bits) else {
            throw QuantizationError.invalidParameter("bits", "\(method.rawValue) takes bits in \(QuantizationSpec.allowedBits(method)), got \(bits)")
        }
        if method == .nf && ![2, 3, 4, 8].contains(bits) {
            throw QuantizationError.invalidParameter("bits", "nf takes bits 2, 3, 4 or 8, got \(bits)")
        }
        guard groupSize >= 0 else { throw QuantizationError.invalidParameter("groupSize", "must be ≥ 0 (0 = per channel), got \(groupSize)") }
        if (method == .nf4 || method == .fp4) && !(groupSize >= 32 && groupSize <= 4096 && groupSize & (groupSize - 1) == 0) {
            throw QuantizationError.invalidParameter("groupSize", "bitsandbytes block sizes are powers of two from 32 to 4096, got \(groupSize)")
        }
        if doubleQuant && !(method == .nf4 || method == .fp4) {
            throw QuantizationError.invalidParameter("doubleQuant", "double quantization applies to nf4 and fp4 only")
        }
        if let columnCount, groupSize > 0, method != .nf4, method != .fp4, columnCount % groupSize != 0 {
            throw QuantizationError.invalidParameter("groupSize", "\(groupSize) does not divide the row length \(columnCount)")
        }
        if case let .fraction(f)? = outliers, !(f > 0 && f < 1) {
            throw QuantizationError.invalidParameter("outliers", "fraction must be in (0, 1), got \(f)")
        }
        if case let .threshold(t)? = outliers, !(t > 0) {
            throw QuantizationError.invalidParameter("outliers", "threshold must be positive, got \(t)")
        }
        if let rotation, rotation.kind != "hadamard" {
            throw QuantizationError.invalidParameter("rotate", "only \"hadamard\" is supported, got \"\(rotation.kind)\"")
        }
    }
}
