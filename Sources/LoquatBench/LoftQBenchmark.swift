// `LoquatBench loftq [--size 4096] [--rank 16] [--iterations 5] [--svd randomized|exact]
// [--repeat 1] [--threads <cores>]`: seconds for LoftQ on one `[size, size]` layer through the
// library entry point `initAdapter` uses per layer (`AdapterInitializer.initialize`, method
// loftq): `iterations` rounds of NF4 (bitsandbytes-exact, blocksize 64, no double quant) and a
// rank-r SVD of the residual, plus the error measurements. The weight is N(0, 0.02²) from
// `SeededRandomGenerator(seed: 4096)`. One JSON line: the best of `repeat` runs, the relative
// Frobenius error ‖W − Q − s·B·A‖/‖W‖ after and ‖W − Q‖/‖W‖ of plain NF4 before, the SVD mode and
// the thread counts. The whole machine is used: OpenBLAS and our parallel-for both get
// `threads` (one layer, so nothing else runs beside it). The peer is scripts/bench/peft_loftq.py
// (PEFT's `loftq_init` on CPU torch).
import Adapters
import Foundation
import LinearAlgebra
import Quantization
import Tensors

private let loftqUsage = "loftq [--size n] [--rank r] [--iterations t] [--svd randomized|exact] [--repeat k] [--threads n]"

func runLoftQBenchmark(_ arguments: [String]) throws {
    var size = 4096, rank = 16, iterations = 5, repeats = 1
    var threads = ProcessInfo.processInfo.activeProcessorCount
    var svd = SVDChoice.Mode.randomized
    var index = 0
    while index < arguments.count {
        let text = index + 1 < arguments.count ? arguments[index + 1] : ""
        let value = Int(text)
        switch arguments[index] {
        case "--size": size = try positiveArgument(value, "--size", usage: loftqUsage)
        case "--rank": rank = try positiveArgument(value, "--rank", usage: loftqUsage)
        case "--iterations": iterations = try positiveArgument(value, "--iterations", usage: loftqUsage)
        case "--repeat", "--repeats": repeats = try positiveArgument(value, "--repeat", usage: loftqUsage)
        case "--threads": threads = try positiveArgument(value, "--threads", usage: loftqUsage)
        case "--svd":
            guard let mode = SVDChoice.Mode(rawValue: text) else {
                throw BenchmarkUsageError("--svd is randomized or exact (usage: \(loftqUsage))")
            }
            svd = mode
        default: throw BenchmarkUsageError("unexpected argument \(arguments[index]) (usage: \(loftqUsage))")
        }
        index += 2
    }
    guard size % 64 == 0 else { throw BenchmarkUsageError("--size must be a multiple of the NF4 blocksize 64") }
    guard rank <= size else { throw BenchmarkUsageError("--rank must be at most --size") }
    Parallel.workerCount = threads
    BLASRuntime.threadCount = threads
    let core = BLASRuntime.coreName
    FileHandle.standardError.write(Data(("loftq: \(size)×\(size) NF4 g64, rank \(rank), \(iterations) iterations, \(svd.rawValue) SVD, "
        + "OpenBLAS \(core) \(BLASRuntime.threadCount) threads, \(Parallel.workerCount) workers\n").utf8))

    var generator = SeededRandomGenerator(seed: 4096)
    let weight: Matrix<Float> = generator.gaussianMatrix(rowCount: size, columnCount: size, standardDeviation: 0.02)
    let spec = QuantizationSpec(method: .nf4, groupSize: 64)
    let module = "loftq-bench"
    // Plain NF4 of W: the base initAdapter starts from (its error is `weightErrorBefore`).
    let quantized = try Quantizer.quantize(weight, name: module, spec: spec)
    let input = LayerInitInput(module: module, weight: weight, quantized: quantized, calibration: nil, rank: rank,
                               alpha: Double(rank))
    let options = AdapterInitOptions(method: .loftq, iterations: iterations, svdMode: svd)

    let clock = ContinuousClock()
    var best = Double.infinity
    var result: LayerInitResult?
    for run in 0..<repeats {
        let elapsed = try clock.measure { result = try AdapterInitializer.initialize(input, options: options) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        FileHandle.standardError.write(Data("loftq: run \(run + 1) of \(repeats): \(String(format: "%.3f", seconds)) s\n".utf8))
        best = min(best, seconds)
    }
    guard let result else { return }
    print("{\"benchmark\":\"loftq\",\"implementation\":\"loquat\",\"size\":\(size),\"rank\":\(rank),"
          + "\"iterations\":\(iterations),\"svd\":\"\(result.svd?.rawValue ?? svd.rawValue)\",\"repeat\":\(repeats),"
          + "\"seconds\":\(String(format: "%.3f", best)),"
          + "\"relativeError\":\(result.weightErrorAfter),\"relativeErrorBefore\":\(result.weightErrorBefore),"
          + "\"core\":\"\(core)\",\"threads\":\(BLASRuntime.threadCount),\"workers\":\(Parallel.workerCount)}")
}
