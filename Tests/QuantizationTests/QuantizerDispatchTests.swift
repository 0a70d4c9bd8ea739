import Tensors
import XCTest
@testable import Quantization

final class QuantizerDispatchTests: XCTestCase {
    func testSpecValidationNamesTheParameter() {
        func parameter(_ spec: QuantizationSpec, columns: Int = 128) -> String? {
            do { try spec.validate(columnCount: columns); return nil } catch { return (error as? QuantizationError)?.parameter }
        }
        XCTAssertEqual(parameter(QuantizationSpec(method: .int, bits: 9)), "bits")
        XCTAssertEqual(parameter(QuantizationSpec(method: .nf, bits: 5)), "bits")
        XCTAssertEqual(parameter(QuantizationSpec(method: .int, groupSize: 48)), "groupSize")
        XCTAssertEqual(parameter(QuantizationSpec(method: .nf4, groupSize: 48)), "groupSize")
        XCTAssertEqual(parameter(QuantizationSpec(method: .int, doubleQuant: true)), "doubleQuant")
        XCTAssertEqual(parameter(QuantizationSpec(method: .int, outliers: .fraction(2))), "outliers")
        XCTAssertNil(parameter(QuantizationSpec(method: .int, groupSize: 0)))
    }

    func testNonFiniteWeightsAreRefusedWithTheirPosition() {
        var weight = Matrix<Float>(zeros: 2, 64)
        weight[1, 3] = .nan
        XCTAssertThrowsError(try NonFiniteCheck.requireFinite(weight, layer: "l")) { error in
            XCTAssertEqual(error as? QuantizationError, .nonFiniteWeight(layer: "l", row: 1, column: 3))
        }
    }
}
