// `LoquatBench sgemm [--sizes 512,1024,2048] [--repeats 5]`: GFLOP/s of LinearAlgebra's
// Float32 gemm (OpenBLAS sgemm) on square matrices, one JSON line per size on stdout; the
// OpenBLAS core and thread count go to stderr first and into every line, because the core
// decides the speed (docs/ARCHITECTURE.md, "OpenBLAS core detection").
// Compare with scripts/bench/sgemm_numpy.py, which prints the same fields for numpy.
import Foundation
import LinearAlgebra
import Tensors

func runSgemmBenchmark(_ arguments: [String]) throws {
    var sizes = [512, 1024, 2048]
    var repeats = 5
    var index = 0
    while index < arguments.count {
        let value = index + 1 < arguments.count ? arguments[index + 1] : ""
        switch arguments[index] {
        case "--sizes": sizes = value.split(separator: ",").compactMap { Int($0) }
        case "--repeats": repeats = max(1, Int(value) ?? repeats)
        default: throw SgemmBenchmarkError.unknownArgument(arguments[index])
        }
        index += 2
    }
    let core = BLASRuntime.coreName
    let threads = BLASRuntime.threadCount
    let override = ProcessInfo.processInfo.environment[BLASRuntime.coreTypeVariable] ?? "unset"
    FileHandle.standardError.write(Data("sgemm: OpenBLAS core \(core), \(threads) threads (\(BLASRuntime.coreTypeVariable)=\(override))\n".utf8))

    var generator = SeededRandomGenerator(seed: 1)
    for size in sizes where size > 0 {
        let a: Matrix<Float> = generator.gaussianMatrix(rowCount: size, columnCount: size)
        let b: Matrix<Float> = generator.gaussianMatrix(rowCount: size, columnCount: size)
        var c = Matrix<Float>(zeros: size, size)
        try LinearAlgebra.multiplyAccumulate(a, b, into: &c, beta: 0)  // warm-up: threads, caches, pages
        var best = Double.infinity
        let clock = ContinuousClock()
        for _ in 0..<repeats {
            let elapsed = try clock.measure { try LinearAlgebra.multiplyAccumulate(a, b, into: &c, beta: 0) }
            best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        let gflops = 2 * pow(Double(size), 3) / best / 1e9
        print("{\"benchmark\":\"sgemm\",\"implementation\":\"loquat\",\"size\":\(size),"
              + "\"gflops\":\(String(format: "%.2f", gflops)),\"core\":\"\(core)\",\"threads\":\(threads)}")
    }
}

enum SgemmBenchmarkError: Error, CustomStringConvertible {
    case unknownArgument(String)
    var description: String { "sgemm: unknown argument \(self) (expected --sizes a,b,c or --repeats n)" }
}
