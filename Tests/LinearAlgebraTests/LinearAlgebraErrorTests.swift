import LinearAlgebra
import XCTest

final class LinearAlgebraErrorTests: XCTestCase {
    func testDescriptionsNameTheRoutineAndInfo() {
        let failure = LinearAlgebraError.lapackFailure(routine: "sgesdd", info: 3)
        XCTAssertEqual(failure.description, "sgesdd failed with info = 3 (did not converge)")
        XCTAssertTrue(LinearAlgebraError.lapackFailure(routine: "dgeqrf", info: -4).description.contains("argument 4"))
        XCTAssertEqual(LinearAlgebraError.shapeMismatch(operation: "sgemm", shapes: [[2, 3], [4, 5]]).description,
                       "sgemm: incompatible shapes [2, 3], [4, 5]")
        XCTAssertTrue(LinearAlgebraError.notPositiveDefinite(routine: "dpotrf", leadingMinor: 2, damping: 0.01)
            .description.contains("dpotrf"))
        XCTAssertTrue(LinearAlgebraError.singularFactor(routine: "dpotri", diagonalIndex: 2).description.contains("dpotri"))
    }
}
