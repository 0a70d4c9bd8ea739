import LoquatSupport
import Tensors

/// Errors of `GGMLBlockCodec` that `TensorError` has no words for.
public enum GGMLBlockCodecError: Error, CustomStringConvertible, Sendable, Equatable {
    case rowsOutOfRange(tensor: String, rows: Range<Int>, rowCount: Int)
    case valueCountMismatch(valueCount: Int, rowCount: Int, columnCount: Int)

    public var description: String {
        switch self {
        case let .rowsOutOfRange(tensor, rows, rowCount):
            return "tensor \(tensor): rows \(rows.lowerBound)..<\(rows.upperBound) are outside 0..<\(rowCount)"
        case let .valueCountMismatch(valueCount, rowCount, columnCount):
            return "\(valueCount) values do not fill \(rowCount)×\(columnCount)"
        }
    }
}

/// Decoding of ggml block types to Float32 and reference quantization to them, exactly as ggml
/// (`ggml/src/ggml-quants.c`: `dequantize_row_*`, `quantize_row_*_ref`) and gguf-py
/// (`gguf/quants.py`) do; layouts and formulas in formats.md §2.5–2.6.
///
/// A ggml row is the innermost dimension (the last of a PyTorch shape). Blocks never straddle
/// rows, so a tensor decodes as one run of blocks. Two decoders exist: the fast one (`decode`,
/// per-block kernels over raw pointers, parallel over blocks) and the scalar reference
/// (`decodeReference`, one element at a time straight from the formulas). They perform the same
/// Float32 operations in the same order and agree bit for bit; a test checks it.
public enum GGMLBlockCodec {
    /// Types `decode` accepts: every plain dtype plus these block types.
    public static let blockTypes: [DType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl]

    /// Types `encode` produces.
    public static let encodableTypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1,
                                                  .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// Elements per ggml row of `tensor` (its last dimension; 1 for a scalar).
    public static func rowLength(of tensor: Tensor) -> Int { tensor.shape.last ?? 1 }

    /// Number of ggml rows of `tensor` (product of all dimensions but the last).
    public static func rowCount(of tensor: Tensor) -> Int { tensor.shape.dropLast().reduce(1, *) }

    /// All elements of `tensor` as Float32, in row-major order.
    public static func decode(_ tensor: Tensor) throws -> [Float] {
        try decode(tensor, rows: 0..<rowCount(of: tensor))
    }

    /// The ggml rows `rows` of `tensor` (rows of its last dimension), as
    /// `rows.count · rowLength` Float32 values.
    public static func decode(_ tensor: Tensor, rows: Range<Int>) throws -> [Float] {
        let (bytes, elementCount) = try rowWindow(tensor, rows: rows)
        var output = [Float](repeating: 0, count: elementCount)
        try output.withUnsafeMutableBufferPointer { destination in
            try decode(bytes, dtype: tensor.dtype, into: destination, name: tensor.name)
        }
        return output
    }

    /// A 1-D or 2-D tensor as a Float32 matrix (1-D as one row).
    public static func decodeMatrix(_ tensor: Tensor) throws -> Matrix<Float> {
        let (rows, columns) = try tensor.matrixShape()
        return Matrix(rowCount: rows, columnCount: columns, values: try decode(tensor))
    }

    /// Fast path: decodes `destination.count` elements of `dtype` from `bytes`, in parallel over
    /// blocks. `bytes` must hold exactly that many elements.
    public static func decode(_ bytes: UnsafeRawBufferPointer, dtype: DType,
                              into destination: UnsafeMutableBufferPointer<Float>, name: String = "") throws {
        let blockCount = try checkedBlockCount(byteCount: bytes.count, elementCount: destination.count,
                                               dtype: dtype, name: name)
        guard blockCount > 0 else { return }
        guard let kernel = kernel(for: dtype) else {
            // Integer and F64/F8 plain types: elementwise through `Tensors`.
            let plain = try Tensor(name: name, dtype: dtype, shape: [destination.count],
                                   storage: TensorStorage(copying: bytes))
            try plain.decodePlain(into: destination)
            return
        }
        let source = bytes.baseAddress!
        let target = destination.baseAddress!
        let blockByteCount = dtype.blockByteCount
        let blockSize = dtype.blockSize
        Parallel.forEachChunk(blockCount, minimumChunk: max(1, 16_384 / blockSize)) { blocks in
            kernel(source + blocks.lowerBound * blockByteCount, blocks.count,
                   target + blocks.lowerBound * blockSize)
        }
    }

    /// Scalar reference decoding of the whole tensor.
    public static func decodeReference(_ tensor: Tensor) throws -> [Float] {
        try decodeReference(tensor.storage.bytes, dtype: tensor.dtype, elementCount: tensor.elementCount,
                            name: tensor.name)
    }

    /// Scalar reference: each element computed on its own from the formats.md §2.5 formula.
    public static func decodeReference(_ bytes: UnsafeRawBufferPointer, dtype: DType, elementCount: Int,
                                       name: String = "") throws -> [Float] {
        _ = try checkedBlockCount(byteCount: bytes.count, elementCount: elementCount, dtype: dtype, name: name)
        guard elementCount > 0 else { return [] }
        guard let element = referenceElement(for: dtype) else {
            let plain = try Tensor(name: name, dtype: dtype, shape: [elementCount], storage: TensorStorage(copying: bytes))
            return try plain.decodedFloat32()
        }
        let base = bytes.baseAddress!
        let blockSize = dtype.blockSize
        let blockByteCount = dtype.blockByteCount
        return (0..<elementCount).map { index in
            element(base + (index / blockSize) * blockByteCount, index % blockSize)
        }
    }

    /// The bytes holding `rows` of `tensor`, and their element count.
    static func rowWindow(_ tensor: Tensor, rows: Range<Int>) throws -> (UnsafeRawBufferPointer, Int) {
        let rowCount = rowCount(of: tensor)
        guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
            throw GGMLBlockCodecError.rowsOutOfRange(tensor: tensor.name, rows: rows, rowCount: rowCount)
        }
        let rowLength = rowLength(of: tensor)
        guard rowLength % tensor.dtype.blockSize == 0 else {
            throw TensorError.notWholeBlocks(dtype: tensor.dtype, elementCount: rowLength)
        }
        let rowByteCount = rowLength / tensor.dtype.blockSize * tensor.dtype.blockByteCount
        let bytes = tensor.storage.bytes
        let window = rows.isEmpty
            ? UnsafeRawBufferPointer(start: nil, count: 0)
            : UnsafeRawBufferPointer(rebasing: bytes[(rows.lowerBound * rowByteCount)..<(rows.upperBound * rowByteCount)])
        return (window, rows.count * rowLength)
    }

    static func checkedBlockCount(byteCount: Int, elementCount: Int, dtype: DType, name: String) throws -> Int {
        let expected = try dtype.byteCount(elementCount: elementCount)
        guard expected == byteCount else {
            throw TensorError.byteCountMismatch(name: name, expected: expected, actual: byteCount)
        }
        return elementCount / dtype.blockSize
    }

    /// Little-endian binary16 at `offset`, as Float32.
    @inline(__always)
    static func half(_ pointer: UnsafeRawPointer, _ offset: Int) -> Float {
        FloatFormats.float(fromHalfBits: UInt16(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// The IQ4_NL non-linear 4-bit codebook (`kvalues_iq4nl` in ggml `ggml-common.h`).
    static let iq4nlValues: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
}
