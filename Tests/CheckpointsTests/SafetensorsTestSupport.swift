import Foundation
import XCTest
@testable import Checkpoints
import Tensors

/// Builders for hand-made safetensors files and the fixtures folder.
enum SafetensorsFixtures {
    /// `Tests/CheckpointsTests/Fixtures/safetensors/<name>`, found from this source file.
    static func path(_ name: String, filePath: StaticString = #filePath) -> String {
        let here = URL(fileURLWithPath: "\(filePath)").deletingLastPathComponent()
        return here.appendingPathComponent("Fixtures/safetensors/\(name)").path
    }

    /// `u64 N` (the header's length unless `declaredByteCount` says otherwise), the header, the data.
    static func file(header: String, data: [UInt8] = [], declaredByteCount: UInt64? = nil) -> [UInt8] {
        file(headerBytes: Array(header.utf8), data: data, declaredByteCount: declaredByteCount)
    }

    static func file(headerBytes: [UInt8], data: [UInt8] = [], declaredByteCount: UInt64? = nil) -> [UInt8] {
        let count = declaredByteCount ?? UInt64(headerBytes.count)
        return withUnsafeBytes(of: count.littleEndian) { Array($0) } + headerBytes + data
    }

    /// One tensor entry of a header.
    static func entry(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(begin),\(end)]}"
    }

    static func owned(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) -> Tensor {
        try! Tensor(name: name, dtype: dtype, shape: shape, storage: TensorStorage.bytes(bytes))
    }

    static func bytes(_ tensor: Tensor) -> [UInt8] { Array(tensor.storage.bytes) }

    static func readFile(_ path: String) -> [UInt8] {
        (try? Array(Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
    }

    static func writeFile(_ bytes: [UInt8], _ path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
}

/// A temporary directory per test, removed afterwards.
class SafetensorsTestCase: XCTestCase {
    var directory = ""

    override func setUp() {
        super.setUp()
        directory = NSTemporaryDirectory() + "loquat-st-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    func temporaryPath(_ name: String) -> String { directory + "/" + name }

    /// Writes `bytes` as a file, opens it, and checks the exact error, that its description
    /// names the file, and (when given) the tensor.
    func assertOpenFails(_ bytes: [UInt8], named name: String = "bad.safetensors", tensor: String? = nil,
                         _ expected: (String) -> SafetensorsError, file: StaticString = #filePath, line: UInt = #line) {
        let path = temporaryPath(name)
        SafetensorsFixtures.writeFile(bytes, path)
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { error in
            guard let error = error as? SafetensorsError else { return XCTFail("not a SafetensorsError: \(error)", file: file, line: line) }
            XCTAssertEqual(error, expected(path), file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path + ":"), error.description, file: file, line: line)
            XCTAssertEqual(error.path, path, file: file, line: line)
            if let tensor {
                XCTAssertTrue(error.description.contains("'\(tensor)'"), error.description, file: file, line: line)
            }
        }
    }
}
