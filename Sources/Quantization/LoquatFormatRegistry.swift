/// The codecs of the loquat format, one per concrete `QuantizedWeight` type. A family's codec
/// (`LoquatFormat<Family>.swift`) is listed here when it lands; a weight without one is refused
/// by `model/save {format: "loquat"}` with the list below.
enum LoquatFormatRegistry {
    static let codecs: [any LoquatEncodable.Type] = [GroupedGridWeight.self, BitsAndBytesFourBitWeight.self, RotatedWeight.self, OutlierWeight.self]

    /// Method names the codecs cover (with or without rotate/outliers), for messages.
    static let methods: [String] = ["nf4", "fp4", "int", "nf", "fp8", "hqq", "gptq"]
}
