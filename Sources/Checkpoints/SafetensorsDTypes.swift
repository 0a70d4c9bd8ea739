import Tensors

/// The dtype strings safetensors defines, as the reference Rust `Dtype` enum declares them
/// (formats.md §1.2). Declaration order is the enum's `Ord`, which the reference writer uses
/// to sort tensors (descending), so `writerRank` must follow it exactly:
///
/// ```
/// BOOL F4 F6_E2M3 F6_E3M2 U8 I8 F8_E5M2 F8_E4M3 F8_E8M0 F8_E4M3FNUZ F8_E5M2FNUZ
/// I16 U16 F16 BF16 I32 U32 F32 C64 F64 I64 U64
/// ```
///
/// Some of these have no Loquat `DType` (sub-byte MX floats, E8M0, FNUZ, C64): a file holding
/// them passes validation as in the reference reader and fails later with `unsupportedDType`.
enum SafetensorsDTypes {
    /// Name and bits per element, in the reference declaration order.
    static let declared: [(name: String, bitCount: Int)] = [
        ("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8),
        ("F8_E5M2", 8), ("F8_E4M3", 8), ("F8_E8M0", 8), ("F8_E4M3FNUZ", 8), ("F8_E5M2FNUZ", 8),
        ("I16", 16), ("U16", 16), ("F16", 16), ("BF16", 16),
        ("I32", 32), ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64), ("I64", 64), ("U64", 64),
    ]

    private static let bitCountByName: [String: Int] = Dictionary(uniqueKeysWithValues: declared.map { ($0.name, $0.bitCount) })
    private static let rankByName: [String: Int] = Dictionary(uniqueKeysWithValues: declared.enumerated().map { ($1.name, $0) })

    /// Bits per element of a safetensors dtype string; nil when safetensors does not define it.
    static func bitCount(of name: String) -> Int? { bitCountByName[name] }

    /// Position in the reference enum; the writer emits higher ranks first.
    static func writerRank(of dtype: DType) -> Int? {
        guard let name = dtype.safetensorsName else { return nil }
        return rankByName[name]
    }
}
