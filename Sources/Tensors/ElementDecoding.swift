import LoquatSupport

extension Tensor {
    /// Decodes a plain-dtype tensor to Float32, in element order. Integer dtypes are converted
    /// exactly where representable. GGUF block types are decoded by `Checkpoints`
    /// (`GGMLBlockCodec`), which owns their layouts; here they throw `unsupportedDType`.
    public func decodedFloat32() throws -> [Float] {
        let count = elementCount
        var output = [Float](repeating: 0, count: count)
        try output.withUnsafeMutableBufferPointer { destination in
            try decodePlain(into: destination)
        }
        return output
    }

    /// Decodes into caller-provided memory of exactly `elementCount` floats.
    public func decodePlain(into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(destination.count == elementCount)
        let source = storage.bytes
        let count = destination.count
        switch dtype {
        case .f32:
            if count > 0 { UnsafeMutableRawPointer(destination.baseAddress!).copyMemory(from: source.baseAddress!, byteCount: count * 4) }
        case .f16:
            for i in 0..<count { destination[i] = FloatFormats.float(fromHalfBits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in 0..<count { destination[i] = FloatFormats.float(fromBFloat16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .f64:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .f8E4M3:
            for i in 0..<count { destination[i] = FloatFormats.float(fromE4M3: source[i]) }
        case .f8E5M2:
            for i in 0..<count { destination[i] = FloatFormats.float(fromE5M2: source[i]) }
        case .i8:
            for i in 0..<count { destination[i] = Float(Int8(bitPattern: source[i])) }
        case .u8, .bool:
            for i in 0..<count { destination[i] = Float(source[i]) }
        case .i16:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .u16:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .i32:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .u32:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .i64:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .u64:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl:
            throw TensorError.unsupportedDType(name: name, dtype: dtype, operation: "plain decoding")
        }
    }

    /// Encodes Float32 values as a plain float dtype (F32, F16, BF16).
    public static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType) throws -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: values.count * dtype.blockByteCount)
        switch dtype {
        case .f32:
            writer.write(raw: UnsafeRawBufferPointer(values))
        case .f16:
            for value in values { writer.write(FloatFormats.halfBits(from: value)) }
        case .bf16:
            for value in values { writer.write(FloatFormats.bfloat16Bits(from: value)) }
        default:
            throw TensorError.unsupportedDType(name: "", dtype: dtype, operation: "encoding from Float32")
        }
        return writer.bytes
    }
}
