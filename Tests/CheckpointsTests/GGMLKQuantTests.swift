import Foundation
import XCTest
import LoquatSupport
import Tensors
import Checkpoints
import TestSupport

/// The K-quant encoders (`GGMLKQuant*.swift`) against ggml's own reference quantizers
/// (Fixtures/kquant, made by Tests/Generators/kquant_goldens.py; see README-kquant.md), and
/// their round-trip error through our decoder.
final class GGMLKQuantTests: XCTestCase {
    static let kQuantTypes: [DType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// Relative Frobenius error ‖decode(encode(x)) − x‖/‖x‖ allowed on N(0, 0.02²) inputs. A
    /// b-bit grid fitted per sub-block of 16–32 values spans about ±2σ, so its rounding error is
    /// roughly 4σ/2^b/√12 ≈ 1.15·2^−b of σ, a bit less after ggml's weighted scale search;
    /// measured: Q2_K 0.297, Q3_K 0.151, Q4_K 0.0715, Q5_K 0.0362, Q6_K 0.0178. Each budget is
    /// the measurement plus 10%, so a fit that lost its search would fail.
    static let gaussianErrorBudget: [DType: Double] = [.q2_K: 0.327, .q3_K: 0.166, .q4_K: 0.079, .q5_K: 0.040, .q6_K: 0.0196]

    /// The same on real fp32 weights (MiniLM layer 3 `output.dense`, heavier tails than a
    /// Gaussian): measured Q2_K 0.308, Q3_K 0.160, Q4_K 0.0752, Q5_K 0.0382, Q6_K 0.0192; budgets
    /// the measurement plus 10%.
    static let realWeightErrorBudget: [DType: Double] = [.q2_K: 0.339, .q3_K: 0.176, .q4_K: 0.083, .q5_K: 0.042, .q6_K: 0.0211]

    static func fixturePath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/kquant").appendingPathComponent(name).path
    }

    func testEncodeMatchesGGMLReferenceBitForBit() throws {
        let file = try GGUFFile(path: Self.fixturePath("kquant.gguf"))
        let input = try file.tensor(named: "input")
        let values = try input.decodedFloat32()
        for dtype in Self.kQuantTypes {
            let expected = Array(try file.tensor(named: dtype.rawValue).storage.bytes)
            let encoded = try GGMLBlockCodec.encode(values, rowCount: input.shape[0], columnCount: input.shape[1], as: dtype)
            XCTAssertEqual(encoded.count, expected.count, "\(dtype)")
            let blockByteCount = dtype.blockByteCount
            var differingBlocks: [Int] = []
            for block in 0..<(min(encoded.count, expected.count) / blockByteCount) {
                let range = (block * blockByteCount)..<((block + 1) * blockByteCount)
                if encoded[range] != expected[range] { differingBlocks.append(block) }
            }
            XCTAssertEqual(differingBlocks, [], "\(dtype): blocks that differ from ggml (row = block / 2)")
        }
    }

    func testParallelEncodeMatchesRowByRowEncode() throws {
        let rowCount = 40, columnCount = 1024
        let values = GGUFTestSupport.randomFloats(rowCount * columnCount, seed: 91, scale: 0.05)
        for dtype in Self.kQuantTypes {
            let whole = try GGMLBlockCodec.encode(values, rowCount: rowCount, columnCount: columnCount, as: dtype)
            var rowByRow: [UInt8] = []
            for row in 0..<rowCount {
                rowByRow += try GGMLBlockCodec.encode(Array(values[(row * columnCount)..<((row + 1) * columnCount)]),
                                                      rowCount: 1, columnCount: columnCount, as: dtype)
            }
            XCTAssertEqual(whole, rowByRow, "\(dtype)")
        }
    }

    func testRoundTripErrorIsWithinBudgetAndFallsWithBits() throws {
        var generator = GaussianSource(seed: 7)
        let rowCount = 64, columnCount = 2048
        let values = (0..<(rowCount * columnCount)).map { _ in Float(0.02 * generator.next()) }
        var previous = Double.infinity
        for dtype in Self.kQuantTypes {
            let error = try Self.roundTripError(values, rowCount: rowCount, columnCount: columnCount, dtype: dtype)
            print("K-quant round trip, Gaussian σ=0.02: \(dtype) relative error \(String(format: "%.4f", error))")
            XCTAssertLessThan(error, Self.gaussianErrorBudget[dtype]!, "\(dtype)")
            XCTAssertLessThan(error, previous, "\(dtype) should beat the type with fewer bits")
            previous = error
        }
    }

    func testRoundTripOnRealMiniLMWeights() throws {
        guard let path = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM sample model not fetched") }
        let checkpoint = try CheckpointLoader.load(path: path)
        // output.dense is [384, 1536] fp32: rows of 1536 = 6·256, the shape K-quants can hold.
        let weight = try XCTUnwrap(checkpoint.tensor(named: "encoder.layer.3.output.dense.weight")).float32MatrixAnyDType()
        XCTAssertEqual(weight.columnCount % 256, 0)
        var previous = Double.infinity
        for dtype in Self.kQuantTypes {
            let error = try Self.roundTripError(weight.values, rowCount: weight.rowCount, columnCount: weight.columnCount, dtype: dtype)
            print("K-quant round trip, MiniLM layer 3 output.dense: \(dtype) relative error \(String(format: "%.4f", error))")
            XCTAssertLessThan(error, Self.realWeightErrorBudget[dtype]!, "\(dtype)")
            XCTAssertLessThan(error, previous, "\(dtype) should beat the type with fewer bits")
            previous = error
        }
    }

    func testRowsThatAreNotWholeSuperBlocksAreRefused() {
        let values = [Float](repeating: 0.5, count: 2 * 576)
        for dtype in Self.kQuantTypes {
            XCTAssertThrowsError(try GGMLBlockCodec.encode(values, rowCount: 2, columnCount: 576, as: dtype)) { error in
                XCTAssertEqual(error as? TensorError, .notWholeBlocks(dtype: dtype, elementCount: 576), "\(dtype)")
            }
            XCTAssertTrue(GGMLBlockCodec.encodableTypes.contains(dtype), "\(dtype)")
        }
    }

    func testAllZeroAndConstantBlocksDecodeExactly() throws {
        for dtype in Self.kQuantTypes {
            let zeros = [Float](repeating: 0, count: 256)
            let encodedZeros = try GGMLBlockCodec.encode(zeros, rowCount: 1, columnCount: 256, as: dtype)
            XCTAssertEqual(try Self.decode(encodedZeros, dtype: dtype, count: 256), zeros, "\(dtype)")
        }
    }

    // MARK: helpers

    static func roundTripError(_ values: [Float], rowCount: Int, columnCount: Int, dtype: DType) throws -> Double {
        let encoded = try GGMLBlockCodec.encode(values, rowCount: rowCount, columnCount: columnCount, as: dtype)
        let decoded = try decode(encoded, dtype: dtype, count: values.count)
        var errorSquared = 0.0, normSquared = 0.0
        for (x, y) in zip(values, decoded) {
            errorSquared += (Double(x) - Double(y)) * (Double(x) - Double(y))
            normSquared += Double(x) * Double(x)
        }
        return (errorSquared / normSquared).squareRoot()
    }

    static func decode(_ bytes: [UInt8], dtype: DType, count: Int) throws -> [Float] {
        var output = [Float](repeating: .nan, count: count)
        try bytes.withUnsafeBytes { source in
            try output.withUnsafeMutableBufferPointer { try GGMLBlockCodec.decode(source, dtype: dtype, into: $0) }
        }
        return output
    }
}

/// Standard normal samples from a SplitMix64 stream by Box–Muller; independent of the code
/// under test.
struct GaussianSource {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) * 0x1.0p-53
    }

    mutating func next() -> Double {
        let u1 = 1 - uniform(), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
