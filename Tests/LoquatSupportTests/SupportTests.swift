import Foundation
import XCTest
@testable import LoquatSupport

final class SupportTests: XCTestCase {
    func testCheckedArithmeticRefusesOverflowAndNegatives() {
        XCTAssertThrowsError(try CheckedArithmetic.multiply(Int.max / 2, 3, "x"))
        XCTAssertThrowsError(try CheckedArithmetic.add(Int.max, 1, "x"))
        XCTAssertThrowsError(try CheckedArithmetic.multiply(-1, 3, "x"))
        XCTAssertThrowsError(try CheckedArithmetic.int(UInt64.max, "x"))
        XCTAssertEqual(try CheckedArithmetic.product([], "scalar"), 1)
        XCTAssertEqual(try CheckedArithmetic.alignUp(33, to: 32), 64)
    }

    func testByteReaderIsBoundedAndLittleEndian() throws {
        let bytes: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0xFF, 0x61, 0x62]
        try bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            XCTAssertEqual(try reader.readUInt32(), 0x0403_0201)
            XCTAssertEqual(try reader.readInt8(), -1)
            XCTAssertThrowsError(try reader.readUInt32("field")) { error in
                let problem = error as! ByteReaderError
                XCTAssertEqual(problem.offset, 5)
                XCTAssertEqual(problem.availableByteCount, 2)
                XCTAssertTrue(problem.description.contains("field"))
            }
            XCTAssertEqual(try reader.readUTF8(2), "ab")
            XCTAssertThrowsError(try reader.readBytes(-1))
        }
        try [UInt8]([0xC3, 0x28]).withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            XCTAssertThrowsError(try reader.readUTF8(2), "invalid UTF-8 is an error, not U+FFFD")
        }
    }

    func testNarrowFloatFormats() {
        XCTAssertEqual(FloatFormats.float(fromHalfBits: 0x3C00), 1)
        XCTAssertEqual(FloatFormats.halfBits(from: 65520), 0x7C00, "rounds to infinity past the largest half")
        XCTAssertEqual(FloatFormats.bfloat16Bits(from: 1.00390625), 0x3F80, "a tie rounds to even")
        XCTAssertEqual(FloatFormats.bfloat16Bits(from: 1.01171875), 0x3F82)
        XCTAssertEqual(FloatFormats.bfloat16Bits(from: .nan) & 0x7FC0, 0x7FC0, "NaN stays a quiet NaN")
        XCTAssertEqual(FloatFormats.float(fromE4M3: 0x7E), 448)
        XCTAssertTrue(FloatFormats.float(fromE4M3: 0x7F).isNaN)
        XCTAssertEqual(FloatFormats.float(fromE4M3: 0x01), 1.0 / 512, "smallest subnormal 2^-9")
        XCTAssertEqual(FloatFormats.float(fromE5M2: 0x7B), 57344)
        XCTAssertEqual(FloatFormats.float(fromE5M2: 0x7C), .infinity)
        // Every finite code round-trips through the encoder, and large values saturate.
        for code in UInt8(0)...UInt8(255) {
            let e4 = FloatFormats.float(fromE4M3: code)
            if e4.isFinite && !(e4 == 0 && code == 0x80) { XCTAssertEqual(FloatFormats.e4m3(from: e4), code) }
            let e5 = FloatFormats.float(fromE5M2: code)
            if e5.isFinite && !(e5 == 0 && code == 0x80) { XCTAssertEqual(FloatFormats.e5m2(from: e5), code) }
        }
        XCTAssertEqual(FloatFormats.e4m3(from: 1e6), 0x7E)
        XCTAssertEqual(FloatFormats.e4m3(from: -1e6), 0xFE)
    }

    func testAtomicWriterRefusesExistingFilesAndLeavesNoTemporaries() throws {
        let directory = NSTemporaryDirectory() + "atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.bin"
        try AtomicFileWriter.write([1, 2, 3], to: path, overwrite: false)
        XCTAssertThrowsError(try AtomicFileWriter.write([4], to: path, overwrite: false))
        XCTAssertEqual(try MappedFile(path: path).withBytes { Array($0) }, [1, 2, 3])
        try AtomicFileWriter.write([4], to: path, overwrite: true)
        XCTAssertEqual(try MappedFile(path: path).withBytes { Array($0) }, [4])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out.bin"])
    }

    func testMappedFileErrorsAndContentHash() throws {
        XCTAssertThrowsError(try MappedFile(path: "/nonexistent/x")) { error in
            XCTAssertTrue((error as! MappedFile.OpenError).isMissing)
        }
        XCTAssertThrowsError(try MappedFile(path: "/tmp"), "a directory is not a regular file")
        // FNV-1a 64 test vectors.
        XCTAssertEqual(Array("".utf8).withUnsafeBytes { ContentHash.fnv1a64($0) }, 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(Array("a".utf8).withUnsafeBytes { ContentHash.fnv1a64($0) }, 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(Array("foobar".utf8).withUnsafeBytes { ContentHash.fnv1a64($0) }, 0x8594_4171_f739_67e8)
    }
}
