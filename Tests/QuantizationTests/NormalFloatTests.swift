import Foundation
import Tensors
import XCTest
@testable import Quantization

final class NormalFloatTests: XCTestCase {
    /// bitsandbytes' NF4 table (`bitsandbytes/functional.py` `get_4bit_type("nf4")`); LoftQ's
    /// recipe reproduces it to within `bnbAgreement`.
    static let bitsAndBytesNF4: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    ]
    /// Agreement with bnb's table: a few Float32 ulps (bnb rounded its table from a Float64 build).
    static let bnbAgreement: Float = 1e-6

    func testCodebooksMatchAlgorithmsReference() {
        XCTAssertEqual(NormalFloatCodebook.values(bits: 2), [-1, 0, 0.3379152, 1], accuracy: 1e-6)
        XCTAssertEqual(NormalFloatCodebook.values(bits: 3), [-1, -0.4786292, -0.2171418, 0, 0.1609302, 0.3379152, 0.562617, 1],
                       accuracy: 1e-6)
        XCTAssertEqual(NormalFloatCodebook.values(bits: 4), Self.bitsAndBytesNF4, accuracy: Self.bnbAgreement)
        for bits in [2, 3, 4, 8] {
            let codebook = NormalFloatCodebook.values(bits: bits)
            XCTAssertEqual(codebook.count, 1 << bits)
            XCTAssertEqual(codebook, codebook.sorted())
            XCTAssertEqual(codebook.first, -1)
            XCTAssertEqual(codebook.last, 1)
            XCTAssertEqual(codebook.filter { $0 == 0 }.count, 1)
            XCTAssertEqual(codebook.filter { $0 > 0 }.count, codebook.filter { $0 < 0 }.count + 1, "LoftQ's asymmetric variant")
        }
    }

    /// Bit-exact against the generator's scipy/numpy build (Fixtures/normal-float/README.md).
    func testCodebooksMatchGoldens() throws {
        let golden = try goldens()
        for bits in [2, 3, 4, 8] {
            let expected = (golden["codebook\(bits)"] as? [UInt32]) ?? (golden["codebook\(bits)"] as? [NSNumber])?.map { $0.uint32Value }
            XCTAssertEqual(NormalFloatCodebook.values(bits: bits).map(\.bitPattern), expected, "NF\(bits)")
        }
    }

    /// LoftQ `quant_nf4_block` on the generator's matrix: codes bit-exact.
    func testQuantizeMatchesGoldens() throws {
        let golden = try goldens()
        let rows = (golden["rows"] as! NSNumber).intValue, columns = (golden["columns"] as! NSNumber).intValue
        let weight = Matrix(rowCount: rows, columnCount: columns,
                            values: (golden["weight"] as! [NSNumber]).map { Float(bitPattern: $0.uint32Value) })
        for bits in [2, 3, 4, 8] {
            let quantized = try NormalFloatGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .nf, bits: bits, groupSize: 64))
            XCTAssertEqual(quantized.codes.map { Int($0) }, (golden["codes\(bits)"] as! [NSNumber]).map(\.intValue), "NF\(bits) codes")
            XCTAssertEqual(quantized.dequantized().values.map(\.bitPattern),
                           (golden["dequantized\(bits)"] as! [NSNumber]).map(\.uint32Value), "NF\(bits) values")
        }
    }

    func testNearestCodeSearchEqualsScan() {
        for bits in [2, 3, 4, 8] {
            let levels = NormalFloatCodebook.values(bits: bits)
            var probes: [Float] = stride(from: Float(-1.2), through: 1.2, by: 0.0003).map { $0 }
            for index in 0..<(levels.count - 1) {
                let middle = (levels[index] + levels[index + 1]) / 2
                probes += [middle, middle.nextUp, middle.nextDown, levels[index]]
            }
            for u in probes {
                XCTAssertEqual(NormalFloatCodebook.nearestCode(u, levels), NormalFloatCodebook.nearestCodeReference(u, levels), "NF\(bits) u=\(u)")
            }
        }
    }

    /// Relative error budgets on N(0, 1), group 64. Measured 0.562, 0.200, 0.092, 0.0054 (NF2 is
    /// {−1, 0, 0.34, 1}: no level for mid-size negatives, worse than asymmetric INT2). +15%.
    static let gaussianBudgets: [Int: Double] = [2: 0.65, 3: 0.23, 4: 0.106, 8: 0.0063]

    func testGaussianBudgetsFastPathAndOddShapes() throws {
        let weight = GridTestSupport.gaussian(32, 192, seed: 4)
        for (bits, budget) in Self.gaussianBudgets {
            let spec = QuantizationSpec(method: .nf, bits: bits, groupSize: 64)
            let quantized = try NormalFloatGrid.quantizeGrid(weight, spec: spec)
            XCTAssertLessThan(GridTestSupport.relativeError(weight, quantized.dequantized()), budget, "NF\(bits)")
            GridTestSupport.assertIdentical(quantized, GroupedGridQuantizer.quantizeReference(weight, spec: spec, rule: NormalFloatGrid.rule(spec)))
            GridTestSupport.assertDequantizationPathsAgree(quantized)
            XCTAssertEqual(quantized.bitsPerWeight, Double(bits) + 32.0 / 64 + Double((1 << bits) * 32) / Double(weight.values.count))
        }
        let odd = GridTestSupport.gaussian(3, 37, seed: 9)
        let perChannel = try Quantizer.quantize(odd, name: "odd", spec: QuantizationSpec(method: .nf, bits: 4, groupSize: 0))
        XCTAssertLessThan(GridTestSupport.relativeError(odd, perChannel.dequantized()), 0.2)
        XCTAssertThrowsError(try Quantizer.quantize(odd, name: "odd", spec: QuantizationSpec(method: .nf, bits: 4, groupSize: 16)))
        XCTAssertThrowsError(try Quantizer.quantize(odd, name: "odd", spec: QuantizationSpec(method: .nf, bits: 5, groupSize: 0)))
    }

    /// MiniLM layer-0 budgets, group 64: worst layer measured 0.573, 0.205, 0.094, 0.0061. +15%.
    static let miniLMBudgets: [Int: Double] = [2: 0.66, 3: 0.236, 4: 0.108, 8: 0.0070]

    func testMiniLMBudgetsMonotonicAndBelowAbsmaxINT4() throws {
        for (name, weight) in try GridTestSupport.miniLMWeights() {
            var previous = Double.infinity
            for bits in [2, 3, 4, 8] {
                let quantized = try NormalFloatGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .nf, bits: bits, groupSize: 64))
                let error = GridTestSupport.relativeError(weight, quantized.dequantized())
                XCTAssertLessThan(error, Self.miniLMBudgets[bits]!, "\(name) NF\(bits)")
                XCTAssertLessThan(error, previous, "\(name): error must fall with bits")
                previous = error
            }
            let nf4 = try NormalFloatGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .nf, bits: 4, groupSize: 64))
            let int4 = try IntegerGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .int, bits: 4, groupSize: 64, symmetric: true))
            XCTAssertLessThan(GridTestSupport.relativeError(weight, nf4.dequantized()), GridTestSupport.relativeError(weight, int4.dequantized()),
                              "\(name): NF4 should beat absmax INT4 at the same group size")
        }
    }

    /// SmolLM2 (Q4_1-decoded weights): NF-k errors rise as bits fall, and NF4 beats absmax INT4.
    func testSmolLM2MonotonicAndBelowAbsmaxINT4() throws {
        for (name, weight) in try GridTestSupport.smolLM2Weights() {
            var previous = Double.infinity
            for bits in [2, 3, 4, 8] {
                let quantized = try NormalFloatGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .nf, bits: bits, groupSize: 64))
                let error = GridTestSupport.relativeError(weight, quantized.dequantized())
                XCTAssertLessThan(error, previous, "\(name): NF error must fall with bits")
                previous = error
            }
            let nf4 = try NormalFloatGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .nf, bits: 4, groupSize: 64))
            let int4 = try IntegerGrid.quantizeGrid(weight, spec: QuantizationSpec(method: .int, bits: 4, groupSize: 64, symmetric: true))
            XCTAssertLessThan(GridTestSupport.relativeError(weight, nf4.dequantized()), GridTestSupport.relativeError(weight, int4.dequantized()), name)
        }
    }

    private func goldens() throws -> [String: Any] {
        let path = GridTestSupport.fixtureDirectory("normal-float") + "/normal_float_goldens.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
