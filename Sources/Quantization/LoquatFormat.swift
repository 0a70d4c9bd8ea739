import Tensors

/// One quantized weight in Loquat's own lossless file form (`model/save {format: "loquat"}`):
/// every stored number as a named tensor, bit for bit, plus integer and string attributes and
/// nested records for weights that wrap another (a rotated grid, a grid with outliers).
///
/// Rule: anything that affects `dequantized()` and is not an integer (scales, codebooks,
/// offsets, outlier values) lives in a tensor, never in text, so a reload is bit-identical.
/// The server stores the tensors in safetensors as `loquat:<layer>:<path>` and the rest in the
/// file's `__metadata__`.
public struct LoquatRecord: Sendable {
    /// The codec that wrote it (`LoquatEncodable.loquatFamily`).
    public var family: String
    public var rowCount: Int
    public var columnCount: Int
    public var spec: QuantizationSpec
    /// Part name → tensor. Names are short paths without `:` (e.g. `codes`, `absmax`).
    public var tensors: [String: Tensor]
    public var integers: [String: Int]
    public var strings: [String: String]
    /// Wrapped weights, by role (e.g. `grid`).
    public var children: [String: LoquatRecord]

    public init(family: String, rowCount: Int, columnCount: Int, spec: QuantizationSpec,
                tensors: [String: Tensor] = [:], integers: [String: Int] = [:], strings: [String: String] = [:],
                children: [String: LoquatRecord] = [:]) {
        self.family = family
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.spec = spec
        self.tensors = tensors
        self.integers = integers
        self.strings = strings
        self.children = children
    }

    /// The tensor `name`, or `LoquatFormatError.malformed`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let tensor = tensors[name] else {
            throw LoquatFormatError.malformed("a \(family) record lacks its \"\(name)\" tensor")
        }
        return tensor
    }

    public func integer(_ name: String) throws -> Int {
        guard let value = integers[name] else {
            throw LoquatFormatError.malformed("a \(family) record lacks the integer \"\(name)\"")
        }
        return value
    }

    public func child(_ role: String) throws -> LoquatRecord {
        guard let record = children[role] else {
            throw LoquatFormatError.malformed("a \(family) record lacks its nested \"\(role)\" weight")
        }
        return record
    }
}

/// A `QuantizedWeight` type that can be written to and read back from a `LoquatRecord` exactly.
/// Each family's conformance lives in `LoquatFormat<Family>.swift` and is listed in
/// `LoquatFormat.codecs`.
public protocol LoquatEncodable: QuantizedWeight {
    /// Stable name written to files; never reuse one for a different layout.
    static var loquatFamily: String { get }
    func loquatRecord() throws -> LoquatRecord
    init(loquatRecord: LoquatRecord) throws
}

public enum LoquatFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The weight's type has no codec (its family landed after the format, or is not lossless).
    case unsupported(typeName: String, method: String)
    /// A record names a family this build does not know.
    case unknownFamily(String)
    /// A record or its tensors do not hold what the family needs.
    case malformed(String)

    public var description: String {
        switch self {
        case let .unsupported(typeName, method):
            return "the loquat format has no codec for \(method) weights (\(typeName)); it holds "
                + LoquatFormat.supportedMethods.joined(separator: ", ")
        case let .unknownFamily(family):
            return "unknown quantized family \"\(family)\"; this build reads " + LoquatFormat.families.joined(separator: ", ")
        case let .malformed(reason):
            return reason
        }
    }
}

/// Encodes and decodes quantized weights through the family codecs.
public enum LoquatFormat {
    /// Version of the record layout, written beside every file.
    public static let version = 1

    /// Every codec this build has (one per concrete `QuantizedWeight` type).
    static var codecs: [any LoquatEncodable.Type] { LoquatFormatRegistry.codecs }

    public static var families: [String] { codecs.map { $0.loquatFamily } }

    /// Methods whose weights can be saved, as far as the codecs say (for error messages).
    public static var supportedMethods: [String] { LoquatFormatRegistry.methods }

    public static func canEncode(_ weight: any QuantizedWeight) -> Bool { weight is any LoquatEncodable }

    public static func encode(_ weight: any QuantizedWeight) throws -> LoquatRecord {
        guard let codable = weight as? any LoquatEncodable else {
            throw LoquatFormatError.unsupported(typeName: "\(type(of: weight))", method: weight.spec.method.rawValue)
        }
        var record = try codable.loquatRecord()
        record.family = type(of: codable).loquatFamily
        return record
    }

    public static func decode(_ record: LoquatRecord) throws -> any QuantizedWeight {
        guard let codec = codecs.first(where: { $0.loquatFamily == record.family }) else {
            throw LoquatFormatError.unknownFamily(record.family)
        }
        let weight = try codec.init(loquatRecord: record)
        guard weight.rowCount == record.rowCount, weight.columnCount == record.columnCount else {
            throw LoquatFormatError.malformed("a \(record.family) record of \(record.rowCount)×\(record.columnCount) decoded to \(weight.rowCount)×\(weight.columnCount)")
        }
        return weight
    }

    // MARK: Helpers for codecs

    /// A U8 tensor holding `bytes`.
    public static func bytesTensor(_ name: String, _ bytes: [UInt8]) -> Tensor {
        // A byte array always fills a 1-D U8 shape of its own length.
        try! Tensor(name: name, dtype: .u8, shape: [bytes.count], storage: .bytes(bytes))
    }

    /// An F32 tensor holding `values` bit for bit.
    public static func floatTensor(_ name: String, _ values: [Float]) -> Tensor {
        Tensor(name: name, shape: [values.count], float32: values)
    }

    /// The bytes of a U8 tensor.
    public static func bytes(of tensor: Tensor) throws -> [UInt8] {
        guard tensor.dtype == .u8 else { throw LoquatFormatError.malformed("\(tensor.name) is \(tensor.dtype.rawValue), expected U8") }
        return Array(tensor.storage.bytes)
    }

    /// The values of an F32 tensor, bit for bit.
    public static func floats(of tensor: Tensor, count: Int? = nil) throws -> [Float] {
        guard tensor.dtype == .f32 else { throw LoquatFormatError.malformed("\(tensor.name) is \(tensor.dtype.rawValue), expected F32") }
        if let count, tensor.elementCount != count {
            throw LoquatFormatError.malformed("\(tensor.name) holds \(tensor.elementCount) values, expected \(count)")
        }
        return try tensor.decodedFloat32()
    }
}
