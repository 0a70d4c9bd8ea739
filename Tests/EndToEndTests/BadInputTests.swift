import Foundation
import JSON
import TestSupport
import XCTest

/// Hostile and broken inputs through the real daemon: each gets a JSON-RPC error whose data
/// names the problem, and the daemon keeps serving afterwards.
final class BadInputTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = makeTemporaryDirectory("bad-input") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func write(_ name: String, _ bytes: [UInt8]) -> String {
        let path = directory + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A safetensors file with the given header text and `dataByteCount` zero bytes of data.
    private func safetensors(_ name: String, header: String, dataByteCount: Int, declaredLength: UInt64? = nil) -> String {
        let headerBytes = Array(header.utf8)
        var bytes = withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { Array($0) }
        bytes += headerBytes + [UInt8](repeating: 0, count: dataByteCount)
        return write(name, bytes)
    }

    private func expectLoadError(_ session: DaemonSession, _ path: String, code: Int, mentioning needles: [String],
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let response = try session.request("model/load", ["path": .string(path)])
        XCTAssertEqual(response["error"]?["code"]?.intValue, code, "\(response)", file: file, line: line)
        let reason = response["error"]?["data"]?["reason"]?.stringValue ?? ""
        for needle in needles {
            XCTAssertTrue(reason.contains(needle), "data.reason \"\(reason)\" should mention \(needle)", file: file, line: line)
        }
    }

    func testBrokenSafetensorsFilesAreRefusedWithFileAndTensorNamed() throws {
        let session = try DaemonSession()
        let entry = #""w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}"#
        let truncated = safetensors("truncated.safetensors", header: "{\(entry)}", dataByteCount: 8)
        try expectLoadError(session, truncated, code: -32004, mentioning: ["truncated.safetensors"])
        let tooLong = safetensors("header-past-end.safetensors", header: "{\(entry)}", dataByteCount: 16, declaredLength: 10_000)
        try expectLoadError(session, tooLong, code: -32004, mentioning: ["header-past-end.safetensors"])
        let overlap = safetensors("overlap.safetensors",
                                  header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                  dataByteCount: 12)
        try expectLoadError(session, overlap, code: -32004, mentioning: ["overlap.safetensors", "b"])
        let outOfRange = safetensors("out-of-range.safetensors",
                                     header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataByteCount: 8)
        try expectLoadError(session, outOfRange, code: -32004, mentioning: ["out-of-range.safetensors"])
        let unknownType = safetensors("dtype.safetensors", header: #"{"odd":{"dtype":"Q9","shape":[2],"data_offsets":[0,2]}}"#, dataByteCount: 2)
        try expectLoadError(session, unknownType, code: -32004, mentioning: ["dtype.safetensors", "odd", "Q9"])
        let wrongSize = safetensors("size.safetensors", header: #"{"m":{"dtype":"F32","shape":[3,3],"data_offsets":[0,16]}}"#, dataByteCount: 16)
        try expectLoadError(session, wrongSize, code: -32004, mentioning: ["size.safetensors", "m"])
        let notJSON = safetensors("json.safetensors", header: "{\"a\":", dataByteCount: 0)
        try expectLoadError(session, notJSON, code: -32004, mentioning: ["json.safetensors"])
        XCTAssertEqual(try session.request("model/list")["result"]?["models"], [], "nothing half-loaded stays resident")
    }

    func testBrokenGGUFFilesAreRefused() throws {
        let session = try DaemonSession()
        func header(version: UInt32, tensorCount: UInt64, keyValueCount: UInt64) -> [UInt8] {
            Array("GGUF".utf8) + withUnsafeBytes(of: version.littleEndian) { Array($0) }
                + withUnsafeBytes(of: tensorCount.littleEndian) { Array($0) } + withUnsafeBytes(of: keyValueCount.littleEndian) { Array($0) }
        }
        try expectLoadError(session, write("magic.gguf", Array("GGML".utf8) + [UInt8](repeating: 0, count: 40)), code: -32004, mentioning: ["magic.gguf"])
        try expectLoadError(session, write("version.gguf", header(version: 9, tensorCount: 0, keyValueCount: 0)), code: -32004, mentioning: ["version.gguf"])
        // A key whose string length runs past the end of the file.
        let longKey = header(version: 3, tensorCount: 0, keyValueCount: 1) + withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) }
        try expectLoadError(session, write("string.gguf", longKey), code: -32004, mentioning: ["string.gguf"])
        // An array whose count runs past the end of the file.
        var array = header(version: 3, tensorCount: 0, keyValueCount: 1)
        array += withUnsafeBytes(of: UInt64(3).littleEndian) { Array($0) } + Array("arr".utf8)
        array += withUnsafeBytes(of: UInt32(9).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt32(4).littleEndian) { Array($0) }
        array += withUnsafeBytes(of: UInt64(1 << 28).littleEndian) { Array($0) }
        try expectLoadError(session, write("array.gguf", array), code: -32004, mentioning: ["array.gguf"])
        // A tensor of an unknown ggml type id.
        var tensor = header(version: 3, tensorCount: 1, keyValueCount: 0)
        tensor += withUnsafeBytes(of: UInt64(1).littleEndian) { Array($0) } + Array("t".utf8)
        tensor += withUnsafeBytes(of: UInt32(1).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt64(32).littleEndian) { Array($0) }
        tensor += withUnsafeBytes(of: UInt32(99).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt64(0).littleEndian) { Array($0) }
        tensor += [UInt8](repeating: 0, count: 128)
        try expectLoadError(session, write("type.gguf", tensor), code: -32004, mentioning: ["type.gguf", "99"])
        XCTAssertNotNil(try session.request("model/list")["result"])
    }

    func testPickleCheckpointsAreRefusedAndNeverOpened() throws {
        let session = try DaemonSession()
        let pickle = write("pytorch_model.bin", [0x80, 0x04, 0x95] + [UInt8](repeating: 0, count: 16))
        try expectLoadError(session, pickle, code: -32002, mentioning: ["pickle"])
        try expectLoadError(session, directory, code: -32002, mentioning: ["pytorch_model.bin"])
        try expectLoadError(session, write("weights.pt", [1, 2, 3]), code: -32002, mentioning: ["weights.pt"])
    }

    func testMissingPathsAndUnknownHandles() throws {
        let session = try DaemonSession()
        let missing = try session.request("model/load", ["path": .string(directory + "/nope")])
        XCTAssertEqual(missing["error"]?["code"], -32001)
        XCTAssertEqual(missing["error"]?["data"]?["file"]?.stringValue, directory + "/nope")
        for method in ["model/info", "model/unload", "model/save"] {
            var params: JSONObject = ["model": "ghost"]
            if method == "model/save" { params["path"] = .string(directory + "/x.safetensors") }
            let response = try session.request(method, .object(params))
            XCTAssertEqual(response["error"]?["code"], -32001, method)
            XCTAssertEqual(response["error"]?["data"]?["handle"], "ghost", method)
        }
    }

    func testSaveRefusesBadDTypesAndKeepsInputs() throws {
        guard let miniLM = SampleModels.miniLMDirectory else { throw XCTSkip("sample models not fetched") }
        let session = try DaemonSession()
        XCTAssertNotNil(try session.request("model/load", ["path": .string(miniLM), "name": "m"])["result"])
        let badDType = try session.request("model/save", ["model": "m", "path": .string(directory + "/a.safetensors"), "dtype": "Q4_0"])
        XCTAssertEqual(badDType["error"]?["data"]?["param"], "dtype")
        let badFormat = try session.request("model/save", ["model": "m", "path": .string(directory + "/a"), "format": "onnx"])
        XCTAssertEqual(badFormat["error"]?["data"]?["param"], "format")
        let bert = try session.request("model/save", ["model": "m", "path": .string(directory + "/m.gguf")])
        XCTAssertEqual(bert["error"]?["code"], -32002, "GGUF export of BERT is not implemented and says so")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/m.gguf"))
        let source = miniLM + "/model.safetensors"
        let onSource = try session.request("model/save", ["model": "m", "path": .string(source), "overwrite": true])
        XCTAssertEqual(onSource["error"]?["code"], -32602)
        XCTAssertEqual(try session.request("model/info", ["model": "m"])["result"]?["tensorCount"], 104)
    }
}
