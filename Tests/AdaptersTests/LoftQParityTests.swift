import Adapters
import Checkpoints
import LinearAlgebra
import Quantization
import Tensors
import XCTest

/// LoftQ against PEFT's own `loftq_init` (peft 0.21.2, bitsandbytes NF4 blocksize 64 without
/// double quantization, run on the CPU by Tests/Generators/peft_goldens.py; README-peft.md).
final class LoftQParityTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/peft/loftq.safetensors").path

    static func matrix(_ file: SafetensorsFile, _ name: String) throws -> Matrix<Float> {
        try XCTUnwrap(file.tensors.first { $0.name == name }, name).float32Matrix()
    }

    static func loftq(_ weight: Matrix<Float>, rank: Int, iterations: Int, svd: SVDChoice.Mode) throws -> LayerInitResult {
        let spec = QuantizationSpec(method: .nf4, groupSize: 64)
        let quantized = try Quantizer.quantize(weight, name: "w", spec: spec)
        // alpha = rank, so s = 1: PEFT's LoftQ leaves the scale out, and with s = 1 the two agree.
        let input = LayerInitInput(module: "w", weight: weight, quantized: quantized, calibration: nil, rank: rank, alpha: Double(rank))
        return try AdapterInitializer.initialize(input, options: AdapterInitOptions(method: .loftq, iterations: iterations, svdMode: svd))
    }

    func testExactLoftQMatchesPEFT() throws {
        let file = try SafetensorsFile(path: Self.fixture)
        let weight = try Self.matrix(file, "weight")
        for (rank, iterations) in [(4, 1), (4, 5), (8, 2)] {
            let prefix = "r\(rank)_iter\(iterations)."
            let result = try Self.loftq(weight, rank: rank, iterations: iterations, svd: .exact)
            let q = try XCTUnwrap(result.newBase).dequantized
            let expectedQ = try Self.matrix(file, prefix + "qweight")
            // The same Q: codes agree, so dequantized values agree to the last bit or within fp32 noise.
            XCTAssertLessThanOrEqual(q.maxAbsDifference(expectedQ), 1e-6, prefix)
            // The same A and B up to the sign of each singular pair.
            let a = result.layer.loraA, b = result.layer.loraB
            let expectedA = try Self.matrix(file, prefix + "lora_A"), expectedB = try Self.matrix(file, prefix + "lora_B")
            for k in 0..<rank {
                let sign: Float = (0..<a.columnCount).reduce(0) { $0 + a[k, $1] * expectedA[k, $1] } < 0 ? -1 : 1
                for c in 0..<a.columnCount { XCTAssertEqual(a[k, c] * sign, expectedA[k, c], accuracy: 2e-5, "\(prefix) A[\(k), \(c)]") }
                for r in 0..<b.rowCount { XCTAssertEqual(b[r, k] * sign, expectedB[r, k], accuracy: 2e-5, "\(prefix) B[\(r), \(k)]") }
            }
        }
    }

    /// The randomized SVD (seeded, 10 oversamples, 2 power iterations) gives a LoftQ error within
    /// 1% of the exact SVD's.
    func testRandomizedSVDLoftQIsWithinOnePercentOfExact() throws {
        let weight = try Self.matrix(try SafetensorsFile(path: Self.fixture), "weight")
        for iterations in [1, 5] {
            let exact = try Self.loftq(weight, rank: 8, iterations: iterations, svd: .exact)
            let randomized = try Self.loftq(weight, rank: 8, iterations: iterations, svd: .randomized)
            XCTAssertEqual(randomized.svd, .randomized)
            XCTAssertLessThan(randomized.weightErrorAfter, exact.weightErrorAfter * 1.01)
            XCTAssertLessThan(exact.weightErrorAfter, exact.weightErrorBefore)
        }
    }
}
