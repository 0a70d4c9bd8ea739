import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// The codec against gguf-py goldens (Fixtures/gguf, made by Tests/Generators/gguf_goldens.py)
/// and the fast kernels against the scalar reference.
final class GGMLBlockCodecTests: XCTestCase {
    static let goldenTypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl,
                                       .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    func testDecodeMatchesGGUFPyBitForBitForEveryType() throws {
        let file = try GGUFFile(path: GGUFTestSupport.fixturePath("blocks.gguf"))
        for dtype in Self.goldenTypes {
            let tensor = try file.tensor(named: dtype.rawValue)
            XCTAssertEqual(tensor.dtype, dtype)
            let expected = try file.tensor(named: dtype.rawValue + ".dequantized").decodedFloat32()
            let fast = try GGMLBlockCodec.decode(tensor)
            let reference = try GGMLBlockCodec.decodeReference(tensor)
            XCTAssertEqual(fast.count, expected.count, "\(dtype)")
            XCTAssertEqual(GGUFTestSupport.bits(fast), GGUFTestSupport.bits(expected), "fast \(dtype)")
            XCTAssertEqual(GGUFTestSupport.bits(reference), GGUFTestSupport.bits(expected), "reference \(dtype)")
            // Row-range variant: rows 1..<3 of the three.
            let rowLength = tensor.shape[1]
            let rows = try GGMLBlockCodec.decode(tensor, rows: 1..<3)
            XCTAssertEqual(GGUFTestSupport.bits(rows), GGUFTestSupport.bits(Array(expected[rowLength...])), "rows \(dtype)")
        }
    }

    func testFastMatchesReferenceOnRandomBlocks() throws {
        for (index, dtype) in GGMLBlockCodec.blockTypes.enumerated() {
            // Enough blocks that the fast path splits the work across workers.
            let blockCount = 4096 * 32 / dtype.blockSize + 3
            let bytes = GGUFTestSupport.randomBytes(blockCount * dtype.blockByteCount, seed: UInt64(index + 1))
            let tensor = try Tensor(name: dtype.rawValue, dtype: dtype, shape: [blockCount, dtype.blockSize],
                                    storage: TensorStorage.bytes(bytes))
            let fast = try GGMLBlockCodec.decode(tensor)
            let reference = try GGMLBlockCodec.decodeReference(tensor)
            XCTAssertEqual(fast.count, reference.count)
            // Random f16 scales include NaN and infinity: compare NaN-ness, else bits.
            var mismatches = 0
            for (a, b) in zip(fast, reference) where !(a.isNaN && b.isNaN) && a.bitPattern != b.bitPattern {
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(dtype)")
        }
    }

    func testPlainTypesDecodeThroughTheSamePaths() throws {
        let values: [Float] = [0, -0.0, 1.5, -2.25, 65504, 1e-7, .infinity, -3]
        for dtype in [DType.f32, .f16, .bf16] {
            let bytes = try values.withUnsafeBufferPointer { try Tensor.encode($0, as: dtype) }
            let tensor = try Tensor(name: "x", dtype: dtype, shape: [2, 4], storage: TensorStorage.bytes(bytes))
            XCTAssertEqual(GGUFTestSupport.bits(try GGMLBlockCodec.decode(tensor)),
                           GGUFTestSupport.bits(try tensor.decodedFloat32()), "\(dtype)")
            XCTAssertEqual(GGUFTestSupport.bits(try GGMLBlockCodec.decodeReference(tensor)),
                           GGUFTestSupport.bits(try tensor.decodedFloat32()), "\(dtype)")
        }
        let integers = try Tensor(name: "i", dtype: .i32, shape: [3], storage: TensorStorage.bytes([1, 0, 0, 0, 255, 255, 255, 255, 7, 0, 0, 0]))
        XCTAssertEqual(try GGMLBlockCodec.decode(integers), [1, -1, 7])
    }

    func testEncodeMatchesGGUFPyBitForBit() throws {
        let file = try GGUFFile(path: GGUFTestSupport.fixturePath("quantize.gguf"))
        let input = try file.tensor(named: "input")
        let values = try input.decodedFloat32()
        for dtype in [DType.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .bf16] {
            let expected = Array(try file.tensor(named: dtype.rawValue).storage.bytes)
            let encoded = try GGMLBlockCodec.encode(values, rowCount: input.shape[0], columnCount: input.shape[1], as: dtype)
            XCTAssertEqual(encoded, expected, "\(dtype)")
            // Same bytes block by block, to point at the first differing block when it fails.
            let blockByteCount = dtype.blockByteCount
            for block in 0..<(encoded.count / blockByteCount) {
                let range = (block * blockByteCount)..<((block + 1) * blockByteCount)
                if encoded[range] != expected[range] {
                    XCTFail("\(dtype) block \(block) differs")
                    break
                }
            }
        }
    }

    func testQuantizationErrorIsWithinHalfAStep() throws {
        let values = GGUFTestSupport.randomFloats(32 * 64, seed: 7, scale: 3)
        for (dtype, steps) in [(DType.q8_0, Float(127)), (.q4_0, 8), (.q5_0, 16), (.q4_1, 15), (.q5_1, 31)] {
            let bytes = try GGMLBlockCodec.encode(values, rowCount: 64, columnCount: 32, as: dtype)
            let tensor = try Tensor(name: "q", dtype: dtype, shape: [64, 32], storage: TensorStorage.bytes(bytes))
            let decoded = try GGMLBlockCodec.decode(tensor)
            for block in 0..<64 {
                let slice = values[(32 * block)..<(32 * block + 32)]
                let range = slice.max()! - slice.min()!
                let amax = slice.map(abs).max()!
                let step = dtype == .q4_1 || dtype == .q5_1 ? range / steps : amax / steps
                for i in slice.indices {
                    // One step for the asymmetric clamp at the far end plus f16 rounding of d.
                    XCTAssertLessThanOrEqual(abs(decoded[i] - values[i]), step * 1.01 + 1e-6, "\(dtype) element \(i)")
                }
            }
        }
    }

    func testRejectsWhatItCannotDo() throws {
        XCTAssertThrowsError(try GGMLBlockCodec.encode([Float](repeating: 0, count: 256), rowCount: 1, columnCount: 256, as: .iq4_nl)) {
            XCTAssertEqual($0 as? TensorError, .unsupportedDType(name: "", dtype: .iq4_nl, operation: "GGML encoding"))
        }
        XCTAssertThrowsError(try GGMLBlockCodec.encode([Float](repeating: 0, count: 48), rowCount: 1, columnCount: 48, as: .q8_0)) {
            XCTAssertEqual($0 as? TensorError, .notWholeBlocks(dtype: .q8_0, elementCount: 48))
        }
        XCTAssertThrowsError(try GGMLBlockCodec.encode([1, 2, 3], rowCount: 2, columnCount: 2, as: .f32)) {
            XCTAssertEqual($0 as? GGMLBlockCodecError, .valueCountMismatch(valueCount: 3, rowCount: 2, columnCount: 2))
        }
        let tensor = Tensor(name: "m", shape: [2, 3], float32: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try GGMLBlockCodec.decode(tensor, rows: 1..<2), [4, 5, 6])
        XCTAssertThrowsError(try GGMLBlockCodec.decode(tensor, rows: 1..<3)) {
            XCTAssertEqual($0 as? GGMLBlockCodecError, .rowsOutOfRange(tensor: "m", rows: 1..<3, rowCount: 2))
        }
    }
}
