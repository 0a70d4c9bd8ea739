import Checkpoints
import Foundation
import Tensors
import XCTest
@testable import Quantization

/// Bit-for-bit agreement with bitsandbytes 0.50.2 on the CPU: fixtures made by
/// Tests/Generators/bnb_goldens.py (see Tests/Generators/README-bnb.md).
final class BitsAndBytesGoldenTests: XCTestCase {
    static let fixturePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/bnb/goldens.safetensors").path

    private func goldens() throws -> SafetensorsFile { try SafetensorsFile(path: Self.fixturePath) }

    func testCodeTablesAreBitsandbytesTables() throws {
        let file = try goldens()
        for quantType in BitsAndBytesQuantType.allCases {
            let golden = try bnbFloats(file, "quant_map.\(quantType.rawValue)")
            XCTAssertEqual(bnbBits(BitsAndBytesCodebook.of(quantType).values), bnbBits(golden), quantType.rawValue)
        }
        XCTAssertEqual(bnbBits(BitsAndBytesDynamicMap.signed), bnbBits(try bnbFloats(file, "dynamic_map")))
    }

    func testEveryCaseIsBitIdentical() throws {
        let file = try goldens()
        let comparisons = try Self.forEachGolden(in: file) { key, matrix, spec in
            let doubleQuant = spec.doubleQuant
            let weight = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: spec)
            XCTAssertEqual(weight.packedCodes, try bnbBytes(file, "\(key).packed"), "\(key) packed codes")
            switch weight.absmax {
            case let .float32(absmax):
                XCTAssertFalse(doubleQuant)
                XCTAssertEqual(bnbBits(absmax), bnbBits(try bnbFloats(file, "\(key).absmax")), "\(key) absmax")
            case let .doubleQuantized(nested):
                XCTAssertTrue(doubleQuant)
                XCTAssertEqual(nested.quantizedAbsmax, try bnbBytes(file, "\(key).absmax"), "\(key) qabsmax")
                XCTAssertEqual(bnbBits(nested.nestedAbsmax), bnbBits(try bnbFloats(file, "\(key).nested_absmax")), "\(key) nested absmax")
                XCTAssertEqual(nested.offset.bitPattern, try bnbFloats(file, "\(key).offset").first?.bitPattern, "\(key) offset")
            }
            let dequantized = weight.dequantized().values
            if file.contains("\(key).dequantized") {
                XCTAssertEqual(bnbBits(dequantized), bnbBits(try bnbFloats(file, "\(key).dequantized")), "\(key) dequantized")
            }
            XCTAssertEqual(String(Self.checksum(dequantized)), file.metadata["\(key).dequantized_checksum"], "\(key) dequantized checksum")
        }
        XCTAssertEqual(comparisons, 9 * 4, "nine cases × nf4/fp4 × plain/dq")
    }

    /// torch's float32 mean (the DQ offset) with 1–4 threads on 100003 values; the probe is
    /// rebuilt from integers exactly as the generator builds it.
    func testTorchMeanMatchesTorchWithAnyThreadCount() throws {
        let file = try goldens()
        let probe = (0..<100_003).map { Float($0 * 7919 % 65521) / Float(65521) }
        for threads in 1...4 {
            let expected = try XCTUnwrap(file.metadata["mean_probe.threads\(threads)"].flatMap { UInt32($0, radix: 16) })
            let mean = probe.withUnsafeBufferPointer { BitsAndBytesDynamicMap.torchMean($0, torchThreadCount: threads) }
            XCTAssertEqual(mean.bitPattern, expected, "\(threads) threads")
        }
    }

    /// Calls `body(key, input, spec)` for every case × nf4/fp4 × plain/dq of the fixture, with
    /// `key` = `<case>.<type>.<plain|dq>`; returns how many.
    static func forEachGolden(in file: SafetensorsFile,
                              _ body: (String, Matrix<Float>, QuantizationSpec) throws -> Void) throws -> Int {
        let cases = try XCTUnwrap(file.metadata["cases"]).split(separator: ",").map(String.init)
        var count = 0
        for name in cases {
            let input = try file.requireTensor(named: "\(name).input")
            let (rows, columns) = try input.matrixShape()
            let matrix = Matrix(rowCount: rows, columnCount: columns, values: try input.decodedFloat32())
            let blockSize = try XCTUnwrap(Int(file.metadata["\(name).blocksize"] ?? ""))
            for quantType in BitsAndBytesQuantType.allCases {
                for doubleQuant in [false, true] {
                    let spec = QuantizationSpec(method: quantType == .nf4 ? .nf4 : .fp4, groupSize: blockSize, doubleQuant: doubleQuant)
                    try body("\(name).\(quantType.rawValue).\(doubleQuant ? "dq" : "plain")", matrix, spec)
                    count += 1
                }
            }
        }
        return count
    }

    /// Σ bits_i · (2i + 1) mod 2^64, as the generator computes it.
    static func checksum(_ values: [Float]) -> UInt64 {
        var sum: UInt64 = 0
        for (index, value) in values.enumerated() { sum &+= UInt64(value.bitPattern) &* (2 * UInt64(index) + 1) }
        return sum
    }
}

func bnbBits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

func bnbFloats(_ file: SafetensorsFile, _ name: String) throws -> [Float] {
    try file.requireTensor(named: name).decodedFloat32()
}

func bnbBytes(_ file: SafetensorsFile, _ name: String) throws -> [UInt8] {
    let tensor = try file.requireTensor(named: name)
    XCTAssertEqual(tensor.dtype, .u8, name)
    return Array(tensor.storage.bytes)
}
