import Foundation
import XCTest
@testable import Checkpoints
import Tensors

/// The writer reproduces the reference writer's bytes, round-trips, and writes safely.
final class SafetensorsWriterTests: SafetensorsTestCase {
    typealias F = SafetensorsFixtures

    /// formats.md §1.1: one F32 tensor w = [1, −2]; 85 bytes of JSON padded to N = 88.
    func testWorkedExampleHeaderByteLayout() throws {
        let w = Tensor(name: "w", shape: [2], float32: [1, -2])
        let bytes = try SafetensorsWriter.serialize(tensors: [w])
        let json = #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertEqual(json.utf8.count, 85)
        let expected: [UInt8] = [0x58, 0, 0, 0, 0, 0, 0, 0] + Array(json.utf8) + [0x20, 0x20, 0x20]
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]
        XCTAssertEqual(bytes, expected)
        XCTAssertEqual(bytes.count, 104)
        // And the reference writer produced the same file.
        XCTAssertEqual(bytes, F.readFile(F.path("worked_example.safetensors")))
    }

    /// Every Loquat dtype, names ordered against dtype rank, a scalar, an empty tensor and a
    /// name needing escapes: our bytes equal the reference writer's, whatever the input order.
    func testMixedDTypesAreByteIdenticalToTheReferenceWriter() throws {
        let fixture = F.path("mixed_dtypes.safetensors")
        let source = try SafetensorsFile(path: fixture)
        let reference = F.readFile(fixture)
        let copies = source.tensors.map { F.owned($0.name, $0.dtype, $0.shape, F.bytes($0)) }
        XCTAssertEqual(try SafetensorsWriter.serialize(tensors: copies), reference)
        XCTAssertEqual(try SafetensorsWriter.serialize(tensors: copies.reversed()), reference)
        let path = temporaryPath("mixed.safetensors")
        try SafetensorsWriter.write(tensors: source.tensors.shuffled(), to: path, overwrite: false)
        XCTAssertEqual(F.readFile(path), reference)
    }

    func testRoundTripKeepsValuesAndRewritesIdenticalBytes() throws {
        let tensors = [
            Tensor(name: "model.layers.0.mlp.down_proj.weight", shape: [2, 3], float32: [0.5, -1, 2, 3.25, -0, .infinity]),
            F.owned("ids", .i64, [2], [1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]),
            F.owned("half", .f16, [1, 2], [0x00, 0x3C, 0x00, 0xC0]),
            F.owned("bf", .bf16, [1], [0x80, 0x3F]),
            F.owned("flags", .bool, [3], [1, 0, 1]),
            F.owned("scale", .f32, [], [0, 0, 0x20, 0x41]),
        ]
        let first = temporaryPath("first.safetensors")
        let layout = try SafetensorsWriter.write(tensors: tensors, metadata: ["format": "pt", "source": "test"], to: first, overwrite: false)
        XCTAssertEqual(layout.header.count % 8, 0)
        XCTAssertEqual(layout.tensors.map(\.name), ["ids", "model.layers.0.mlp.down_proj.weight", "scale", "bf", "half", "flags"])

        let read = try SafetensorsFile(path: first)
        XCTAssertEqual(read.metadata, ["format": "pt", "source": "test"])
        XCTAssertEqual(read.names, layout.tensors.map(\.name))
        for tensor in tensors {
            let back = try XCTUnwrap(read.tensor(named: tensor.name))
            XCTAssertEqual(back.dtype, tensor.dtype)
            XCTAssertEqual(back.shape, tensor.shape)
            XCTAssertEqual(F.bytes(back), F.bytes(tensor), tensor.name)
            // Every tensor starts at a file offset that is a multiple of its element size.
            let fileOffset = back.storage.bytes.baseAddress! - read.mapping.bytes.baseAddress!
            XCTAssertEqual(fileOffset % tensor.dtype.blockByteCount, 0, tensor.name)
        }
        XCTAssertEqual(try read.tensor(named: "half")?.decodedFloat32(), [1, -2])

        let second = temporaryPath("second.safetensors")
        try SafetensorsWriter.write(tensors: read.tensors, metadata: read.metadata, to: second, overwrite: false)
        XCTAssertEqual(F.readFile(second), F.readFile(first))
    }

    func testFormatIsAlwaysWrittenAndMetadataKeysAreSorted() throws {
        let w = Tensor(name: "w", shape: [1], float32: [0])
        let bytes = try SafetensorsWriter.serialize(tensors: [w], metadata: ["z": "1", "a": "2"])
        let header = String(decoding: bytes[8..<(8 + Int(bytes[0]))], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(#"{"__metadata__":{"a":"2","format":"pt","z":"1"},"w":"#), header)
    }

    func testRefusesAnExistingFileWithoutOverwrite() throws {
        let path = temporaryPath("model.safetensors")
        try SafetensorsWriter.write(tensors: [Tensor(name: "a", shape: [1], float32: [1])], to: path, overwrite: false)
        let before = F.readFile(path)
        XCTAssertThrowsError(try SafetensorsWriter.write(tensors: [Tensor(name: "b", shape: [1], float32: [2])], to: path, overwrite: false)) { error in
            guard case let .writeFailed(errorPath, reason)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
            XCTAssertTrue(reason.contains("exists"), reason)
        }
        XCTAssertEqual(F.readFile(path), before)
        try SafetensorsWriter.write(tensors: [Tensor(name: "b", shape: [1], float32: [2])], to: path, overwrite: true)
        XCTAssertEqual(try SafetensorsFile(path: path).names, ["b"])
        // No temporary files are left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])
    }

    func testRefusesToReplaceTheFileItsTensorsAreMappedFrom() throws {
        let path = temporaryPath("input.safetensors")
        try SafetensorsWriter.write(tensors: [Tensor(name: "a", shape: [2], float32: [1, 2])], to: path, overwrite: false)
        let input = try SafetensorsFile(path: path)
        XCTAssertEqual(SafetensorsInputGuard.tensorsMapped(from: path, among: input.tensors), ["a"])
        XCTAssertEqual(SafetensorsInputGuard.tensorsMapped(from: temporaryPath("other"), among: input.tensors), [])
        XCTAssertThrowsError(try SafetensorsWriter.write(tensors: input.tensors, to: path, overwrite: true)) { error in
            XCTAssertEqual(error as? SafetensorsError, .wouldOverwriteInput(path: path, tensor: "a"))
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("'a'"))
        }
        // Owned copies may replace it.
        let copy = F.owned("a", .f32, [2], F.bytes(input.tensors[0]))
        try SafetensorsWriter.write(tensors: [copy], to: path, overwrite: true)
    }

    func testRefusesDuplicateNamesAndBlockTypes() {
        let path = temporaryPath("x.safetensors")
        let a = Tensor(name: "a", shape: [1], float32: [1])
        XCTAssertThrowsError(try SafetensorsWriter.write(tensors: [a, a], to: path, overwrite: false)) { error in
            XCTAssertEqual(error as? SafetensorsError, .duplicateTensorName(path: path, tensor: "a"))
        }
        let q = F.owned("q", .q8_0, [32], Array(repeating: 0, count: 34))
        XCTAssertThrowsError(try SafetensorsWriter.write(tensors: [q], to: path, overwrite: false)) { error in
            XCTAssertEqual(error as? SafetensorsError, .unsupportedDType(path: path, tensor: "q", dtype: "Q8_0"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testSerdeStringEscaping() {
        var output: [UInt8] = []
        SafetensorsLayout.appendString("a\"b\\c/d\u{1}\u{1f}\u{7f}é\u{2028}\n\t\u{8}\u{c}\r", to: &output)
        XCTAssertEqual(String(decoding: output, as: UTF8.self), "\"a\\\"b\\\\c/d\\u0001\\u001f\u{7f}é\u{2028}\\n\\t\\b\\f\\r\"")
    }
}
