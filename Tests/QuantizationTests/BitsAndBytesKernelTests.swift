import Tensors
import TestSupport
import XCTest
@testable import Quantization

/// The fast paths equal the scalar reference bit for bit; shapes, round trips, storage and
/// refusals of bitsandbytes 4-bit quantization.
final class BitsAndBytesKernelTests: XCTestCase {
    /// Uniform values with a zero block, a tiny block and an outlier, so that every branch of the
    /// kernels is taken.
    private func awkwardMatrix(_ rows: Int, _ columns: Int, seed: UInt64) -> Matrix<Float> {
        var matrix: Matrix<Float> = RandomMatrices.uniform(rows, columns, seed: seed)
        let count = matrix.values.count
        for index in 0..<min(count, 64) { matrix.values[index] = 0 }
        for index in min(count, 64)..<min(count, 96) { matrix.values[index] *= 1e-30 }
        if count > 200 { matrix.values[200] = 50 }
        return matrix
    }

    func testFastQuantizeAndDequantizeEqualTheReference() throws {
        // 256×256 spreads 64-blocks over both workers; the others are ragged and odd.
        let shapes = [(256, 256), (33, 70), (3, 1000), (17, 129), (1, 31)]
        var checked = 0
        for (rows, columns) in shapes {
            let matrix = awkwardMatrix(rows, columns, seed: UInt64(rows * 1000 + columns))
            for blockSize in [32, 64, 128, 256, 4096] {
                for quantType in BitsAndBytesQuantType.allCases {
                    let spec = QuantizationSpec(method: quantType == .nf4 ? .nf4 : .fp4, groupSize: blockSize)
                    let weight = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: spec)
                    let reference = BitsAndBytesReference.quantize(matrix.values, blockSize: blockSize, quantType: quantType)
                    XCTAssertEqual(weight.packedCodes, reference.packed, "\(rows)×\(columns) B\(blockSize) \(quantType)")
                    XCTAssertEqual(weight.floatAbsmax().map(\.bitPattern), reference.absmax.map(\.bitPattern))
                    let expected = BitsAndBytesReference.dequantize(packed: reference.packed, absmax: reference.absmax,
                                                                    count: matrix.values.count, blockSize: blockSize,
                                                                    quantMap: BitsAndBytesCodebook.of(quantType).values)
                    XCTAssertEqual(weight.dequantized().values.map(\.bitPattern), expected.map(\.bitPattern))
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, shapes.count * 5 * 2)
    }

    func testDequantizeIntoAnyMemoryAndLargeOutputs() throws {
        // 4.4 MB of output takes the huge-page path; the odd offset takes the unaligned path.
        let matrix: Matrix<Float> = RandomMatrices.uniform(1100, 1001, seed: 12)
        let weight = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: QuantizationSpec(method: .fp4, groupSize: 128))
        let expected = BitsAndBytesReference.dequantize(packed: weight.packedCodes, absmax: weight.floatAbsmax(),
                                                        count: matrix.values.count, blockSize: 128, quantMap: weight.quantMap)
        XCTAssertEqual(weight.dequantized().values.map(\.bitPattern), expected.map(\.bitPattern))
        var storage = [Float](repeating: .nan, count: matrix.values.count + 1)
        storage.withUnsafeMutableBufferPointer { buffer in
            weight.dequantize(into: UnsafeMutableBufferPointer(rebasing: buffer[1...]))
        }
        XCTAssertEqual(storage.dropFirst().map(\.bitPattern), expected.map(\.bitPattern))
    }

    func testCodeRuleOnMidpoints() {
        for quantType in BitsAndBytesQuantType.allCases {
            let codebook = BitsAndBytesCodebook.of(quantType)
            let sorted = codebook.sortedCodes
            for (position, midpoint) in codebook.midpoints.enumerated() {
                XCTAssertEqual(codebook.code(forScaled: midpoint), sorted[position], "a tie stays low")
                XCTAssertEqual(codebook.code(forScaled: midpoint.nextUp), sorted[position + 1], "strictly greater goes up")
            }
            XCTAssertEqual(codebook.code(forScaled: -1), sorted[0])
            XCTAssertEqual(codebook.code(forScaled: 1), sorted[15])
        }
        XCTAssertEqual(BitsAndBytesCodebook.nf4.zeroCode, 7)
        XCTAssertEqual(BitsAndBytesCodebook.fp4.zeroCode, 0)
        XCTAssertEqual(BitsAndBytesCodebook.fp4.code(forScaled: 1e-3), 8, "bnb's CPU argsort order")
    }

    func testOddShapesRoundTrip() throws {
        // 259 elements: a ragged last block and an odd count (one pad nibble).
        let matrix: Matrix<Float> = RandomMatrices.uniform(7, 37, seed: 3)
        for quantType in BitsAndBytesQuantType.allCases {
            for doubleQuant in [false, true] {
                let spec = QuantizationSpec(method: quantType == .nf4 ? .nf4 : .fp4, doubleQuant: doubleQuant)
                let weight = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: spec)
                XCTAssertEqual(weight.packedCodes.count, 130)
                XCTAssertEqual(weight.blockCount, 5)
                XCTAssertEqual(weight.packedCodes.last! & 0x0F, BitsAndBytesCodebook.of(quantType).zeroCode, "pad nibble")
                let dequantized = weight.dequantized()
                XCTAssertEqual(dequantized.shape, [7, 37])
                // Requantizing the dequantized matrix reproduces it (block maxima survive exactly).
                let again = try BitsAndBytesFourBit.quantizeFourBit(dequantized, spec: QuantizationSpec(method: spec.method))
                XCTAssertEqual(again.dequantized().values.map(\.bitPattern), dequantized.values.map(\.bitPattern))
                if quantType == .nf4 && !doubleQuant { XCTAssertEqual(again.packedCodes, weight.packedCodes) }
            }
        }
    }

    func testStorageBitCount() throws {
        let matrix: Matrix<Float> = RandomMatrices.uniform(64, 64, seed: 9)
        let plain = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: QuantizationSpec(method: .nf4))
        // 4096 codes in 2048 bytes, 64 float32 absmax, the 16-float table.
        XCTAssertEqual(plain.storageBitCount, 2048 * 8 + 64 * 32 + 16 * 32)
        XCTAssertEqual(plain.bitsPerWeight, 4.625)
        let nested = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: QuantizationSpec(method: .nf4, doubleQuant: true))
        // + 64 uint8 qabsmax, one nested absmax, the offset and the 256-float dynamic map.
        XCTAssertEqual(nested.storageBitCount, 2048 * 8 + 64 * 8 + 32 + 32 + 16 * 32 + 256 * 32)
        XCTAssertEqual(nested.spec, QuantizationSpec(method: .nf4, groupSize: 64, doubleQuant: true))
    }

    func testBadInputIsRefusedClearly() {
        let matrix: Matrix<Float> = RandomMatrices.uniform(4, 96, seed: 1)
        for groupSize in [48, 96, 16, 8192, 0] {
            XCTAssertThrowsError(try Quantizer.quantize(matrix, name: "l", spec: QuantizationSpec(method: .nf4, groupSize: groupSize))) { error in
                XCTAssertEqual((error as? QuantizationError)?.parameter, "groupSize", "groupSize \(groupSize)")
            }
        }
        XCTAssertThrowsError(try BitsAndBytesFourBit.quantize(matrix, spec: QuantizationSpec(method: .fp4, bits: 3))) { error in
            XCTAssertEqual((error as? QuantizationError)?.parameter, "bits")
        }
        XCTAssertThrowsError(try BitsAndBytesFourBit.quantize(Matrix<Float>(zeros: 0, 64), spec: QuantizationSpec(method: .nf4)))
        var poisoned = matrix
        poisoned[2, 5] = .infinity
        XCTAssertThrowsError(try Quantizer.quantize(poisoned, name: "layer", spec: QuantizationSpec(method: .nf4))) { error in
            XCTAssertEqual(error as? QuantizationError, .nonFiniteWeight(layer: "layer", row: 2, column: 5))
        }
        XCTAssertThrowsError(try BitsAndBytesFourBitWeight(rowCount: 2, columnCount: 64, quantType: .nf4, blockSize: 64,
                                                           packedCodes: [0], absmax: .float32([1, 1])))
    }

    func testQuantizerDispatchesToThisFamily() throws {
        XCTAssertTrue(Quantizer.isImplemented(.nf4) && Quantizer.isImplemented(.fp4))
        let matrix: Matrix<Float> = RandomMatrices.uniform(8, 64, seed: 2)
        let weight = try Quantizer.quantize(matrix, name: "l", spec: QuantizationSpec(method: .fp4, doubleQuant: true))
        XCTAssertTrue(weight is BitsAndBytesFourBitWeight)
        XCTAssertEqual(weight.spec.method, .fp4)
    }
}
