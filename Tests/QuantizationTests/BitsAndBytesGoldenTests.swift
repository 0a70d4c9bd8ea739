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
            let golden = try floats(file, "quant_map.\(quantType.rawValue)")
            XCTAssertEqual(bits(BitsAndBytesCodebook.of(quantType).values), bits(golden), quantType.rawValue)
        }
        XCTAssertEqual(bits(BitsAndBytesDynamicMap.signed), bits(try floats(file, "dynamic_map")))
    }

    func testEveryCaseIsBitIdentical() throws {
        let file = try goldens()
        let cases = try XCTUnwrap(file.metadata["cases"]).split(separator: ",").map(String.init)
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        var comparisons = 0
        for name in cases {
            let input = try file.requireTensor(named: "\(name).input")
            let (rows, columns) = try input.matrixShape()
            let matrix = Matrix(rowCount: rows, columnCount: columns, values: try input.decodedFloat32())
            let blockSize = try XCTUnwrap(Int(file.metadata["\(name).blocksize"] ?? ""))
            for quantType in BitsAndBytesQuantType.allCases {
                for doubleQuant in [false, true] {
                    let key = "\(name).\(quantType.rawValue).\(doubleQuant ? "dq" : "plain")"
                    let spec = QuantizationSpec(method: quantType == .nf4 ? .nf4 : .fp4, groupSize: blockSize, doubleQuant: doubleQuant)
                    let weight = try BitsAndBytesFourBit.quantizeFourBit(matrix, spec: spec)
                    XCTAssertEqual(weight.packedCodes, try bytes(file, "\(key).packed"), "\(key) packed codes")
                    switch weight.absmax {
                    case let .float32(absmax):
                        XCTAssertFalse(doubleQuant)
                        XCTAssertEqual(bits(absmax), bits(try floats(file, "\(key).absmax")), "\(key) absmax")
                    case let .doubleQuantized(nested):
                        XCTAssertTrue(doubleQuant)
                        XCTAssertEqual(nested.quantizedAbsmax, try bytes(file, "\(key).absmax"), "\(key) qabsmax")
                        XCTAssertEqual(bits(nested.nestedAbsmax), bits(try floats(file, "\(key).nested_absmax")), "\(key) nested absmax")
                        XCTAssertEqual(nested.offset.bitPattern, try floats(file, "\(key).offset").first?.bitPattern, "\(key) offset")
                    }
                    let dequantized = weight.dequantized().values
                    if file.contains("\(key).dequantized") {
                        XCTAssertEqual(bits(dequantized), bits(try floats(file, "\(key).dequantized")), "\(key) dequantized")
                    }
                    XCTAssertEqual(String(Self.checksum(dequantized)), file.metadata["\(key).dequantized_checksum"], "\(key) dequantized checksum")
                    comparisons += 1
                }
            }
        }
        XCTAssertEqual(comparisons, cases.count * 4)
    }

    /// Σ bits_i · (2i + 1) mod 2^64, as the generator computes it.
    static func checksum(_ values: [Float]) -> UInt64 {
        var sum: UInt64 = 0
        for (index, value) in values.enumerated() { sum &+= UInt64(value.bitPattern) &* (2 * UInt64(index) + 1) }
        return sum
    }
}

func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

func floats(_ file: SafetensorsFile, _ name: String) throws -> [Float] {
    try file.requireTensor(named: name).decodedFloat32()
}

func bytes(_ file: SafetensorsFile, _ name: String) throws -> [UInt8] {
    let tensor = try file.requireTensor(named: name)
    XCTAssertEqual(tensor.dtype, .u8, name)
    return Array(tensor.storage.bytes)
}
