import XCTest
@testable import Models

final class ModelsModuleTests: XCTestCase {
    func testForwardArchitecturesAreListed() {
        XCTAssertTrue(ModelsModule.forwardArchitectures.allSatisfy { !$0.isEmpty })
    }
}
