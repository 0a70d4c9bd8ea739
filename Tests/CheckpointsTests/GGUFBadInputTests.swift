import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// Hostile and broken files, built in code; each case asserts the exact error it must give.
final class GGUFBadInputTests: XCTestCase {
    private func kind(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> GGUFError.Kind? {
        try GGUFTestSupport.openError(bytes, file: file, line: line)?.kind
    }

    func testBadMagic() throws {
        var bytes = GGUFBuilder.minimalFile()
        bytes[0] = UInt8(ascii: "X")
        XCTAssertEqual(try kind(bytes), .badMagic(0x4655_4758))
    }

    func testUnsupportedVersions() throws {
        XCTAssertEqual(try kind(GGUFBuilder.minimalFile(version: 1)), .unsupportedVersion(1))
        XCTAssertEqual(try kind(GGUFBuilder.minimalFile(version: 4)), .unsupportedVersion(4))
        XCTAssertEqual(try kind(GGUFBuilder.minimalFile(version: 0x0300_0000)), .unsupportedVersion(0x0300_0000))
    }

    func testStringLengthPastEndOfFile() throws {
        var builder = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        builder.raw(UInt64(1000))  // key length
        builder.data(Array("short".utf8) + [UInt8](repeating: 0, count: 8))
        let error = try GGUFTestSupport.openError(builder.bytes)
        XCTAssertEqual(error?.kind, .stringPastEnd(what: "key of metadata entry 0", byteCount: 1000, availableByteCount: 13))
        XCTAssertEqual(error?.offset, 24)
    }

    func testStringLongerThanOneGiB() throws {
        var builder = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        builder.string("k")
        builder.raw(GGUFValueType.string.rawValue)
        builder.raw(UInt64(1) << 40)
        builder.data([UInt8](repeating: 0, count: 16))
        XCTAssertEqual(try kind(builder.bytes), .stringTooLong(what: "value of k", byteCount: 1 << 40))
    }

    func testArrayLengthPastEndOfFile() throws {
        var builder = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        builder.string("tokens")
        builder.raw(GGUFValueType.array.rawValue)
        builder.raw(GGUFValueType.uint32.rawValue)
        builder.raw(UInt64(1_000_000))
        builder.data([UInt8](repeating: 0, count: 40))
        XCTAssertEqual(try kind(builder.bytes), .arrayPastEnd(key: "tokens", count: 1_000_000, availableByteCount: 40))
    }

    func testArrayCountOverTheLimit() throws {
        var builder = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        builder.string("a")
        builder.raw(GGUFValueType.array.rawValue)
        builder.raw(GGUFValueType.uint8.rawValue)
        builder.raw(UInt64.max)
        XCTAssertEqual(try kind(builder.bytes), .arrayTooLong(key: "a", count: .max))
    }

    func testUnknownTensorType() throws {
        for (typeID, name) in [(UInt32(4), String?.none), (16, "IQ2_XXS"), (99, nil)] {
            var builder = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
            builder.tensorInfo("blk.0.attn_q.weight", ne: [32, 2], typeID: typeID, offset: 0)
            builder.pad()
            builder.data([UInt8](repeating: 0, count: 256))
            let error = try GGUFTestSupport.openError(builder.bytes)
            XCTAssertEqual(error?.kind, .unsupportedTensorType(tensor: "blk.0.attn_q.weight", typeID: typeID, typeName: name))
            XCTAssertTrue(error?.description.contains("blk.0.attn_q.weight") ?? false)
            XCTAssertTrue(error?.description.contains("type id \(typeID)") ?? false)
        }
    }

    func testTruncatedFile() throws {
        let bytes = GGUFBuilder.minimalFile()
        // Layout: header 24, KV 24..<69, tensor info 69..<102, padding to 128, data 128..<160.
        XCTAssertEqual(bytes.count, 160)
        // Cut inside the tensor info: the read that runs out is reported.
        XCTAssertEqual(try kind(Array(bytes[0..<92])), .truncated(what: "type of t", requestedByteCount: 4, availableByteCount: 2))
        // Cut inside the tensor data.
        XCTAssertEqual(try kind(Array(bytes[0..<140])), .tensorPastEnd(tensor: "t", endOffset: 160, fileByteCount: 140))
        // Cut inside the header, and an empty file.
        XCTAssertEqual(try kind(Array(bytes[0..<6])), .truncated(what: "version", requestedByteCount: 4, availableByteCount: 2))
        XCTAssertEqual(try kind([]), .truncated(what: "magic", requestedByteCount: 4, availableByteCount: 0))
    }

    func testDuplicateKey() throws {
        var builder = GGUFBuilder(tensorCount: 0, keyValueCount: 2)
        builder.keyValue("general.name", .string("a"))
        builder.keyValue("general.name", .string("b"))
        XCTAssertEqual(try kind(builder.bytes), .duplicateKey("general.name"))
    }

    func testDuplicateTensorName() throws {
        var builder = GGUFBuilder(tensorCount: 2, keyValueCount: 0)
        builder.tensorInfo("w", ne: [8], typeID: 0, offset: 0)
        builder.tensorInfo("w", ne: [8], typeID: 0, offset: 32)
        builder.pad()
        builder.data([UInt8](repeating: 0, count: 64))
        XCTAssertEqual(try kind(builder.bytes), .duplicateTensorName("w"))
    }

    func testTensorShapeChecks() throws {
        var tooMany = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
        tooMany.tensorInfo("w", ne: [1, 1, 1, 1, 1], typeID: 0, offset: 0)
        XCTAssertEqual(try kind(tooMany.bytes), .tooManyDimensions(tensor: "w", dimensionCount: 5))

        var notWhole = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
        notWhole.tensorInfo("w", ne: [48, 2], typeID: 8, offset: 0)
        XCTAssertEqual(try kind(notWhole.bytes), .rowNotWholeBlocks(tensor: "w", rowLength: 48, blockSize: 32))

        var negative = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
        negative.tensorInfo("w", ne: [UInt64.max], typeID: 0, offset: 0)
        XCTAssertEqual(try kind(negative.bytes), .invalidDimension(tensor: "w", ne: [.max]))

        var overflow = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
        overflow.tensorInfo("w", ne: [1 << 40, 1 << 40], typeID: 0, offset: 0)
        guard case .sizeOverflow? = try kind(overflow.bytes) else { return XCTFail() }

        var longName = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
        let name = String(repeating: "n", count: 64)
        longName.tensorInfo(name, ne: [8], typeID: 0, offset: 0)
        XCTAssertEqual(try kind(longName.bytes), .tensorNameTooLong(name))
    }

    func testOffsetsMustBeAlignedAndSequential() throws {
        var misaligned = GGUFBuilder(tensorCount: 1, keyValueCount: 0)
        misaligned.tensorInfo("w", ne: [8], typeID: 0, offset: 4)
        misaligned.pad()
        misaligned.data([UInt8](repeating: 0, count: 64))
        XCTAssertEqual(try kind(misaligned.bytes), .misalignedOffset(tensor: "w", offset: 4, alignment: 32))

        var gap = GGUFBuilder(tensorCount: 2, keyValueCount: 0)
        gap.tensorInfo("a", ne: [8], typeID: 0, offset: 0)
        gap.tensorInfo("b", ne: [8], typeID: 0, offset: 64)
        gap.pad()
        gap.data([UInt8](repeating: 0, count: 128))
        XCTAssertEqual(try kind(gap.bytes), .unexpectedOffset(tensor: "b", offset: 64, expected: 32))
    }

    func testAlignmentKey() throws {
        var notPowerOfTwo = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        notPowerOfTwo.keyValue("general.alignment", .uint32(48))
        XCTAssertEqual(try kind(notPowerOfTwo.bytes), .badAlignment(detail: "48 is not a power of two"))

        var wrongType = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        wrongType.keyValue("general.alignment", .uint64(64))
        XCTAssertEqual(try kind(wrongType.bytes), .badAlignment(detail: "has type UINT64, expected UINT32"))
    }

    func testBadValues() throws {
        var badBool = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        badBool.string("b")
        badBool.raw(GGUFValueType.bool.rawValue)
        badBool.raw(UInt8(2))
        XCTAssertEqual(try kind(badBool.bytes), .invalidBool(key: "b", byte: 2))

        var badType = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        badType.string("x")
        badType.raw(UInt32(13))
        XCTAssertEqual(try kind(badType.bytes), .unknownValueType(key: "x", typeID: 13))

        var badUTF8 = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        badUTF8.string("s")
        badUTF8.raw(GGUFValueType.string.rawValue)
        badUTF8.raw(UInt64(2))
        badUTF8.data([0xC3, 0x28])
        XCTAssertEqual(try kind(badUTF8.bytes), .invalidUTF8(what: "value of s"))

        var deep = GGUFBuilder(tensorCount: 0, keyValueCount: 1)
        deep.string("d")
        deep.raw(GGUFValueType.array.rawValue)
        for _ in 0..<9 {
            deep.raw(GGUFValueType.array.rawValue)
            deep.raw(UInt64(1))
        }
        deep.data([UInt8](repeating: 0, count: 64))
        XCTAssertEqual(try kind(deep.bytes), .arrayNestedTooDeeply(key: "d"))
    }

    func testHugeCountsDoNotAllocate() throws {
        let huge = GGUFBuilder(tensorCount: UInt64.max, keyValueCount: 0)
        guard case .truncated? = try kind(huge.bytes) else { return XCTFail() }
        let manyKeys = GGUFBuilder(tensorCount: 0, keyValueCount: 1 << 60)
        guard case .truncated? = try kind(manyKeys.bytes) else { return XCTFail() }
    }
}
