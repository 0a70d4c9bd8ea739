/// The non-tensor part of a bnb `QuantState`, stored in a checkpoint as the UTF-8 JSON of
/// `weight.quant_state.bitsandbytes__<type>` (bnb `QuantState.as_dict(packed=True)` →
/// `pack_dict_to_tensor`, i.e. Python `json.dumps` with default separators):
///
///     {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [576, 576]}
///
/// plus, with double quantization, `"nested_blocksize": 256, "nested_dtype": "float32",
/// "nested_offset": <float repr>` in that order.
public struct BitsAndBytesQuantState: Sendable, Equatable {
    public var quantType: BitsAndBytesQuantType
    public var blockSize: Int
    /// torch name of the weight's dtype before quantization.
    public var dtype: String
    public var shape: [Int]
    public var nestedBlockSize: Int?
    public var nestedDType: String?
    public var nestedOffset: Float?

    public init(quantType: BitsAndBytesQuantType, blockSize: Int, dtype: String, shape: [Int],
                nestedBlockSize: Int? = nil, nestedDType: String? = nil, nestedOffset: Float? = nil) {
        self.quantType = quantType
        self.blockSize = blockSize
        self.dtype = dtype
        self.shape = shape
        self.nestedBlockSize = nestedBlockSize
        self.nestedDType = nestedDType
        self.nestedOffset = nestedOffset
    }

    /// The JSON bytes bnb writes. The offset is Python's float repr of the float32 widened to
    /// double, which Swift's shortest round-trip `description` spells the same way.
    public var json: String {
        var text = "{\"quant_type\": \"\(quantType.rawValue)\", \"blocksize\": \(blockSize), \"dtype\": \"\(dtype)\", "
            + "\"shape\": [\(shape.map(String.init).joined(separator: ", "))]"
        if let nestedBlockSize, let nestedOffset {
            text += ", \"nested_blocksize\": \(nestedBlockSize), \"nested_dtype\": \"\(nestedDType ?? "float32")\", "
                + "\"nested_offset\": \(Double(nestedOffset).description)"
        }
        return text + "}"
    }

    /// Parses the flat JSON object bnb writes (any key order and spacing; unknown keys refused,
    /// as bnb's `from_dict` asserts).
    public init(json: String) throws {
        var parser = FlatJSONObjectParser(text: Array(json.utf8))
        let fields = try parser.parse()
        func field(_ key: String) -> FlatJSONObjectParser.Value? { fields.first { $0.key == key }?.value }
        func refuse(_ reason: String) -> QuantizationError { .invalidParameter("quant_state", reason) }
        let known: Set<String> = ["quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"]
        if let unknown = fields.first(where: { !known.contains($0.key) }) { throw refuse("unknown key \"\(unknown.key)\"") }
        guard case let .string(typeName)? = field("quant_type"), let quantType = BitsAndBytesQuantType(rawValue: typeName) else {
            throw refuse("quant_type must be \"nf4\" or \"fp4\"")
        }
        guard case let .number(blockSize)? = field("blocksize"), let blocks = Int(exactly: blockSize) else { throw refuse("blocksize must be an integer") }
        guard case let .string(dtype)? = field("dtype") else { throw refuse("dtype must be a string") }
        guard case let .numbers(shape)? = field("shape"), let dimensions = Optional(shape.compactMap { Int(exactly: $0) }),
              dimensions.count == shape.count, dimensions.allSatisfy({ $0 >= 0 }) else { throw refuse("shape must be a list of sizes") }
        self.init(quantType: quantType, blockSize: blocks, dtype: dtype, shape: dimensions)
        if let nested = field("nested_offset") {
            guard case let .number(offset) = nested, case let .number(nestedBlocks)? = field("nested_blocksize"),
                  let nestedBlockSize = Int(exactly: nestedBlocks) else { throw refuse("nested_offset needs a numeric offset and nested_blocksize") }
            if case let .string(nestedDType)? = field("nested_dtype") { self.nestedDType = nestedDType } else { self.nestedDType = "float32" }
            self.nestedOffset = Float(offset)
            self.nestedBlockSize = nestedBlockSize
        }
    }
}

/// Just enough JSON for a quant state: one object of strings, numbers, number lists and null.
struct FlatJSONObjectParser {
    enum Value: Equatable { case string(String), number(Double), numbers([Double]), null }
    let text: [UInt8]
    var position = 0

    mutating func parse() throws -> [(key: String, value: Value)] {
        var fields: [(key: String, value: Value)] = []
        try expect(UInt8(ascii: "{"))
        if peek() == UInt8(ascii: "}") { position += 1; return fields }
        repeat {
            let key = try string()
            try expect(UInt8(ascii: ":"))
            fields.append((key, try value()))
        } while try separator(closing: UInt8(ascii: "}"))
        skipSpace()
        guard position == text.count else { throw malformed("trailing characters") }
        return fields
    }

    private mutating func value() throws -> Value {
        switch peek() {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "["):
            position += 1
            var numbers: [Double] = []
            if peek() == UInt8(ascii: "]") { position += 1; return .numbers(numbers) }
            repeat { numbers.append(try number()) } while try separator(closing: UInt8(ascii: "]"))
            return .numbers(numbers)
        case UInt8(ascii: "n"):
            guard text[position...].starts(with: Array("null".utf8)) else { throw malformed("unexpected token") }
            position += 4
            return .null
        default: return .number(try number())
        }
    }

    private mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = position
        while position < text.count, text[position] != UInt8(ascii: "\"") {
            guard text[position] != UInt8(ascii: "\\") else { throw malformed("escapes are not expected in a quant state") }
            position += 1
        }
        guard position < text.count else { throw malformed("unterminated string") }
        position += 1
        return String(decoding: text[start..<(position - 1)], as: UTF8.self)
    }

    private mutating func number() throws -> Double {
        skipSpace()
        let start = position
        let allowed = Set("+-.0123456789eE".utf8)
        while position < text.count, allowed.contains(text[position]) { position += 1 }
        guard let value = Double(String(decoding: text[start..<position], as: UTF8.self)), value.isFinite else {
            throw malformed("expected a number")
        }
        return value
    }

    /// After an element: true on ",", false on `closing`.
    private mutating func separator(closing: UInt8) throws -> Bool {
        switch peek() {
        case UInt8(ascii: ","): position += 1; return true
        case closing: position += 1; return false
        default: throw malformed("expected , or \(Character(UnicodeScalar(closing)))")
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        guard peek() == byte else { throw malformed("expected \(Character(UnicodeScalar(byte)))") }
        position += 1
    }

    private mutating func peek() -> UInt8? {
        skipSpace()
        return position < text.count ? text[position] : nil
    }

    private mutating func skipSpace() {
        while position < text.count, [0x20, 0x09, 0x0A, 0x0D].contains(text[position]) { position += 1 }
    }

    private func malformed(_ reason: String) -> QuantizationError {
        .invalidParameter("quant_state", "malformed JSON at byte \(position): \(reason)")
    }
}
