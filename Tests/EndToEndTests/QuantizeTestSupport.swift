import Foundation
import JSON
import TestSupport
import XCTest

/// Helpers of the `quantize` end-to-end tests.
extension DaemonSession {
    /// The result of a request that must succeed.
    func result(_ method: String, _ params: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let response = try request(method, params)
        guard let result = response["result"] else {
            XCTFail("\(method) failed: \((try? JSON.serializeToString(response)) ?? "?")", file: file, line: line)
            throw DaemonClosed(stderr: "unexpected error response")
        }
        return result
    }

    /// The error of a request that must fail with `code`; checks `data.param` when given.
    @discardableResult
    func error(_ method: String, _ params: JSONValue, code: Int, param: String? = nil,
               file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let response = try request(method, params)
        let shown = (try? JSON.serializeToString(response)) ?? "?"
        guard let error = response["error"] else {
            XCTFail("\(method) should fail with \(code): \(shown)", file: file, line: line)
            return .null
        }
        XCTAssertEqual(error["code"]?.intValue, code, shown, file: file, line: line)
        XCTAssertNotNil(error["data"]?["reason"], "every error has data.reason: \(shown)", file: file, line: line)
        if let param { XCTAssertEqual(error["data"]?["param"]?.stringValue, param, shown, file: file, line: line) }
        return error
    }

    /// The quantizers `initialize` lists (what this build implements).
    func implementedQuantizers() throws -> [String] {
        try result("initialize", [:])["capabilities"]?["quantizers"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}

/// A daemon with both sample models loaded as `mini` (MiniLM) and `smol` (SmolLM2 GGUF).
func sampleModelSession() throws -> DaemonSession {
    guard let miniLM = SampleModels.miniLMDirectory, let smolLM2 = SampleModels.smolLM2GGUF else {
        throw XCTSkip("sample models not fetched")
    }
    let session = try DaemonSession()
    _ = try session.result("model/load", ["path": .string(miniLM), "name": "mini"])
    _ = try session.result("model/load", ["path": .string(smolLM2), "name": "smol"])
    return session
}

extension JSONValue {
    /// The ledger's layers of a quantize result.
    var ledger: [JSONValue] { self["layers"]?.arrayValue ?? [] }
}

/// The relative Frobenius distance of two equally long vectors, in Float64.
func relativeDistance(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        difference += (Double(x) - Double(y)) * (Double(x) - Double(y))
        norm += Double(y) * Double(y)
    }
    return norm == 0 ? 0 : (difference / norm).squareRoot()
}
