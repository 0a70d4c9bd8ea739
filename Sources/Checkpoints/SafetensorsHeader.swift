import JSON
import LoquatSupport

/// One tensor entry of a safetensors header after validation. Offsets are relative to the
/// start of the data section (file offset `8 + headerByteCount + dataBegin`), end exclusive.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    /// The dtype string as written (`"F32"`); always one safetensors defines.
    public let dtypeName: String
    public let shape: [Int]
    public let dataBegin: Int
    public let dataEnd: Int

    public var byteCount: Int { dataEnd - dataBegin }
}

/// The parsed and validated header of a safetensors file (formats.md §1.1):
///
/// ```
/// offset 0    u64 LE N          header byte count (may include trailing space padding)
/// offset 8    N bytes           UTF-8 JSON object: name → {dtype, shape, data_offsets},
///                               optional "__metadata__": {string: string}
/// offset 8+N  data section      tensors back to back, no gaps, nothing after the last
/// ```
///
/// `parse` performs the reference reader's checks in its order (formats.md §1.3). Unlike the
/// reference (serde into a HashMap, last duplicate wins), duplicate keys are rejected, as the
/// format's README asks. Unknown fields inside a tensor entry are ignored, as the reference does.
public struct SafetensorsHeader: Sendable {
    /// `MAX_HEADER_SIZE` of the reference reader; also the JSON parser's size cap.
    public static let maximumByteCount = 100_000_000
    /// The u64 that precedes the header.
    public static let lengthPrefixByteCount = 8

    /// N: the header's byte count, padding included.
    public let headerByteCount: Int
    /// Entries sorted by `(dataBegin, dataEnd)`, ties in header order.
    public let entries: [SafetensorsEntry]
    /// The `__metadata__` map (empty when absent or null).
    public let metadata: [String: String]

    /// File offset of the data section.
    public var dataByteOffset: Int { Self.lengthPrefixByteCount + headerByteCount }

    /// Validates the first bytes of a file (`bytes` is the whole file). `path` only names the
    /// file in errors.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> SafetensorsHeader {
        // 1-3: the length prefix and the header's extent.
        guard bytes.count >= lengthPrefixByteCount else {
            throw SafetensorsError.headerTooSmall(path: path, fileByteCount: bytes.count)
        }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declared <= UInt64(maximumByteCount) else {
            throw SafetensorsError.headerTooLarge(path: path, headerByteCount: declared, limit: maximumByteCount)
        }
        let headerByteCount = Int(declared)
        guard lengthPrefixByteCount + headerByteCount <= bytes.count else {
            throw SafetensorsError.invalidHeaderLength(path: path, headerByteCount: headerByteCount, fileByteCount: bytes.count)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[lengthPrefixByteCount..<(lengthPrefixByteCount + headerByteCount)])

        // 4: UTF-8 (jansson would also refuse it, but less specifically).
        guard String(validatingUTF8Bytes: headerBytes) != nil else { throw SafetensorsError.headerNotUTF8(path: path) }

        // 5: JSON of the right shape.
        let root: JSONValue
        do {
            root = try JSON.parse(headerBytes, maximumByteCount: maximumByteCount)
        } catch let error as JSONError {
            throw SafetensorsError.invalidHeaderJSON(path: path, reason: error.description)
        }
        var (entries, metadata) = try decode(root, path: path)

        // 6: contiguous offsets and consistent sizes, in data-offset order.
        entries = entries.enumerated()
            .sorted { ($0.element.dataBegin, $0.element.dataEnd, $0.offset) < ($1.element.dataBegin, $1.element.dataEnd, $1.offset) }
            .map(\.element)
        var expectedBegin = 0
        for entry in entries {
            try validate(entry, expectedBegin: expectedBegin, path: path)
            expectedBegin = entry.dataEnd
        }

        // 7: the data section is covered exactly.
        let dataByteCount = bytes.count - lengthPrefixByteCount - headerByteCount
        guard expectedBegin == dataByteCount else {
            throw SafetensorsError.incompleteBuffer(path: path, dataEnd: expectedBegin, dataByteCount: dataByteCount)
        }
        return SafetensorsHeader(headerByteCount: headerByteCount, entries: entries, metadata: metadata)
    }

    /// Step 6 for one entry: offsets continue the previous tensor, the size does not overflow,
    /// fills whole bytes, and equals `end − begin`.
    private static func validate(_ entry: SafetensorsEntry, expectedBegin: Int, path: String) throws {
        guard entry.dataBegin == expectedBegin, entry.dataEnd >= entry.dataBegin else {
            throw SafetensorsError.invalidOffsets(path: path, tensor: entry.name, begin: entry.dataBegin,
                                                  end: entry.dataEnd, expectedBegin: expectedBegin)
        }
        // `decode` accepted only dtypes with a known bit count.
        let bitsPerElement = SafetensorsDTypes.bitCount(of: entry.dtypeName)!
        let overflow = SafetensorsError.sizeOverflow(path: path, tensor: entry.name, dtype: entry.dtypeName, shape: entry.shape)
        var elementCount = 1
        for dimension in entry.shape {
            let (product, overflowed) = elementCount.multipliedReportingOverflow(by: dimension)
            guard !overflowed else { throw overflow }
            elementCount = product
        }
        let (bitCount, overflowed) = elementCount.multipliedReportingOverflow(by: bitsPerElement)
        guard !overflowed else { throw overflow }
        guard bitCount % 8 == 0 else {
            throw SafetensorsError.misalignedSlice(path: path, tensor: entry.name, dtype: entry.dtypeName, shape: entry.shape)
        }
        guard entry.byteCount == bitCount / 8 else {
            throw SafetensorsError.byteCountMismatch(path: path, tensor: entry.name, dtype: entry.dtypeName, shape: entry.shape,
                                                     begin: entry.dataBegin, end: entry.dataEnd, expectedByteCount: bitCount / 8)
        }
    }

    // MARK: Step 5: the JSON shape

    private static func decode(_ root: JSONValue, path: String) throws -> ([SafetensorsEntry], [String: String]) {
        guard case let .object(object) = root else {
            throw SafetensorsError.invalidHeaderStructure(path: path, tensor: nil, reason: "expected an object, got \(root.typeName)")
        }
        var entries: [SafetensorsEntry] = []
        entries.reserveCapacity(object.count)
        var metadata: [String: String] = [:]
        for (key, value) in object {
            if key == "__metadata__" {
                metadata = try decodeMetadata(value, path: path)
            } else {
                entries.append(try decodeEntry(name: key, value, path: path))
            }
        }
        return (entries, metadata)
    }

    private static func decodeMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        // The reference reads `Option<HashMap<String, String>>`, so null means absent.
        if value.isNull { return [:] }
        guard case let .object(object) = value else {
            throw SafetensorsError.invalidHeaderStructure(path: path, tensor: "__metadata__",
                                                          reason: "expected an object of strings, got \(value.typeName)")
        }
        var metadata: [String: String] = [:]
        for (key, item) in object {
            guard case let .string(text) = item else {
                throw SafetensorsError.invalidHeaderStructure(path: path, tensor: "__metadata__",
                                                              reason: "value of \"\(key)\" must be a string, got \(item.typeName)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func decodeEntry(name: String, _ value: JSONValue, path: String) throws -> SafetensorsEntry {
        func failure(_ reason: String) -> SafetensorsError {
            .invalidHeaderStructure(path: path, tensor: name, reason: reason)
        }
        guard case let .object(fields) = value else { throw failure("expected an object, got \(value.typeName)") }
        guard let dtypeValue = fields["dtype"] else { throw failure("missing field \"dtype\"") }
        guard case let .string(dtypeName) = dtypeValue else { throw failure("\"dtype\" must be a string, got \(dtypeValue.typeName)") }
        guard let shapeValue = fields["shape"] else { throw failure("missing field \"shape\"") }
        guard let shape = naturalNumbers(shapeValue) else {
            throw failure("\"shape\" must be an array of non-negative integers, got \(describe(shapeValue))")
        }
        guard let offsetsValue = fields["data_offsets"] else { throw failure("missing field \"data_offsets\"") }
        guard let offsets = naturalNumbers(offsetsValue), offsets.count == 2 else {
            throw failure("\"data_offsets\" must be two non-negative integers [begin, end], got \(describe(offsetsValue))")
        }
        guard SafetensorsDTypes.bitCount(of: dtypeName) != nil else {
            throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        return SafetensorsEntry(name: name, dtypeName: dtypeName, shape: shape, dataBegin: offsets[0], dataEnd: offsets[1])
    }

    /// An array of JSON integer literals ≥ 0 (serde's `usize`: `2.0` and `-1` are refused).
    private static func naturalNumbers(_ value: JSONValue) -> [Int]? {
        guard case let .array(items) = value else { return nil }
        var numbers: [Int] = []
        numbers.reserveCapacity(items.count)
        for item in items {
            guard case let .integer(number) = item, number >= 0 else { return nil }
            numbers.append(Int(number))
        }
        return numbers
    }

    /// A short rendering of an offending value for messages.
    private static func describe(_ value: JSONValue) -> String {
        guard let bytes = try? JSON.serialize(value) else { return value.typeName }
        let text = String(decoding: bytes.prefix(80), as: UTF8.self)
        return bytes.count > 80 ? text + "…" : text
    }
}
