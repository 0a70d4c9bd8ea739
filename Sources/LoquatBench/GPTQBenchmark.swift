// `LoquatBench gptq [--size 4096] [--bits 4] [--group 128] [--act-order] [--repeats 1]`:
// seconds for GPTQ on one `[size, size]` layer with a given Hessian, everything included
// (dead-input check, damping, Cholesky → inverse → Cholesky in Float64, the lazy-block column
// loop with sgemm updates, assembling the stored form). One JSON line per run on stdout.
//
// The Hessian is synthetic but shaped like a real one and SPD by construction: `H = D·K·D` with
// `K_ij = 0.5^|i−j|` (an AR(1) correlation, positive definite) and `D` log-normal per-channel
// scales, so inputs differ in energy as LLM activations do and act-order has something to sort.
// The weight is N(0, 0.02²). No peer runs in the same process: AutoGPTQ/GPTQModel need torch
// (scripts/bench times them where torch imports).
import Foundation
import LinearAlgebra
import Quantization
import Tensors

func runGPTQBenchmark(_ arguments: [String]) throws {
    var size = 4096, bits = 4, group = 128, repeats = 1, actOrder = false
    var index = 0
    while index < arguments.count {
        let value = index + 1 < arguments.count ? Int(arguments[index + 1]) : nil
        switch arguments[index] {
        case "--act-order": actOrder = true; index += 1; continue
        case "--size": size = try positive(value, "--size")
        case "--bits": bits = try positive(value, "--bits")
        case "--group": group = value ?? -1; guard group >= 0 else { throw GPTQBenchmarkError.usage("--group needs n ≥ 0") }
        case "--repeats": repeats = try positive(value, "--repeats")
        default: throw GPTQBenchmarkError.usage("unexpected argument \(arguments[index])")
        }
        index += 2
    }
    let core = BLASRuntime.coreName, threads = BLASRuntime.threadCount
    FileHandle.standardError.write(Data("gptq: \(size)×\(size), \(bits)-bit g\(group), OpenBLAS \(core) \(threads) threads, \(Parallel.workerCount) workers\n".utf8))

    var generator = SeededRandomGenerator(seed: 7)
    let weight: Matrix<Float> = generator.gaussianMatrix(rowCount: size, columnCount: size, standardDeviation: 0.02)
    let channelScale = (0..<size).map { _ in exp(0.5 * generator.nextGaussian()) }
    var hessian = Matrix<Double>(zeros: size, size)
    hessian.values.withUnsafeMutableBufferPointer { h in
        for i in 0..<size {
            for j in 0..<size { h[i * size + j] = channelScale[i] * channelScale[j] * pow(0.5, Double(abs(i - j))) }
        }
    }
    let calibration = LayerCalibration(gram: hessian, tokenCount: 0, meanAbsolute: [], rootMeanSquare: [])
    var options = GPTQOptions()
    options.actOrder = actOrder
    let spec = QuantizationSpec(method: .gptq, bits: bits, groupSize: group, symmetric: false, gptq: options)

    let clock = ContinuousClock()
    for _ in 0..<repeats {
        var quantized: GroupedGridWeight?
        let elapsed = try clock.measure { quantized = try GPTQQuantizer.quantizeGrid(weight, spec: spec, calibration: calibration) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("{\"benchmark\":\"gptq\",\"implementation\":\"loquat\",\"size\":\(size),\"bits\":\(bits),\"groupSize\":\(group),"
              + "\"actOrder\":\(actOrder),\"seconds\":\(String(format: "%.3f", seconds)),"
              + "\"bitsPerWeight\":\(String(format: "%.4f", quantized?.bitsPerWeight ?? 0)),"
              + "\"core\":\"\(core)\",\"threads\":\(threads),\"workers\":\(Parallel.workerCount)}")
    }
}


private func positive(_ value: Int?, _ flag: String) throws -> Int {
    guard let value, value > 0 else { throw GPTQBenchmarkError.usage("\(flag) needs a positive integer") }
    return value
}

enum GPTQBenchmarkError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self {
        case let .usage(reason): return "gptq: \(reason) (usage: gptq [--size n] [--bits b] [--group g] [--act-order] [--repeats r])"
        }
    }
}
