import XCTest
@testable import LoquatServer

/// The glob matcher of `quantize`'s `targets` / `exclude` / `plan` patterns.
final class QuantizeGlobTests: XCTestCase {
    private func matches(_ pattern: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        do { return try GlobPattern(pattern).matches(name) } catch {
            XCTFail("\(pattern): \(error)", file: file, line: line)
            return false
        }
    }

    func testStarQuestionAndSets() {
        XCTAssertTrue(matches("model.layers.*.self_attn.q_proj.weight", "model.layers.12.self_attn.q_proj.weight"))
        XCTAssertTrue(matches("*", ""))
        XCTAssertTrue(matches("*.weight", "a.b.c.weight"), "* crosses dots, as fnmatch")
        XCTAssertFalse(matches("*.weight", "a.b.c.bias"))
        XCTAssertTrue(matches("layer.?.w", "layer.7.w"))
        XCTAssertFalse(matches("layer.?.w", "layer.17.w"))
        XCTAssertTrue(matches("layer.[0-2].w", "layer.1.w"))
        XCTAssertFalse(matches("layer.[0-2].w", "layer.3.w"))
        XCTAssertTrue(matches("layer.[!0-2].w", "layer.3.w"))
        XCTAssertTrue(matches("layer.[^0-2].w", "layer.9.w"))
        XCTAssertFalse(matches("layer.[!0-2].w", "layer.0.w"))
        XCTAssertTrue(matches("x[]]y", "x]y"), "a ] first in a set is a member")
        XCTAssertTrue(matches("a\\*b", "a*b"))
        XCTAssertFalse(matches("a\\*b", "axxb"))
        XCTAssertTrue(matches("*a*a*a*", "banana.a"))
        XCTAssertFalse(matches("*a*a*a*a*", "banana"))
        XCTAssertFalse(matches("abc", "abcd"), "the whole name must match")
    }

    func testBracesExpandToAlternatives() {
        let pattern = "model.layers.*.self_attn.{q,k,v,o}_proj.weight"
        for projection in ["q", "k", "v", "o"] {
            XCTAssertTrue(matches(pattern, "model.layers.3.self_attn.\(projection)_proj.weight"))
        }
        XCTAssertFalse(matches(pattern, "model.layers.3.self_attn.x_proj.weight"))
        XCTAssertTrue(matches("{,bert.}encoder.layer.*.output.dense.weight", "encoder.layer.0.output.dense.weight"))
        XCTAssertTrue(matches("{,bert.}encoder.layer.*.output.dense.weight", "bert.encoder.layer.0.output.dense.weight"))
        XCTAssertTrue(matches("a{b,c{d,e}}f", "acef"), "nested braces")
        XCTAssertTrue(matches("{[0-1],x}y", "1y"), "sets inside braces")
    }

    func testMalformedPatternsAreRefused() {
        for bad in ["layer.[0-2", "model.{q,k", "x}", "trailing\\", "[z-a]", "[]"] {
            XCTAssertThrowsError(try GlobPattern(bad), bad)
        }
    }
}
