// Dispatches `LoquatBench <name> [args]` to one benchmark; each lives in its own file.
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let benchmarks: [String: ([String]) throws -> Void] = [
    "sgemm": runSgemmBenchmark,
    "safetensors-open": runLoadBenchmark,
    "json-parse": runJSONParseBenchmark,
    "gptq": runGPTQBenchmark,
    "nf4": runNF4Benchmark,
    "loftq": runLoftQBenchmark,
    "perplexity": runPerplexityBenchmark,
]
guard let name = arguments.first, let run = benchmarks[name] else {
    FileHandle.standardError.write("usage: LoquatBench <\(benchmarks.keys.sorted().joined(separator: "|"))> [args]\n".data(using: .utf8)!)
    exit(2)
}
do {
    try run(Array(arguments.dropFirst()))
} catch let error as BenchmarkUsageError {
    // A command line the benchmark cannot run with (BenchmarkArguments.swift): a message, exit 2.
    FileHandle.standardError.write(Data("LoquatBench \(name): \(error)\n".utf8))
    exit(2)
}
