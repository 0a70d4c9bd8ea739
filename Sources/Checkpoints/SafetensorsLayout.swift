import Tensors

/// Where each tensor goes in a safetensors file, and the header bytes, exactly as the reference
/// writer (`safetensors::tensor::prepare`, formats.md §1.4) lays them out:
///
/// 1. tensors sorted by dtype rank descending (the Rust `Dtype` declaration order, see
///    `SafetensorsDTypes`), then by name as UTF-8 bytes ascending;
/// 2. contiguous `data_offsets` from 0 in that order;
/// 3. the header as serde_json prints it: compact, `__metadata__` first, then the tensors in
///    order, each `{"dtype":…,"shape":[…],"data_offsets":[b,e]}`; strings escape only `"`,
///    `\`, and control characters (`\b \t \n \f \r`, others `\u00xx` in lower-case hex);
/// 4. padded with spaces to a multiple of 8, so every tensor starts at a file offset that is a
///    multiple of its element size.
///
/// The reference serialises `__metadata__` from a HashMap (random order); we sort its keys by
/// UTF-8 bytes, which is the same for the usual single `format` key and deterministic otherwise.
public struct SafetensorsLayout: Sendable {
    /// Tensors in file order.
    public let tensors: [Tensor]
    /// `data_offsets[0]` of each tensor, parallel to `tensors`.
    public let dataBegins: [Int]
    /// The header, padding included (N = `header.count`).
    public let header: [UInt8]
    /// Sum of the tensors' byte counts.
    public let dataByteCount: Int

    /// Total size of the file: 8 + N + data.
    public var fileByteCount: Int { SafetensorsHeader.lengthPrefixByteCount + header.count + dataByteCount }

    /// Lays out `tensors` with `metadata`; `path` only names the file in errors.
    public init(tensors: [Tensor], metadata: [String: String], path: String) throws {
        var seen = Set<String>()
        var ranked: [(rank: Int, tensor: Tensor)] = []
        ranked.reserveCapacity(tensors.count)
        for tensor in tensors {
            guard seen.insert(tensor.name).inserted else { throw SafetensorsError.duplicateTensorName(path: path, tensor: tensor.name) }
            guard let rank = SafetensorsDTypes.writerRank(of: tensor.dtype) else {
                throw SafetensorsError.unsupportedDType(path: path, tensor: tensor.name, dtype: tensor.dtype.rawValue)
            }
            ranked.append((rank, tensor))
        }
        ranked.sort { left, right in
            if left.rank != right.rank { return left.rank > right.rank }
            return left.tensor.name.utf8.lexicographicallyPrecedes(right.tensor.name.utf8)
        }
        self.tensors = ranked.map(\.tensor)

        var text: [UInt8] = []
        text.reserveCapacity(64 + tensors.count * 96)
        text.append(UInt8(ascii: "{"))
        if !metadata.isEmpty {
            Self.appendString("__metadata__", to: &text)
            text.append(contentsOf: Array(":{".utf8))
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (position, key) in keys.enumerated() {
                if position > 0 { text.append(UInt8(ascii: ",")) }
                Self.appendString(key, to: &text)
                text.append(UInt8(ascii: ":"))
                Self.appendString(metadata[key]!, to: &text)
            }
            text.append(UInt8(ascii: "}"))
        }
        var offset = 0
        var begins: [Int] = []
        begins.reserveCapacity(tensors.count)
        for (position, tensor) in self.tensors.enumerated() {
            if position > 0 || !metadata.isEmpty { text.append(UInt8(ascii: ",")) }
            Self.appendString(tensor.name, to: &text)
            text.append(contentsOf: Array(":{\"dtype\":".utf8))
            Self.appendString(tensor.dtype.rawValue, to: &text)
            text.append(contentsOf: Array(",\"shape\":[".utf8))
            text.append(contentsOf: Array(tensor.shape.map(String.init).joined(separator: ",").utf8))
            let end = offset + tensor.byteCount
            text.append(contentsOf: Array("],\"data_offsets\":[\(offset),\(end)]}".utf8))
            begins.append(offset)
            offset = end
        }
        text.append(UInt8(ascii: "}"))
        let remainder = text.count % 8
        if remainder != 0 { text.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 8 - remainder)) }
        guard text.count <= SafetensorsHeader.maximumByteCount else {
            throw SafetensorsError.headerTooLarge(path: path, headerByteCount: UInt64(text.count), limit: SafetensorsHeader.maximumByteCount)
        }
        self.header = text
        self.dataBegins = begins
        self.dataByteCount = offset
    }

    /// The 8-byte little-endian N.
    public var lengthPrefix: [UInt8] {
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
    }

    /// A JSON string literal as serde_json writes it.
    static func appendString(_ string: String, to output: inout [UInt8]) {
        let hexDigits = Array("0123456789abcdef".utf8)
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
            case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x00..<0x20:
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
