import Foundation
import XCTest
@testable import Checkpoints
import LoquatSupport
import Tensors

/// Hugging Face directories: sharded through the index, single file, and their errors.
final class SafetensorsCheckpointTests: SafetensorsTestCase {
    typealias F = SafetensorsFixtures

    private func tensor(_ name: String, _ values: [Float]) -> Tensor {
        Tensor(name: name, shape: [values.count], float32: values)
    }

    private func writeIndex(_ weightMap: [String: String]) {
        let entries = weightMap.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ", ")
        F.writeFile(Array("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {\(entries)}}".utf8),
                    temporaryPath(SafetensorsCheckpoint.indexFileName))
    }

    func testShardedDirectoryIsReadThroughTheIndex() throws {
        try SafetensorsWriter.write(tensors: [tensor("a", [1, 2]), tensor("b", [3])],
                                    to: temporaryPath("model-00001-of-00002.safetensors"), overwrite: false)
        try SafetensorsWriter.write(tensors: [tensor("c", [4, 5, 6])],
                                    to: temporaryPath("model-00002-of-00002.safetensors"), overwrite: false)
        writeIndex(["a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                    "c": "model-00002-of-00002.safetensors"])

        let checkpoint = try SafetensorsCheckpoint.open(directory: directory)
        XCTAssertEqual(checkpoint.indexPath, temporaryPath(SafetensorsCheckpoint.indexFileName))
        XCTAssertEqual(checkpoint.files, [temporaryPath("model-00001-of-00002.safetensors"), temporaryPath("model-00002-of-00002.safetensors")])
        XCTAssertEqual(checkpoint.tensors.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(try checkpoint.tensor(named: "c")?.decodedFloat32(), [4, 5, 6])
        XCTAssertEqual(checkpoint.metadata, ["format": "pt"])
        XCTAssertTrue(checkpoint.tensors.allSatisfy(\.storage.isMapped))
    }

    func testMissingShard() throws {
        try SafetensorsWriter.write(tensors: [tensor("a", [1])], to: temporaryPath("model-00001-of-00002.safetensors"), overwrite: false)
        writeIndex(["a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"])
        let index = temporaryPath(SafetensorsCheckpoint.indexFileName)
        XCTAssertThrowsError(try SafetensorsCheckpoint.open(directory: directory)) { error in
            XCTAssertEqual(error as? SafetensorsError, .shardMissing(index: index, tensor: "b", shard: "model-00002-of-00002.safetensors"))
            let text = "\(error)"
            XCTAssertTrue(text.contains(index) && text.contains("'b'") && text.contains("model-00002-of-00002.safetensors"), text)
        }
    }

    func testTensorMissingFromItsShard() throws {
        try SafetensorsWriter.write(tensors: [tensor("a", [1])], to: temporaryPath("model-00001-of-00001.safetensors"), overwrite: false)
        writeIndex(["a": "model-00001-of-00001.safetensors", "ghost": "model-00001-of-00001.safetensors"])
        XCTAssertThrowsError(try SafetensorsCheckpoint.open(directory: directory)) { error in
            XCTAssertEqual(error as? SafetensorsError, .tensorMissingFromShard(index: temporaryPath(SafetensorsCheckpoint.indexFileName),
                                                                                tensor: "ghost", shard: "model-00001-of-00001.safetensors"))
        }
    }

    func testIndexMayNotLeaveTheDirectory() {
        writeIndex(["a": "../elsewhere.safetensors"])
        XCTAssertThrowsError(try SafetensorsCheckpoint.open(directory: directory)) { error in
            guard case .invalidIndex? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
    }

    func testSingleFileDirectories() throws {
        try SafetensorsWriter.write(tensors: [tensor("x", [1])], to: temporaryPath("adapter_model.safetensors"), overwrite: false)
        XCTAssertEqual(try SafetensorsCheckpoint.open(directory: directory).tensors.map(\.name), ["x"])
        try SafetensorsWriter.write(tensors: [tensor("y", [1])], to: temporaryPath("other.safetensors"), overwrite: false)
        XCTAssertThrowsError(try SafetensorsCheckpoint.open(directory: directory)) { error in
            guard case .noCheckpoint(directory, _)? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
        // model.safetensors wins over other files.
        try SafetensorsWriter.write(tensors: [tensor("m", [1])], to: temporaryPath("model.safetensors"), overwrite: false)
        XCTAssertEqual(try SafetensorsCheckpoint.open(path: directory).tensors.map(\.name), ["m"])
        XCTAssertEqual(try SafetensorsCheckpoint.open(path: temporaryPath("other.safetensors")).tensors.map(\.name), ["y"])
    }

    func testShardPlanIsHuggingFaceGreedy() {
        let sizes = [6, 6, 2, 6, 2, 2]
        let tensors = sizes.enumerated().map { F.owned("t\($0.offset)", .u8, [$0.element], Array(repeating: 0, count: $0.element)) }
        let plan = SafetensorsWriter.planShards(tensors, maximumShardByteCount: 10)
        XCTAssertEqual(plan.map { $0.map(\.byteCount) }, [[6], [6, 2], [6, 2, 2]])
        let oversized = SafetensorsWriter.planShards([tensors[0], F.owned("big", .u8, [12], Array(repeating: 0, count: 12)), tensors[2]],
                                                     maximumShardByteCount: 10)
        XCTAssertEqual(oversized.map { $0.map(\.name) }, [["big"], ["t0", "t2"]])
        XCTAssertEqual(SafetensorsWriter.shardFileName(index: 1, count: 12), "model-00002-of-00012.safetensors")
    }

    func testShardedWriterRoundTripsWithATransformersIndex() throws {
        let tensors = [tensor("z.weight", [1, 2, 3, 4]), tensor("a.weight", [5, 6]), tensor("m.weight", [7, 8, 9])]
        let out = temporaryPath("out")
        let paths = try SafetensorsWriter.writeSharded(tensors: tensors, to: out, maximumShardByteCount: 20, overwrite: false)
        XCTAssertEqual(paths.map { FileSystem.fileName(of: $0) },
                       ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"])
        let index = String(decoding: F.readFile(out + "/model.safetensors.index.json"), as: UTF8.self)
        XCTAssertEqual(index, """
            {
              "metadata": {
                "total_size": 36
              },
              "weight_map": {
                "a.weight": "model-00002-of-00002.safetensors",
                "m.weight": "model-00002-of-00002.safetensors",
                "z.weight": "model-00001-of-00002.safetensors"
              }
            }

            """)
        let checkpoint = try SafetensorsCheckpoint.open(directory: out)
        XCTAssertEqual(Set(checkpoint.tensors.map(\.name)), ["z.weight", "a.weight", "m.weight"])
        XCTAssertEqual(try checkpoint.tensor(named: "m.weight")?.decodedFloat32(), [7, 8, 9])
        XCTAssertThrowsError(try SafetensorsWriter.writeSharded(tensors: tensors, to: out, maximumShardByteCount: 20, overwrite: false))

        // Everything in one shard: a plain model.safetensors and no index.
        let single = try SafetensorsWriter.writeSharded(tensors: tensors, to: temporaryPath("single"), overwrite: false)
        XCTAssertEqual(single, [temporaryPath("single") + "/model.safetensors"])
    }

    /// As in transformers, model.safetensors is preferred to an index beside it, so the sharded
    /// writer refuses to leave one that would shadow its shards.
    func testSingleFileShadowsAnIndex() throws {
        let tensors = [tensor("a", [1, 2, 3]), tensor("b", [4, 5, 6])]
        try SafetensorsWriter.writeSharded(tensors: tensors, to: directory, maximumShardByteCount: 12, overwrite: false)
        try SafetensorsWriter.write(tensors: [tensor("new", [1])], to: temporaryPath("model.safetensors"), overwrite: false)
        XCTAssertEqual(try SafetensorsCheckpoint.open(directory: directory).tensors.map(\.name), ["new"])
        XCTAssertThrowsError(try SafetensorsWriter.writeSharded(tensors: tensors, to: directory, maximumShardByteCount: 12, overwrite: true)) { error in
            guard case .writeFailed(self.temporaryPath("model.safetensors"), _)? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
    }

    func testPythonJSONStringEscaping() {
        XCTAssertEqual(SafetensorsWriter.pythonJSONString("a\"\\\u{7f}é\u{1F600}\n"), #""a\"\\\u007f\u00e9\ud83d\ude00\n""#)
    }
}
