import LoquatSupport
import Tensors
import XCTest
@testable import Quantization

final class FP8Tests: XCTestCase {
    /// Dense sweep: every 8209th Float32 bit pattern from 2⁻¹⁹ to 2¹⁷ (both formats' whole range,
    /// ≈ 29k values), every 2¹⁹th over all finite floats, both signs, plus every FP8 value, every
    /// midpoint between neighbours and their ±1 ulp. (The exhaustive reference is slow in debug.)
    func testFastEncoderEqualsExhaustiveSearch() {
        for format in [FP8Format.e4m3, .e5m2] {
            let reference = { (value: Float) -> UInt8 in format == .e4m3 ? FloatFormats.e4m3(from: value) : FloatFormats.e5m2(from: value) }
            var probes = [Float]()
            for bits in stride(from: Float(0x1p-19).bitPattern, through: Float(0x1p17).bitPattern, by: 8209) { probes.append(Float(bitPattern: bits)) }
            for bits in stride(from: UInt32(0), through: 0x7F80_0000, by: 1 << 19) { probes.append(Float(bitPattern: bits)) }
            let finite = (0..<128).map { FP8Encoding.decode(UInt8($0), format) }.filter(\.isFinite)
            for index in 0..<(finite.count - 1) {
                let middle = (finite[index] + finite[index + 1]) / 2
                probes += [finite[index], middle, middle.nextUp, middle.nextDown]
            }
            let maximum = FP8Encoding.maxFinite(format)
            probes += [maximum, maximum.nextUp, maximum * 1.1, 1e30, .infinity, .leastNonzeroMagnitude, 0]
            var mismatches = 0
            for magnitude in probes {
                for value in [magnitude, -magnitude] where FP8Encoding.encode(value, format) != reference(value) {
                    mismatches += 1
                    if mismatches < 5 { XCTFail("\(format) \(value): \(FP8Encoding.encode(value, format)) vs \(reference(value))") }
                }
            }
            XCTAssertEqual(mismatches, 0, "\(format): \(probes.count * 2) probes")
            XCTAssertEqual(FP8Encoding.encode(.nan, format), 0x7F)
        }
    }

    func testDecodeTableMatchesLoquatSupport() {
        for code in 0...255 {
            let byte = UInt8(code)
            for (format, reference) in [(FP8Format.e4m3, FloatFormats.float(fromE4M3: byte)), (.e5m2, FloatFormats.float(fromE5M2: byte))] {
                let value = FP8Encoding.decode(byte, format)
                XCTAssertTrue(value.bitPattern == reference.bitPattern || (value.isNaN && reference.isNaN), "\(format) 0x\(String(code, radix: 16))")
            }
        }
    }

    /// Relative error budgets on N(0, 1) per channel. FP8 rounding is relative: half an ulp is
    /// 2⁻⁴ (E4M3) or 2⁻³ (E5M2) of the value, about 2.3% / 4.6% rms for Gaussian weights; the
    /// budgets allow 30% more.
    static let gaussianBudgets: [FP8Format: Double] = [.e4m3: 0.031, .e5m2: 0.062]

    func testQuantizeWithinBudgetAndAbsmaxLandsOnMaxFinite() throws {
        let weight = GridTestSupport.gaussian(16, 96, seed: 14, standardDeviation: 0.02)
        for format in [FP8Format.e4m3, .e5m2] {
            for groupSize in [0, 32] {
                let spec = QuantizationSpec(method: .fp8, groupSize: groupSize, fp8Format: format)
                let quantized = try FP8Grid.quantizeGrid(weight, spec: spec)
                XCTAssertLessThan(GridTestSupport.relativeError(weight, quantized.dequantized()), Self.gaussianBudgets[format]!, "\(format) g\(groupSize)")
                let maxCode: UInt8 = format == .e4m3 ? 0x7E : 0x7B
                let size = groupSize == 0 ? 96 : groupSize
                for group in 0..<(weight.values.count / size) {
                    let codes = quantized.codes[(group * size)..<((group + 1) * size)]
                    XCTAssertTrue(codes.contains { $0 & 0x7F == maxCode }, "the group's absmax encodes as ±max finite")
                }
                GridTestSupport.assertIdentical(quantized, GroupedGridQuantizer.quantizeReference(weight, spec: spec, rule: FP8Grid.rule(spec)))
                GridTestSupport.assertDequantizationPathsAgree(quantized)
                XCTAssertEqual(quantized.bitsPerWeight, 8 + 32.0 / Double(size))
            }
        }
    }

    func testOddShapesAndMiniLM() throws {
        let odd = GridTestSupport.gaussian(5, 37, seed: 2)
        XCTAssertLessThan(GridTestSupport.relativeError(odd, try Quantizer.quantize(odd, name: "odd", spec: QuantizationSpec(method: .fp8)).dequantized()),
                          Self.gaussianBudgets[.e4m3]!)
        XCTAssertThrowsError(try Quantizer.quantize(odd, name: "odd", spec: QuantizationSpec(method: .fp8, groupSize: 16)))
        for (name, weight) in try GridTestSupport.miniLMWeights() {
            for format in [FP8Format.e4m3, .e5m2] {
                let quantized = try FP8Grid.quantizeGrid(weight, spec: QuantizationSpec(method: .fp8, fp8Format: format))
                XCTAssertLessThan(GridTestSupport.relativeError(weight, quantized.dequantized()), Self.gaussianBudgets[format]!, "\(name) \(format)")
            }
        }
    }
}
