import XCTest
@testable import Checkpoints

/// One malformed file per test, each refused with the reference reader's error (formats.md §1.3)
/// and a description naming the file and, where there is one, the tensor.
final class SafetensorsValidationTests: SafetensorsTestCase {
    typealias F = SafetensorsFixtures
    let four: [UInt8] = [0, 0, 0, 0]

    func testTruncatedFile() {
        assertOpenFails([0x10, 0, 0]) { .headerTooSmall(path: $0, fileByteCount: 3) }
        assertOpenFails([]) { .headerTooSmall(path: $0, fileByteCount: 0) }
    }

    func testHeaderLengthLargerThanFile() {
        assertOpenFails(F.file(header: "{}", declaredByteCount: 100)) {
            .invalidHeaderLength(path: $0, headerByteCount: 100, fileByteCount: 10)
        }
    }

    func testHeaderLengthOverTheCap() {
        assertOpenFails(F.file(header: "{}", declaredByteCount: 100_000_001)) {
            .headerTooLarge(path: $0, headerByteCount: 100_000_001, limit: 100_000_000)
        }
        assertOpenFails(F.file(header: "{}", declaredByteCount: .max)) {
            .headerTooLarge(path: $0, headerByteCount: .max, limit: 100_000_000)
        }
    }

    func testInvalidUTF8() {
        assertOpenFails(F.file(headerBytes: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])) { .headerNotUTF8(path: $0) }
    }

    func testNotJSON() {
        let path = temporaryPath("bad.safetensors")
        F.writeFile(F.file(header: "{\"w\":"), path)
        XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
            guard case .invalidHeaderJSON(path, _)? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
    }

    func testNonObjectHeader() {
        assertOpenFails(F.file(header: "[]")) {
            .invalidHeaderStructure(path: $0, tensor: nil, reason: "expected an object, got array")
        }
    }

    func testDuplicateKey() {
        let header = "{" + F.entry("w", "F32", [1], 0, 4) + "," + F.entry("w", "F32", [1], 0, 4) + "}"
        let path = temporaryPath("bad.safetensors")
        F.writeFile(F.file(header: header, data: four), path)
        XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
            guard case let .invalidHeaderJSON(errorPath, reason)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.contains("duplicate"), reason)
            XCTAssertTrue("\(error)".hasPrefix(path + ":"))
        }
    }

    func testMissingAndIllTypedEntryFields() {
        assertOpenFails(F.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", data: four), tensor: "w") {
            .invalidHeaderStructure(path: $0, tensor: "w", reason: "missing field \"data_offsets\"")
        }
        assertOpenFails(F.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", data: four), tensor: "w") {
            .invalidHeaderStructure(path: $0, tensor: "w", reason: "\"shape\" must be an array of non-negative integers, got [1.0]")
        }
        assertOpenFails(F.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data: four), tensor: "w") {
            .invalidHeaderStructure(path: $0, tensor: "w", reason: "\"shape\" must be an array of non-negative integers, got [-1]")
        }
        assertOpenFails(F.file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", data: four), tensor: "w") {
            .invalidHeaderStructure(path: $0, tensor: "w", reason: "\"data_offsets\" must be two non-negative integers [begin, end], got [0,4,4]")
        }
        assertOpenFails(F.file(header: "{\"w\":[1]}")) {
            .invalidHeaderStructure(path: $0, tensor: "w", reason: "expected an object, got array")
        }
    }

    func testMetadataMustMapStringsToStrings() {
        assertOpenFails(F.file(header: "{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}"), tensor: "__metadata__") {
            .invalidHeaderStructure(path: $0, tensor: "__metadata__", reason: "value of \"n\" must be a string, got number")
        }
    }

    func testUnknownDType() {
        assertOpenFails(F.file(header: "{" + F.entry("w", "F33", [1], 0, 4) + "}", data: four), tensor: "w") {
            .unknownDType(path: $0, tensor: "w", dtype: "F33")
        }
    }

    func testOverlappingOffsets() {
        let header = "{" + F.entry("a", "F32", [2], 0, 8) + "," + F.entry("b", "F32", [2], 4, 12) + "}"
        assertOpenFails(F.file(header: header, data: Array(repeating: 0, count: 12)), tensor: "b") {
            .invalidOffsets(path: $0, tensor: "b", begin: 4, end: 12, expectedBegin: 8)
        }
    }

    func testGapInOffsets() {
        let header = "{" + F.entry("a", "F32", [1], 0, 4) + "," + F.entry("b", "F32", [1], 8, 12) + "}"
        assertOpenFails(F.file(header: header, data: Array(repeating: 0, count: 12)), tensor: "b") {
            .invalidOffsets(path: $0, tensor: "b", begin: 8, end: 12, expectedBegin: 4)
        }
        // The first tensor must start at 0.
        assertOpenFails(F.file(header: "{" + F.entry("a", "F32", [1], 4, 8) + "}", data: Array(repeating: 0, count: 8)), tensor: "a") {
            .invalidOffsets(path: $0, tensor: "a", begin: 4, end: 8, expectedBegin: 0)
        }
    }

    func testEndBeforeBegin() {
        let header = "{" + F.entry("a", "U8", [4], 0, 4) + "," + F.entry("b", "U8", [0], 4, 2) + "}"
        assertOpenFails(F.file(header: header, data: four), tensor: "b") {
            .invalidOffsets(path: $0, tensor: "b", begin: 4, end: 2, expectedBegin: 4)
        }
    }

    func testOffsetsBeyondTheData() {
        assertOpenFails(F.file(header: "{" + F.entry("w", "F32", [2], 0, 8) + "}", data: four)) {
            .incompleteBuffer(path: $0, dataEnd: 8, dataByteCount: 4)
        }
    }

    func testTrailingBytes() {
        assertOpenFails(F.file(header: "{" + F.entry("w", "F32", [1], 0, 4) + "}", data: four + [1, 2])) {
            .incompleteBuffer(path: $0, dataEnd: 4, dataByteCount: 6)
        }
    }

    func testByteCountDisagreesWithShape() {
        let header = "{" + F.entry("a.weight", "F32", [2, 2], 0, 12) + "}"
        let path = temporaryPath("model.safetensors")
        assertOpenFails(F.file(header: header, data: Array(repeating: 0, count: 12)), named: "model.safetensors", tensor: "a.weight") {
            .byteCountMismatch(path: $0, tensor: "a.weight", dtype: "F32", shape: [2, 2], begin: 0, end: 12, expectedByteCount: 16)
        }
        let error = SafetensorsError.byteCountMismatch(path: path, tensor: "a.weight", dtype: "F32", shape: [2, 2],
                                                       begin: 0, end: 12, expectedByteCount: 16)
        XCTAssertEqual(error.description, "\(path): tensor 'a.weight': data_offsets [0,12] hold 12 bytes but F32 [2,2] needs 16")
    }

    func testShapeProductOverflow() {
        let header = "{" + F.entry("w", "F32", [1 << 40, 1 << 30], 0, 4) + "}"
        assertOpenFails(F.file(header: header, data: four), tensor: "w") {
            .sizeOverflow(path: $0, tensor: "w", dtype: "F32", shape: [1 << 40, 1 << 30])
        }
        // The element count fits but its bit count does not.
        let bits = "{" + F.entry("w", "F64", [1 << 58], 0, 4) + "}"
        assertOpenFails(F.file(header: bits, data: four), tensor: "w") {
            .sizeOverflow(path: $0, tensor: "w", dtype: "F64", shape: [1 << 58])
        }
    }

    func testSubByteDTypeMustFillWholeBytes() {
        assertOpenFails(F.file(header: "{" + F.entry("w", "F4", [3], 0, 2) + "}", data: [0, 0]), tensor: "w") {
            .misalignedSlice(path: $0, tensor: "w", dtype: "F4", shape: [3])
        }
    }
}
