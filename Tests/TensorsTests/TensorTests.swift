import Foundation
import XCTest
@testable import Tensors

final class TensorTests: XCTestCase {
    func testBlockGeometryMatchesGGML() throws {
        XCTAssertEqual(DType.q4_0.blockByteCount, 18)
        XCTAssertEqual(DType.q6_K.blockSize, 256)
        XCTAssertEqual(DType.q4_K.bitsPerElement, 4.5)
        XCTAssertEqual(try DType.q8_0.byteCount(elementCount: 64), 68)
        XCTAssertThrowsError(try DType.q8_0.byteCount(elementCount: 33))
        XCTAssertNil(DType(safetensorsName: "Q4_0"), "block types are not safetensors dtypes")
        XCTAssertEqual(DType(safetensorsName: "BF16"), .bf16)
    }

    func testTensorValidatesItsByteCount() {
        XCTAssertThrowsError(try Tensor(name: "w", dtype: .f32, shape: [2, 2], storage: .bytes([0, 0, 0, 0]))) { error in
            XCTAssertEqual(error as? TensorError, .byteCountMismatch(name: "w", expected: 16, actual: 4))
        }
        XCTAssertThrowsError(try Tensor(name: "w", dtype: .f32, shape: [Int.max, 4], storage: .bytes([])))
        XCTAssertNoThrow(try Tensor(name: "empty", dtype: .f32, shape: [0, 5], storage: .bytes([])))
    }

    func testPlainDecodingOfEveryDType() throws {
        func tensor(_ dtype: DType, _ bytes: [UInt8], _ count: Int) throws -> [Float] {
            try Tensor(name: "t", dtype: dtype, shape: [count], storage: .bytes(bytes)).decodedFloat32()
        }
        XCTAssertEqual(try tensor(.f16, [0x00, 0x3C, 0x00, 0xC0], 2), [1, -2])
        XCTAssertEqual(try tensor(.bf16, [0x80, 0x3F], 1), [1])
        XCTAssertEqual(try tensor(.i8, [0xFF, 0x05], 2), [-1, 5])
        XCTAssertEqual(try tensor(.i64, [0xFE] + [UInt8](repeating: 0xFF, count: 7), 1), [-2])
        XCTAssertEqual(try tensor(.f8E4M3, [0x38], 1), [1])
        XCTAssertThrowsError(try tensor(.q8_0, [UInt8](repeating: 0, count: 34), 32))
        let values: [Float] = [0.1, -3, 65504, 1e-8]
        let f16 = try values.withUnsafeBufferPointer { try Tensor.encode($0, as: .f16) }
        XCTAssertEqual(try tensor(.f16, f16, 4), values.map { Float(Float16($0)) })
    }

    func testMatrixAndParallelChunks() {
        let matrix = Matrix<Float>(rowCount: 2, columnCount: 3, values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(matrix.transposed.values, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(matrix.transposed.transposed, matrix)
        XCTAssertEqual(matrix.frobeniusNorm, (91.0).squareRoot(), accuracy: 1e-12)
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        Parallel.forEach(1000) { counts[$0] += 1 }
        XCTAssertTrue(counts.allSatisfy { $0 == 1 }, "every index exactly once")
    }
}
