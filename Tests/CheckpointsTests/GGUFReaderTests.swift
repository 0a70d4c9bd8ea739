import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// Reading well-formed files: gguf-py's `metadata.gguf` fixture and files built in code.
final class GGUFReaderTests: XCTestCase {
    func testEveryValueTypeFromGGUFPy() throws {
        let file = try GGUFFile(path: GGUFTestSupport.fixturePath("metadata.gguf"))
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 64)
        let m = file.metadata
        XCTAssertEqual(m.keys, [
            "general.architecture", "general.alignment", "test.uint8", "test.int8", "test.uint16", "test.int16",
            "test.uint32", "test.int32", "test.float32", "test.bool", "test.string", "test.uint64", "test.int64",
            "test.float64", "test.array.int32", "test.array.float32", "test.array.bool", "test.array.string",
            "test.array.nested",
        ])
        XCTAssertEqual(m["general.architecture"], .string("test"))
        XCTAssertEqual(m["general.alignment"], .uint32(64))
        XCTAssertEqual(m["test.uint8"], .uint8(200))
        XCTAssertEqual(m["test.int8"], .int8(-100))
        XCTAssertEqual(m["test.uint16"], .uint16(60000))
        XCTAssertEqual(m["test.int16"], .int16(-30000))
        XCTAssertEqual(m["test.uint32"], .uint32(4_000_000_000))
        XCTAssertEqual(m["test.int32"], .int32(-2_000_000_000))
        XCTAssertEqual(m["test.float32"], .float32(3.25))
        XCTAssertEqual(m["test.bool"], .bool(true))
        XCTAssertEqual(m["test.string"]?.string, "h\u{e9}llo \u{2713}")
        XCTAssertEqual(m["test.uint64"], .uint64(1 << 63 + 5))
        XCTAssertEqual(m["test.int64"], .int64(-(1 << 62)))
        XCTAssertEqual(m["test.float64"], .float64(1e-300))
        XCTAssertEqual(m["test.array.int32"], .array(elementType: .int32, values: [.int32(1), .int32(-2), .int32(3)]))
        XCTAssertEqual(m["test.array.float32"], .array(elementType: .float32, values: [.float32(0.5), .float32(-1.5)]))
        XCTAssertEqual(m["test.array.bool"], .array(elementType: .bool, values: [.bool(true), .bool(false)]))
        XCTAssertEqual(m["test.array.string"]?.stringArray, ["a", "bb", ""])
        XCTAssertEqual(m["test.array.nested"], .array(elementType: .array, values: [
            .array(elementType: .int32, values: [.int32(1), .int32(2)]),
            .array(elementType: .int32, values: [.int32(3)]),
        ]))
        XCTAssertEqual(m["test.array.nested"]?.typeName, "ARRAY[ARRAY]")
        XCTAssertEqual(m["test.uint32"]?.integer, 4_000_000_000)
        XCTAssertNil(m["missing"])
    }

    func testTensorsAreTorchOrderedMappedWindows() throws {
        let file = try GGUFFile(path: GGUFTestSupport.fixturePath("metadata.gguf"))
        XCTAssertEqual(file.tensorNames, ["vector", "cube", "matrix"])
        XCTAssertEqual(file.dataByteOffset % 64, 0)
        for info in file.tensorInfos { XCTAssertEqual(info.dataByteOffset % 64, 0, info.name) }

        let vector = try file.tensor(named: "vector")
        XCTAssertEqual(vector.shape, [5])
        XCTAssertEqual(try vector.decodedFloat32(), [-2, -1, 0, 1, 2])
        XCTAssertTrue(vector.storage.isMapped)

        let cube = try file.tensor(named: "cube")
        XCTAssertEqual(file.tensorInfo(named: "cube")?.ne, [4, 3, 2])
        XCTAssertEqual(cube.shape, [2, 3, 4])
        XCTAssertEqual(cube.dtype, .f16)
        XCTAssertEqual(try cube.decodedFloat32(), (0..<24).map { Float($0) / 8 })

        let matrix = try file.tensor(named: "matrix")
        XCTAssertEqual(matrix.shape, [2, 32])
        XCTAssertEqual(matrix.dtype, .q8_0)
        XCTAssertEqual(file.tensorInfo(named: "matrix")?.rowByteCount, 34)
        let decoded = try GGMLBlockCodec.decode(matrix)
        XCTAssertEqual(decoded.first!, -1, accuracy: 1e-3)
        XCTAssertEqual(decoded.last!, 1, accuracy: 1e-3)

        XCTAssertThrowsError(try file.tensor(named: "nope")) {
            XCTAssertEqual(($0 as? GGUFError)?.kind, .tensorNotFound("nope"))
        }
    }

    func testVersionTwoAndEmptyArraysAreAccepted() throws {
        var builder = GGUFBuilder(version: 2, tensorCount: 0, keyValueCount: 2)
        builder.keyValue("empty", .array(elementType: .string, values: []))
        builder.keyValue("flag", .bool(false))
        let file = try GGUFFile(path: try GGUFTestSupport.write(builder.bytes))
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(file.metadata["empty"], .array(elementType: .string, values: []))
        XCTAssertEqual(file.metadata["flag"]?.bool, false)
        XCTAssertTrue(file.tensorInfos.isEmpty)

        let minimal = try GGUFFile(path: try GGUFTestSupport.write(GGUFBuilder.minimalFile()))
        XCTAssertEqual(try minimal.tensor(named: "t").decodedFloat32(), (0..<8).map(Float.init))
    }

    func testStrictKeyTypeLookup() throws {
        let file = try GGUFFile(path: GGUFTestSupport.fixturePath("metadata.gguf"))
        XCTAssertEqual(try file.value("test.uint32", as: .uint32), .uint32(4_000_000_000))
        XCTAssertNil(try file.value("absent", as: .uint32))
        XCTAssertThrowsError(try file.value("test.int32", as: .uint32)) {
            XCTAssertEqual(($0 as? GGUFError)?.kind, .wrongKeyType(key: "test.int32", found: "INT32", expected: "UINT32"))
        }
    }

    func testMissingFileNamesThePath() {
        XCTAssertThrowsError(try GGUFFile(path: "/nonexistent/x.gguf")) {
            guard let error = $0 as? GGUFError, case .cannotOpen = error.kind else { return XCTFail("\($0)") }
            XCTAssertEqual(error.path, "/nonexistent/x.gguf")
        }
    }
}
