// `LoquatBench nf4 [--size 4096] [--repeats 5] [--threads 2]`: bitsandbytes-exact NF4 quantize
// of a size×size fp32 matrix in GB/s of fp32 input, and dequantize in GB/s of fp32 output, best
// of `repeats`, one JSON line per operation (plain and double-quantized). The peer is
// scripts/bench/nf4_bitsandbytes.py (bitsandbytes on CPU torch), which prints the same fields.
import Foundation
import LinearAlgebra
import Quantization
import Tensors

func runNF4Benchmark(_ arguments: [String]) throws {
    var size = 4096
    var repeats = 5
    var threads = 2
    var index = 0
    while index < arguments.count {
        let value = index + 1 < arguments.count ? Int(arguments[index + 1]) : nil
        switch (arguments[index], value) {
        case ("--size", let value?) where value > 0: size = value
        case ("--repeats", let value?) where value > 0: repeats = value
        case ("--threads", let value?) where value > 0: threads = value
        default: throw NF4BenchmarkError.badArgument(arguments[index])
        }
        index += 2
    }
    Parallel.workerCount = threads
    var generator = SeededRandomGenerator(seed: 4096)
    let matrix: Matrix<Float> = generator.gaussianMatrix(rowCount: size, columnCount: size, standardDeviation: 0.02)
    let byteCount = Double(size * size * MemoryLayout<Float>.size)
    let clock = ContinuousClock()
    func best(_ body: () throws -> Void) rethrows -> Double {
        try body()  // warm-up: pages, threads, lazily built tables
        var fastest = Double.infinity
        for _ in 0..<repeats {
            let elapsed = try clock.measure(body)
            fastest = min(fastest, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        return fastest
    }
    for doubleQuant in [false, true] {
        let spec = QuantizationSpec(method: .nf4, groupSize: 64, doubleQuant: doubleQuant)
        var weight: (any QuantizedWeight)?
        let quantizeSeconds = try best { weight = try BitsAndBytesFourBit.quantize(matrix, spec: spec) }
        var checksum: Float = 0
        let dequantizeSeconds = best { checksum += weight!.dequantized().values[size] }
        // The kernel alone: into memory that is already mapped (no page faults of a new array).
        let concrete = weight as! BitsAndBytesFourBitWeight
        var output = [Float](repeating: 0, count: size * size)
        let intoSeconds = output.withUnsafeMutableBufferPointer { output in best { concrete.dequantize(into: output) } }
        for (operation, seconds) in [("quantize", quantizeSeconds), ("dequantize", dequantizeSeconds), ("dequantize-into", intoSeconds)] {
            print("{\"benchmark\":\"nf4-\(operation)\",\"implementation\":\"loquat\",\"size\":\(size),"
                  + "\"doubleQuant\":\(doubleQuant),\"seconds\":\(String(format: "%.5f", seconds)),"
                  + "\"gbps\":\(String(format: "%.3f", byteCount / seconds / 1e9)),\"threads\":\(threads)}")
        }
        FileHandle.standardError.write(Data("nf4: bitsPerWeight \(weight!.bitsPerWeight), probe \(checksum)\n".utf8))
    }
}

enum NF4BenchmarkError: Error, CustomStringConvertible {
    case badArgument(String)
    case notLinked
    var description: String {
        switch self {
        case let .badArgument(argument): return "nf4: bad argument \(argument) (expected --size n, --repeats n, --threads n)"
        case .notLinked: return "nf4: this LoquatBench was built without the Quantization module (see NF4Benchmark.swift)"
        }
    }
}
