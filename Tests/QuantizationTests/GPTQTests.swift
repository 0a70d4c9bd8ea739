import LinearAlgebra
import Tensors
import XCTest
@testable import Quantization

final class GPTQTests: XCTestCase {
    /// GPTQ's calibrated output error ‖X(W − Q)ᵀ‖ must be at most this fraction of RTN's on the
    /// same grid with these correlated inputs (measured 0.54–0.55 for int4 g64, int3 symmetric
    /// per-channel, nf4 g64, int4 g32 act-order; 0.68 at int2).
    static let requiredOutputGain = 0.7

    /// Correlated Gaussian inputs `X = Z·M` (`Z` i.i.d., `M` a random mixing with a decaying
    /// spectrum), `[tokens, features]`, and `H = XᵀX` in Float64.
    static func correlatedInputs(tokens: Int, features: Int, seed: UInt64) -> (Matrix<Float>, LayerCalibration) {
        var generator = SeededRandomGenerator(seed: seed)
        let z: Matrix<Float> = generator.gaussianMatrix(rowCount: tokens, columnCount: features)
        var mixing: Matrix<Float> = generator.gaussianMatrix(rowCount: features, columnCount: features)
        for row in 0..<features { for column in 0..<features { mixing[row, column] *= Float(1 / (1 + 0.1 * Double(column))) } }
        for i in 0..<features { mixing[i, i] += 2 }
        let x = try! LinearAlgebra.multiply(z, mixing)
        let gram = LinearAlgebra.gram(x)
        return (x, LayerCalibration(gram: gram, tokenCount: tokens, meanAbsolute: [], rootMeanSquare: []))
    }

    static func outputError(_ x: Matrix<Float>, _ weight: Matrix<Float>, _ approximation: Matrix<Float>) -> Double {
        var difference = weight
        for index in difference.values.indices { difference.values[index] -= approximation.values[index] }
        return try! LinearAlgebra.multiply(x, difference, transposeB: true).frobeniusNorm
    }

    func testLowerOutputErrorThanRTNOnEveryGrid() throws {
        let (x, calibration) = Self.correlatedInputs(tokens: 1024, features: 256, seed: 1)
        let weight = GridTestSupport.gaussian(96, 256, seed: 2, standardDeviation: 0.05)
        let grids: [(QuantizationSpec, QuantizationSpec)] = [
            (gptq(bits: 4, groupSize: 64, grid: .int), QuantizationSpec(method: .int, bits: 4, groupSize: 64, symmetric: false)),
            (gptq(bits: 3, groupSize: 0, grid: .int, symmetric: true), QuantizationSpec(method: .int, bits: 3, groupSize: 0, symmetric: true)),
            (gptq(bits: 4, groupSize: 64, grid: .nf), QuantizationSpec(method: .nf, bits: 4, groupSize: 64)),
            (gptq(bits: 4, groupSize: 32, grid: .int, actOrder: true), QuantizationSpec(method: .int, bits: 4, groupSize: 32, symmetric: false)),
        ]
        for (gptqSpec, rtnSpec) in grids {
            let quantized = try GPTQQuantizer.quantizeGrid(weight, spec: gptqSpec, calibration: calibration)
            let rtn = try Quantizer.quantize(weight, name: "w", spec: rtnSpec)
            let gptqError = Self.outputError(x, weight, quantized.dequantized())
            let rtnError = Self.outputError(x, weight, rtn.dequantized())
            XCTAssertLessThan(gptqError, rtnError * Self.requiredOutputGain, "\(gptqSpec.gptq.grid) \(gptqSpec.bits)-bit g\(gptqSpec.groupSize) actOrder \(gptqSpec.gptq.actOrder)")
            GridTestSupport.assertDequantizationPathsAgree(quantized)
        }
    }

    /// GPTQ trades weight error for output error: it pushes rounding error into input directions
    /// the calibration data rarely excites, so its weight error exceeds RTN's (measured ≈ 2× with
    /// these correlated inputs: 0.19 vs 0.093 on MiniLM q, 0.187 vs 0.091 on N(0, 1)). Budget:
    /// 2.5× the INT4 asymmetric RTN budget on the same weights (IntegerGridTests).
    static let weightErrorAllowance = 2.5

    func testMiniLMWeightBudgetAndOutputGain() throws {
        let (name, weight) = try GridTestSupport.miniLMWeights()[0]
        let (x, calibration) = Self.correlatedInputs(tokens: 1024, features: weight.columnCount, seed: 12)
        let quantized = try GPTQQuantizer.quantizeGrid(weight, spec: gptq(bits: 4, groupSize: 64, grid: .int, actOrder: true), calibration: calibration)
        let rtn = try IntegerGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .int, bits: 4, groupSize: 64, symmetric: false))
        XCTAssertLessThan(GridTestSupport.relativeError(weight, quantized.dequantized()),
                          IntegerGridTests.miniLMBudgets[4]! * Self.weightErrorAllowance, name)
        XCTAssertLessThan(Self.outputError(x, weight, quantized.dequantized()),
                          Self.outputError(x, weight, rtn.dequantized()) * Self.requiredOutputGain, name)
        let gaussian = GridTestSupport.gaussian(64, 256, seed: 11)
        let (_, gaussianCalibration) = Self.correlatedInputs(tokens: 1024, features: 256, seed: 13)
        let onGaussian = try GPTQQuantizer.quantizeGrid(gaussian, spec: gptq(bits: 4, groupSize: 64, grid: .int), calibration: gaussianCalibration)
        XCTAssertLessThan(GridTestSupport.relativeError(gaussian, onGaussian.dequantized()),
                          IntegerGridTests.gaussianBudgets[4]! * Self.weightErrorAllowance)
    }

    func testActOrderStoresGroupIndexAndGroupsAreFitted() throws {
        let (_, calibration) = Self.correlatedInputs(tokens: 512, features: 128, seed: 3)
        let weight = GridTestSupport.gaussian(16, 128, seed: 4)
        let quantized = try GPTQQuantizer.quantizeGrid(weight, spec: gptq(bits: 4, groupSize: 32, grid: .int, actOrder: true), calibration: calibration)
        let groupIndex = try XCTUnwrap(quantized.groupIndex)
        XCTAssertEqual(groupIndex.count, 128)
        XCTAssertEqual((0..<4).map { g in groupIndex.filter { $0 == g }.count }, [32, 32, 32, 32])
        XCTAssertNotEqual(groupIndex, groupIndex.sorted(), "act-order permutes the columns")
        XCTAssertEqual(quantized.bitsPerWeight, 4 + (16 + 4) / 32.0 + 32.0 / 16)
        // Every group's parameters were fitted: distinct scales, and codes that use the grid's range.
        XCTAssertGreaterThan(Set(quantized.scales).count, quantized.scales.count / 2)
        XCTAssertEqual(quantized.codes.max(), 15)
        XCTAssertEqual(quantized.codes.min(), 0)
    }

    func testFastPathEqualsScalarReference() throws {
        let (_, calibration) = Self.correlatedInputs(tokens: 256, features: 96, seed: 5)
        let weight = GridTestSupport.gaussian(20, 96, seed: 6)
        // One block (96 ≤ 128): the same operations in the same order, so bit-exact.
        for spec in [gptq(bits: 4, groupSize: 32, grid: .int), gptq(bits: 3, groupSize: 0, grid: .nf, actOrder: true)] {
            let fast = try GPTQQuantizer.quantizeGrid(weight, spec: spec, calibration: calibration)
            let reference = try GPTQQuantizer.quantizeGridReference(weight, spec: spec, calibration: calibration)
            GridTestSupport.assertIdentical(fast, reference)
        }
        // Several blocks: sgemm sums in another order, so a few codes near a rounding boundary
        // may flip; at most `flipBudget` of them, and the objective agrees to 1%.
        let flipBudget = 0.01
        var spec = gptq(bits: 4, groupSize: 16, grid: .int, actOrder: true)
        spec.gptq.blockSize = 16
        let fast = try GPTQQuantizer.quantizeGrid(weight, spec: spec, calibration: calibration)
        let reference = try GPTQQuantizer.quantizeGridReference(weight, spec: spec, calibration: calibration)
        let flips = zip(fast.codes, reference.codes).filter { $0 != $1 }.count
        XCTAssertLessThanOrEqual(Double(flips), flipBudget * Double(fast.codes.count))
        let (x, _) = Self.correlatedInputs(tokens: 256, features: 96, seed: 5)
        let (a, b) = (Self.outputError(x, weight, fast.dequantized()), Self.outputError(x, weight, reference.dequantized()))
        XCTAssertEqual(a, b, accuracy: 0.01 * b)
    }

    func testDeterministicAndDeadColumns() throws {
        var (_, calibration) = Self.correlatedInputs(tokens: 256, features: 64, seed: 7)
        var gram = calibration.gram
        for k in 0..<64 { gram[5, k] = 0; gram[k, 5] = 0 }  // input 5 never fires
        calibration = LayerCalibration(gram: gram, tokenCount: 256, meanAbsolute: [], rootMeanSquare: [])
        let weight = GridTestSupport.gaussian(8, 64, seed: 8)
        let spec = gptq(bits: 4, groupSize: 32, grid: .int, actOrder: true)
        let first = try GPTQQuantizer.quantizeGrid(weight, spec: spec, calibration: calibration)
        let second = try GPTQQuantizer.quantizeGrid(weight, spec: spec, calibration: calibration)
        GridTestSupport.assertIdentical(first, second)
        let dequantized = first.dequantized()
        for row in 0..<8 { XCTAssertEqual(dequantized[row, 5], 0, "a dead input's weight is zeroed") }
    }

    func testBadInput() throws {
        let weight = GridTestSupport.gaussian(4, 64, seed: 9)
        XCTAssertThrowsError(try Quantizer.quantize(weight, name: "w", spec: QuantizationSpec(method: .gptq))) { error in
            XCTAssertEqual((error as? QuantizationError)?.parameter, "calibration")
        }
        let (_, small) = Self.correlatedInputs(tokens: 64, features: 32, seed: 1)
        XCTAssertThrowsError(try GPTQQuantizer.quantizeGrid(weight, spec: QuantizationSpec(method: .gptq), calibration: small)) { error in
            XCTAssertEqual((error as? QuantizationError)?.parameter, "calibration")
        }
        let (_, calibration) = Self.correlatedInputs(tokens: 128, features: 64, seed: 1)
        XCTAssertThrowsError(try GPTQQuantizer.quantizeGrid(weight, spec: gptq(bits: 5, groupSize: 64, grid: .nf), calibration: calibration)) { error in
            XCTAssertEqual((error as? QuantizationError)?.parameter, "bits")
        }
        XCTAssertThrowsError(try GPTQQuantizer.quantizeGrid(weight, spec: gptq(bits: 4, groupSize: 48, grid: .int), calibration: calibration)) { error in
            XCTAssertEqual((error as? QuantizationError)?.parameter, "groupSize")
        }
        let perChannel = try Quantizer.quantize(GridTestSupport.gaussian(3, 37, seed: 2), name: "odd",
                                                spec: gptq(bits: 4, groupSize: 0, grid: .int),
                                                calibration: Self.correlatedInputs(tokens: 80, features: 37, seed: 3).1)
        XCTAssertEqual(perChannel.dequantized().shape, [3, 37])
    }

    private func gptq(bits: Int, groupSize: Int, grid: QuantizationMethod, symmetric: Bool = false, actOrder: Bool = false) -> QuantizationSpec {
        var options = GPTQOptions()
        options.grid = grid
        options.actOrder = actOrder
        return QuantizationSpec(method: .gptq, bits: bits, groupSize: groupSize, symmetric: symmetric, gptq: options)
    }
}
