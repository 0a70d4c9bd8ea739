import Checkpoints
import LinearAlgebra
import Tensors
import TestSupport
import XCTest
@testable import Quantization

/// Inputs and metrics shared by the grid-family tests (int, nf, fp8, hqq, gptq).
enum GridTestSupport {
    /// `[rows, columns]` of N(0, σ²) samples from a seeded generator.
    static func gaussian(_ rows: Int, _ columns: Int, seed: UInt64, standardDeviation: Double = 1) -> Matrix<Float> {
        var generator = SeededRandomGenerator(seed: seed)
        return generator.gaussianMatrix(rowCount: rows, columnCount: columns, standardDeviation: standardDeviation)
    }

    /// ‖W − Ŵ‖_F / ‖W‖_F, in Float64.
    static func relativeError(_ weight: Matrix<Float>, _ approximation: Matrix<Float>) -> Double {
        var difference = 0.0, norm = 0.0
        for index in weight.values.indices {
            let d = Double(weight.values[index]) - Double(approximation.values[index])
            difference += d * d
            norm += Double(weight.values[index]) * Double(weight.values[index])
        }
        return (difference / max(norm, .leastNormalMagnitude)).squareRoot()
    }

    /// mean |W − Ŵ|, in Float64 (HQQ's own objective).
    static func meanAbsoluteError(_ weight: Matrix<Float>, _ approximation: Matrix<Float>) -> Double {
        var sum = 0.0
        for index in weight.values.indices { sum += abs(Double(weight.values[index]) - Double(approximation.values[index])) }
        return sum / Double(max(1, weight.values.count))
    }

    /// Linear weights of MiniLM layer 0 (q, intermediate, output), or XCTSkip without the model.
    static func miniLMWeights() throws -> [(String, Matrix<Float>)] {
        guard let directory = SampleModels.miniLMDirectory else { throw XCTSkip("MiniLM sample model not fetched") }
        let checkpoint = try CheckpointLoader.load(path: directory)
        return try ["encoder.layer.0.attention.self.query.weight", "encoder.layer.0.intermediate.dense.weight",
                    "encoder.layer.0.output.dense.weight"].map { name in
            guard let tensor = checkpoint.tensor(named: name) else { throw XCTSkip("MiniLM lacks \(name)") }
            return (name, try tensor.float32MatrixAnyDType())
        }
    }

    /// SmolLM2-135M layer-0 q_proj and down_proj (decoded from the Q4_1 GGUF), or XCTSkip.
    static func smolLM2Weights() throws -> [(String, Matrix<Float>)] {
        guard let path = SampleModels.smolLM2GGUF else { throw XCTSkip("SmolLM2 sample model not fetched") }
        let checkpoint = try CheckpointLoader.load(path: path)
        return try ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"].map { name in
            guard let tensor = checkpoint.tensor(named: name) else { throw XCTSkip("SmolLM2 lacks \(name)") }
            return (name, try tensor.float32MatrixAnyDType())
        }
    }

    /// Asserts that two stored forms are identical (codes, scales, zero points, levels).
    static func assertIdentical(_ a: GroupedGridWeight, _ b: GroupedGridWeight, _ message: String = "",
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.codes, b.codes, "codes \(message)", file: file, line: line)
        XCTAssertEqual(a.scales.map(\.bitPattern), b.scales.map(\.bitPattern), "scales \(message)", file: file, line: line)
        XCTAssertEqual(a.zeroPointValues.map(\.bitPattern), b.zeroPointValues.map(\.bitPattern), "zeros \(message)", file: file, line: line)
        XCTAssertEqual(a.levels, b.levels, "levels \(message)", file: file, line: line)
    }

    /// Dequantization fast path == scalar reference, bit for bit.
    static func assertDequantizationPathsAgree(_ weight: GroupedGridWeight, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(weight.dequantized().values.map(\.bitPattern), weight.dequantizedReference().values.map(\.bitPattern),
                       "dequantized() differs from dequantizedReference()", file: file, line: line)
    }

    /// The fixture directory of a topic, beside this file.
    static func fixtureDirectory(_ topic: String, file: String = #filePath) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Fixtures/\(topic)").path
    }
}
