import LoquatSupport

/// Element types of tensors: the plain dtypes of safetensors and the block types of GGUF.
///
/// Block types store `blockSize` elements in `blockByteCount` bytes (formats.md §2.4); a plain
/// dtype is a block of one element.
public enum DType: String, Sendable, CaseIterable, Hashable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i8 = "I8", u8 = "U8", i16 = "I16", u16 = "U16", i32 = "I32", u32 = "U32", i64 = "I64", u64 = "U64"
    case bool = "BOOL"
    case f8E4M3 = "F8_E4M3", f8E5M2 = "F8_E5M2"
    // GGUF block types (ggml names).
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0"
    case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K"
    case iq4_nl = "IQ4_NL"

    /// Elements per block (1 for plain dtypes).
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return 256
        default: return 1
        }
    }

    /// Bytes per block.
    public var blockByteCount: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8E4M3, .f8E5M2: return 1
        case .q4_0, .iq4_nl: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q2_K: return 84
        case .q3_K: return 110
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        }
    }

    public var isBlockQuantized: Bool { blockSize > 1 }

    /// Plain floating-point dtypes that decode elementwise to Float32.
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .f8E4M3, .f8E5M2: return true
        default: return false
        }
    }

    /// Storage cost in bits per element.
    public var bitsPerElement: Double { Double(blockByteCount * 8) / Double(blockSize) }

    /// Name in a safetensors header; nil for GGUF-only block types.
    public var safetensorsName: String? { isBlockQuantized ? nil : rawValue }

    public init?(safetensorsName: String) {
        guard let dtype = DType(rawValue: safetensorsName), !dtype.isBlockQuantized else { return nil }
        self = dtype
    }

    /// Bytes needed for `elementCount` elements laid out as one row of blocks.
    /// Throws when the count is not a whole number of blocks or the size overflows.
    public func byteCount(elementCount: Int) throws -> Int {
        guard elementCount % blockSize == 0 else { throw TensorError.notWholeBlocks(dtype: self, elementCount: elementCount) }
        return try CheckedArithmetic.multiply(elementCount / blockSize, blockByteCount, "\(rawValue) byte count")
    }
}

