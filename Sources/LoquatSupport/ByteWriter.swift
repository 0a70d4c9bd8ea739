/// Little-endian byte accumulation for file writers.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(reservingCapacity capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public var byteCount: Int { bytes.count }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Float) { write(value.bitPattern) }
    public mutating func write(_ value: Double) { write(value.bitPattern) }
    public mutating func write(bytes other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }
    public mutating func write(raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }
    public mutating func write(utf8 string: String) { bytes.append(contentsOf: string.utf8) }

    /// Appends `fill` until the length is a multiple of `alignment`.
    public mutating func pad(toMultipleOf alignment: Int, with fill: UInt8 = 0) {
        let remainder = bytes.count % alignment
        if remainder != 0 { bytes.append(contentsOf: repeatElement(fill, count: alignment - remainder)) }
    }
}
