import Checkpoints
import JSON
import JSONRPC
import LoquatSupport
import XCTest
@testable import LoquatServer

final class ParamsAndErrorsTests: XCTestCase {
    private func call(_ params: JSONValue?) -> IncomingCall {
        IncomingCall(id: 1, method: "model/load", params: params)
    }

    func testParamsNameTheOffendingParameter() throws {
        XCTAssertThrowsError(try Params(call(["path": "/x", "nmae": "typo"]), allowed: ["path", "name"])) { error in
            XCTAssertEqual((error as? RPCError)?.data?["param"], "nmae")
        }
        let params = try Params(call(["path": "/x", "overwrite": "yes", "format": "GGUF", "workDoneToken": 3]),
                                allowed: ["path", "overwrite", "format"])
        XCTAssertEqual(try params.requiredString("path"), "/x")
        XCTAssertThrowsError(try params.optionalBool("overwrite")) { error in
            XCTAssertEqual((error as? RPCError)?.code, RPCError.Code.invalidParams)
            XCTAssertEqual((error as? RPCError)?.data?["param"], "overwrite")
        }
        XCTAssertEqual(try params.optionalChoice("format", ["safetensors", "gguf"]), "gguf")
        XCTAssertThrowsError(try Params(call(.array([])), allowed: []))
        XCTAssertThrowsError(try Params(call(["path": ""]), allowed: ["path"]).requiredString("path"))
    }

    func testErrorMappingTable() {
        let missing = ErrorMapping.rpcError(CheckpointError.notFound(path: "/m"))
        XCTAssertEqual(missing.code, RPCError.Code.notFound)
        XCTAssertEqual(missing.data?["file"], "/m")
        XCTAssertEqual(ErrorMapping.rpcError(CheckpointError.pickleRefused(path: "/p.bin")).code, RPCError.Code.unsupported)
        let unknown = ErrorMapping.rpcError(WorkspaceError.unknownHandle("h", known: ["a"]))
        XCTAssertEqual(unknown.code, RPCError.Code.notFound)
        XCTAssertEqual(unknown.data?["handle"], "h")
        XCTAssertTrue(unknown.message.contains("loaded: a"))
        XCTAssertEqual(ErrorMapping.rpcError(WorkspaceError.handleTaken("h")).data?["param"], "name")
        let io = ErrorMapping.rpcError(AtomicFileWriter.WriteError(path: "/o", reason: "disk full"))
        XCTAssertEqual(io.code, RPCError.Code.ioError)
        XCTAssertEqual(io.data?["reason"], "/o: disk full")
    }

    func testWorkspaceHandles() throws {
        let workspace = Workspace()
        XCTAssertEqual(try workspace.newHandle(requested: nil, prefix: "model"), "model-1")
        XCTAssertEqual(try workspace.newHandle(requested: "base", prefix: "model"), "base")
        XCTAssertThrowsError(try workspace.model("base"))
        XCTAssertThrowsError(try workspace.remove("base"))
        XCTAssertTrue(workspace.allModels().isEmpty)
    }
}
