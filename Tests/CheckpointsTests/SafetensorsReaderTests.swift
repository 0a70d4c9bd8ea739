import XCTest
@testable import Checkpoints
import Tensors

/// Reading valid files: zero-copy tensors, order, metadata, and the reference reader's leniencies.
final class SafetensorsReaderTests: SafetensorsTestCase {
    typealias F = SafetensorsFixtures

    func testReadsTensorsInDataOffsetOrderWithoutCopying() throws {
        // Header order differs from data order; b is F32 [2], a is U8 [3], s a scalar.
        let header = "{" + [F.entry("a", "U8", [3], 8, 11), F.entry("b", "F32", [2], 0, 8), F.entry("s", "I8", [], 11, 12)]
            .joined(separator: ",") + ",\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"}}"
        let data: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0, 7, 8, 9, 0xFF]
        let path = temporaryPath("ok.safetensors")
        F.writeFile(F.file(header: header, data: data), path)

        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.names, ["b", "a", "s"])
        XCTAssertEqual(file.metadata, ["format": "pt", "note": "x"])
        XCTAssertEqual(file.header.dataByteOffset, 8 + header.utf8.count)
        let b = try XCTUnwrap(file.tensor(named: "b"))
        XCTAssertEqual(b.dtype, .f32)
        XCTAssertEqual(b.shape, [2])
        XCTAssertEqual(try b.decodedFloat32(), [1, -2])
        XCTAssertTrue(b.storage.isMapped)
        XCTAssertEqual(b.storage.bytes.baseAddress, file.mapping.bytes.baseAddress! + file.header.dataByteOffset)
        XCTAssertTrue(file.holdsStorage(of: b))
        XCTAssertEqual(F.bytes(try file.requireTensor(named: "a")), [7, 8, 9])
        XCTAssertEqual(file["s"]?.shape, [])
        XCTAssertNil(file.tensor(named: "missing"))
        XCTAssertThrowsError(try file.requireTensor(named: "missing")) { error in
            XCTAssertEqual(error as? SafetensorsError, .tensorNotFound(path: path, tensor: "missing"))
        }
    }

    func testTensorsOutliveTheFileValue() throws {
        let path = temporaryPath("w.safetensors")
        F.writeFile(F.file(header: "{" + F.entry("w", "F32", [1], 0, 4) + "}", data: [0, 0, 0x40, 0x40]), path)
        let tensor = try SafetensorsFile(path: path).tensors[0]
        XCTAssertEqual(try tensor.decodedFloat32(), [3])
    }

    func testLeadingWhitespaceNullMetadataAndUnknownEntryFieldsAreAccepted() throws {
        let header = " \n\t{\"__metadata__\":null,\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}   "
        let path = temporaryPath("lenient.safetensors")
        F.writeFile(F.file(header: header, data: [0, 0, 0, 0]), path)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.names, ["w"])
        XCTAssertEqual(file.metadata, [:])
    }

    func testEmptyHeaderAndZeroSizeTensors() throws {
        let empty = temporaryPath("empty.safetensors")
        F.writeFile(F.file(header: "{}"), empty)
        XCTAssertEqual(try SafetensorsFile(path: empty).tensors.count, 0)

        let header = "{" + [F.entry("z2", "F32", [0], 0, 0), F.entry("z1", "F32", [3, 0], 0, 0), F.entry("w", "U8", [1], 0, 1)]
            .joined(separator: ",") + "}"
        let path = temporaryPath("zeros.safetensors")
        F.writeFile(F.file(header: header, data: [5]), path)
        let file = try SafetensorsFile(path: path)
        // (begin, end) ties keep header order.
        XCTAssertEqual(file.names, ["z2", "z1", "w"])
        XCTAssertEqual(file.tensors[0].byteCount, 0)
    }

    func testValidDTypeWithoutLoquatSupportIsReportedAfterValidation() {
        let header = "{" + F.entry("c", "C64", [1], 0, 8) + "}"
        assertOpenFails(F.file(header: header, data: Array(repeating: 0, count: 8)), tensor: "c") {
            .unsupportedDType(path: $0, tensor: "c", dtype: "C64")
        }
    }

    func testMissingFileIsUnreadable() {
        let path = temporaryPath("absent.safetensors")
        XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
            guard case let .unreadable(errorPath, _)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
        }
    }

    func testGoldenFixtureFromTheReferenceWriterReads() throws {
        let file = try SafetensorsFile(path: SafetensorsFixtures.path("mixed_dtypes.safetensors"))
        XCTAssertEqual(file.tensors.count, 18)
        XCTAssertEqual(file.tensors.first?.name, "q.u64")
        XCTAssertEqual(file.tensors.last?.name, "a.bool")
        XCTAssertEqual(file.metadata, ["format": "pt"])
        let escaped = try XCTUnwrap(file.tensor(named: "r \"quoted\"\\path\ttab\u{e9}"))
        XCTAssertEqual(escaped.dtype, .f32)
        XCTAssertEqual(file.tensor(named: "n.f32.empty")?.shape, [0, 4])
        XCTAssertEqual(file.tensor(named: "e.f8_e4m3")?.dtype, .f8E4M3)
        // The generator fills tensor k (in its insertion order) with (i·3 + 1 + k) mod 256.
        XCTAssertEqual(F.bytes(try XCTUnwrap(file.tensor(named: "a.bool"))), [1, 4, 7])
        XCTAssertEqual(F.bytes(try XCTUnwrap(file.tensor(named: "b.u8"))), [2, 5, 8, 11])
    }
}
