import Foundation
import XCTest
import LoquatSupport
import Tensors
import Checkpoints

/// Helpers shared by the GGUF and GGML codec tests: fixture paths, scratch files, and a
/// builder that lays out GGUF bytes field by field so a test can break exactly one of them.
enum GGUFTestSupport {
    /// `Tests/CheckpointsTests/Fixtures/gguf/<name>`, found from this source file (the test
    /// target declares no resources).
    static func fixturePath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/gguf").appendingPathComponent(name).path
    }

    /// A fresh directory under the system temporary directory.
    static func scratchDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("loquat-gguf-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    static func write(_ bytes: [UInt8], name: String = "test.gguf") throws -> String {
        let path = try scratchDirectory() + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Opens `bytes` as a GGUF file and returns the error it throws (fails if it opens).
    static func openError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> GGUFError? {
        let path = try write(bytes)
        do {
            _ = try GGUFFile(path: path)
            XCTFail("expected the file to be rejected", file: file, line: line)
            return nil
        } catch let error as GGUFError {
            XCTAssertEqual(error.path, path, file: file, line: line)
            XCTAssertTrue(error.description.contains(path), file: file, line: line)
            return error
        }
    }

    /// Float32 bit patterns, for exact comparisons that also hold for -0 and NaN payloads.
    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    /// Deterministic pseudo-random bytes (SplitMix64).
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }

    /// Deterministic pseudo-random floats in roughly [-scale, scale].
    static func randomFloats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        let bytes = randomBytes(count * 4, seed: seed)
        return (0..<count).map { i in
            let word = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16
            return (Float(word) / Float(1 << 23) - 1) * scale
        }
    }
}

/// Builds GGUF bytes field by field.
struct GGUFBuilder {
    var writer = ByteWriter()

    init(magic: UInt32 = 0x4655_4747, version: UInt32 = 3, tensorCount: UInt64, keyValueCount: UInt64) {
        writer.write(magic)
        writer.write(version)
        writer.write(tensorCount)
        writer.write(keyValueCount)
    }

    var bytes: [UInt8] { writer.bytes }

    mutating func string(_ value: String) {
        writer.write(UInt64(value.utf8.count))
        writer.write(utf8: value)
    }

    mutating func keyValue(_ key: String, _ value: GGUFValue) {
        string(key)
        writer.write(value.type.rawValue)
        value.writePayload(into: &writer)
    }

    mutating func tensorInfo(_ name: String, ne: [UInt64], typeID: UInt32, offset: UInt64) {
        string(name)
        writer.write(UInt32(ne.count))
        for extent in ne { writer.write(extent) }
        writer.write(typeID)
        writer.write(offset)
    }

    mutating func pad(to alignment: Int = 32) { writer.pad(toMultipleOf: alignment) }

    mutating func data(_ bytes: [UInt8]) { writer.write(bytes: bytes) }

    mutating func raw<T: FixedWidthInteger>(_ value: T) { writer.write(value) }

    /// A valid file: one KV and one F32 tensor `t` of `ne = [8]`.
    static func minimalFile(version: UInt32 = 3) -> [UInt8] {
        var builder = GGUFBuilder(version: version, tensorCount: 1, keyValueCount: 1)
        builder.keyValue("general.architecture", .string("llama"))
        builder.tensorInfo("t", ne: [8], typeID: 0, offset: 0)
        builder.pad()
        builder.data((0..<8).flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) })
        builder.pad()
        return builder.bytes
    }
}
