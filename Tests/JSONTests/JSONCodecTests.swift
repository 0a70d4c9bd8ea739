import XCTest
@testable import JSON

final class JSONCodecTests: XCTestCase {
    func testRoundTripKeepsKeyOrderAndTypes() throws {
        let text = #"{"z":1,"a":[true,false,null],"m":{"x":"é\u0000y","n":-9223372036854775808},"f":0.1}"#
        let value = try JSON.parse(text)
        XCTAssertEqual(value["z"], .integer(1))
        XCTAssertEqual(value["a"], [true, false, nil])
        XCTAssertEqual(value["m"]?["x"], .string("é\u{0}y"))
        XCTAssertEqual(value["m"]?["n"], .integer(Int64.min))
        XCTAssertEqual(value["f"], .number(0.1))
        XCTAssertEqual(value.objectValue?.keys, ["z", "a", "m", "f"])
        let again = try JSON.parse(try JSON.serialize(value))
        XCTAssertEqual(again, value)
    }

    func testSerializationIsCompactAndExact() throws {
        let value: JSONValue = ["b": 1, "a": .number(1.0 / 3.0), "s": "line\n\"q\"", "nan": .double(.nan)]
        let text = try JSON.serializeToString(value)
        XCTAssertEqual(text, #"{"b":1,"a":0.33333333333333331,"s":"line\n\"q\"","nan":null}"#)
        XCTAssertEqual(try JSON.parse(text)["a"]?.doubleValue, 1.0 / 3.0)
    }

    func testDuplicateKeysAreRejected() {
        XCTAssertThrowsError(try JSON.parse(#"{"a":1,"a":2}"#)) { error in
            guard case let JSONError.invalid(message, _, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("duplicate"), message)
        }
    }

    func testMalformedTextNamesThePosition() {
        XCTAssertThrowsError(try JSON.parse("{\"a\":\n [1,2")) { error in
            guard case let JSONError.invalid(_, line, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 2)
        }
        XCTAssertThrowsError(try JSON.parse(""))
        XCTAssertThrowsError(try JSON.parse("{} {}"))
    }

    func testSizeCapIsCheckedBeforeParsing() {
        XCTAssertThrowsError(try JSON.parse("[1,2,3]", maximumByteCount: 4)) { error in
            XCTAssertEqual(error as? JSONError, .tooLarge(byteCount: 7, limit: 4))
        }
    }

    func testScalarsAtTopLevelAndIntegerAccessors() throws {
        XCTAssertEqual(try JSON.parse("42"), .integer(42))
        XCTAssertEqual(try JSON.parse("4.0").intValue, 4)
        XCTAssertNil(try JSON.parse("4.5").intValue)
        XCTAssertEqual(try JSON.parse("\"x\"").stringValue, "x")
    }

    func testDeepNestingFailsCleanly() {
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        XCTAssertThrowsError(try JSON.parse(deep))
    }
}
