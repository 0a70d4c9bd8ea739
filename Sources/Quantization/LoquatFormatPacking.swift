import Tensors

/// Bit packing and typed tensors for the loquat codecs.
extension LoquatFormat {
    /// Packs `bits`-bit codes (each < 2^bits) into a little-endian bit stream: code `i` takes
    /// stream bits `bits·i …` upward, byte `k` holds stream bits `8k…8k+7` (LSB first), the last
    /// byte zero-padded. `bits == 8` is the codes themselves.
    public static func packCodes(_ codes: [UInt8], bits: Int) -> [UInt8] {
        precondition((1...8).contains(bits))
        if bits == 8 { return codes }
        var packed = [UInt8](repeating: 0, count: (codes.count * bits + 7) / 8)
        let mask = UInt16((1 << bits) - 1)
        var bitPosition = 0
        for code in codes {
            let value = UInt16(code) & mask
            let byte = bitPosition >> 3, shift = bitPosition & 7
            let shifted = value << shift
            packed[byte] |= UInt8(truncatingIfNeeded: shifted)
            if shift + bits > 8 { packed[byte + 1] |= UInt8(truncatingIfNeeded: shifted >> 8) }
            bitPosition += bits
        }
        return packed
    }

    /// The inverse of `packCodes`; the byte count must be exactly what `count` codes need.
    public static func unpackCodes(_ packed: [UInt8], bits: Int, count: Int) throws -> [UInt8] {
        guard (1...8).contains(bits), count >= 0 else { throw LoquatFormatError.malformed("cannot unpack \(bits)-bit codes") }
        let expected = (count * bits + 7) / 8
        guard packed.count == expected else {
            throw LoquatFormatError.malformed("\(count) codes of \(bits) bits need \(expected) bytes, found \(packed.count)")
        }
        if bits == 8 { return packed }
        var codes = [UInt8](repeating: 0, count: count)
        let mask = UInt16((1 << bits) - 1)
        var bitPosition = 0
        for index in 0..<count {
            let byte = bitPosition >> 3, shift = bitPosition & 7
            var window = UInt16(packed[byte])
            if shift + bits > 8 { window |= UInt16(packed[byte + 1]) << 8 }
            codes[index] = UInt8((window >> shift) & mask)
            bitPosition += bits
        }
        return codes
    }

    /// An I32 tensor holding `values` (little-endian).
    public static func int32Tensor(_ name: String, _ values: [Int32]) -> Tensor {
        let bytes = values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        // 4 bytes per element always fill the shape.
        return try! Tensor(name: name, dtype: .i32, shape: [values.count], storage: .bytes(bytes))
    }

    /// The values of an I32 tensor.
    public static func int32s(of tensor: Tensor, count: Int? = nil) throws -> [Int32] {
        guard tensor.dtype == .i32 else { throw LoquatFormatError.malformed("\(tensor.name) is \(tensor.dtype.rawValue), expected I32") }
        if let count, tensor.elementCount != count {
            throw LoquatFormatError.malformed("\(tensor.name) holds \(tensor.elementCount) values, expected \(count)")
        }
        let bytes = tensor.storage.bytes
        return (0..<tensor.elementCount).map { Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
    }
}
