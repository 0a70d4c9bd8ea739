import Tensors

/// ggml tensor type ids (`enum ggml_type` in ggml `include/ggml.h`, formats.md §2.4) and their
/// mapping to `DType`. Only the ids Loquat can decode map to a `DType`; the others are known by
/// name so that an error can say what the file holds.
public enum GGUFTensorType {
    /// ggml type id of `dtype`, nil for dtypes GGUF cannot store (unsigned ints, F8, BOOL).
    public static func typeID(of dtype: DType) -> UInt32? {
        switch dtype {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q5_0: return 6
        case .q5_1: return 7
        case .q8_0: return 8
        case .q2_K: return 10
        case .q3_K: return 11
        case .q4_K: return 12
        case .q5_K: return 13
        case .q6_K: return 14
        case .iq4_nl: return 20
        case .i8: return 24
        case .i16: return 25
        case .i32: return 26
        case .i64: return 27
        case .f64: return 28
        case .bf16: return 30
        case .u8, .u16, .u32, .u64, .bool, .f8E4M3, .f8E5M2: return nil
        }
    }

    /// The `DType` for a ggml type id, nil when Loquat does not support it.
    public static func dtype(forTypeID typeID: UInt32) -> DType? {
        supportedByID[typeID]
    }

    /// ggml's name for a type id (`ggml_type_name`), nil for retired or unknown ids.
    public static func name(forTypeID typeID: UInt32) -> String? {
        if let dtype = supportedByID[typeID] { return dtype.rawValue }
        return otherNames[typeID]
    }

    private static let supportedByID: [UInt32: DType] = {
        var table: [UInt32: DType] = [:]
        for dtype in DType.allCases {
            if let id = typeID(of: dtype) { table[id] = dtype }
        }
        return table
    }()

    /// Valid ggml types that Loquat does not decode (activation types, i-quants, ternary, FP4).
    private static let otherNames: [UInt32: String] = [
        9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
        21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0",
        39: "MXFP4",
    ]

    /// `general.file_type` (`enum llama_ftype`) for a model whose 2-D weights are `dtype`.
    public static func fileType(forWeightType dtype: DType) -> UInt32? {
        switch dtype {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .q5_0: return 8
        case .q5_1: return 9
        case .bf16: return 32
        // K-quant files are named by their recipe; one K type throughout is the "_S" recipe.
        case .q2_K: return 10
        case .q3_K: return 11
        case .q4_K: return 14
        case .q5_K: return 16
        case .q6_K: return 18
        default: return nil
        }
    }
}
