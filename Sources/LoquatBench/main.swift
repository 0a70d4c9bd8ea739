// Dispatches `LoquatBench <name> [args]` to one benchmark; each lives in its own file.
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let benchmarks: [String: ([String]) throws -> Void] = [
    "sgemm": runSgemmBenchmark,
    "safetensors-open": runLoadBenchmark,
    "json-parse": runJSONParseBenchmark,
    "gptq": runGPTQBenchmark,
    "nf4": runNF4Benchmark,
    "perplexity": runPerplexityBenchmark,
]
guard let name = arguments.first, let run = benchmarks[name] else {
    FileHandle.standardError.write("usage: LoquatBench <\(benchmarks.keys.sorted().joined(separator: "|"))> [args]\n".data(using: .utf8)!)
    exit(2)
}
try run(Array(arguments.dropFirst()))
