// The `<path> [--repeats N]` arguments shared by the file-based benchmarks.

/// A command line a benchmark cannot run with; `main.swift` prints it and exits 2.
struct BenchmarkUsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parses one positional path and `--repeats N` (a positive integer, default `defaultRepeats`).
func parsePathAndRepeats(_ arguments: [String], defaultRepeats: Int, pathHint: String) throws -> (path: String, repeats: Int) {
    var path: String?
    var repeats = defaultRepeats
    var index = 0
    while index < arguments.count {
        switch arguments[index] {
        case "--repeats":
            guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else {
                throw BenchmarkUsageError("--repeats needs a positive integer")
            }
            repeats = value
            index += 2
        case let argument where path == nil && !argument.hasPrefix("--"):
            path = argument
            index += 1
        default:
            throw BenchmarkUsageError("unexpected argument \(arguments[index])")
        }
    }
    guard let path else { throw BenchmarkUsageError(pathHint) }
    return (path, repeats)
}

/// `value` when it is a positive integer; otherwise a usage error naming `flag` and the benchmark's `usage` line.
func positiveArgument(_ value: Int?, _ flag: String, usage: String) throws -> Int {
    guard let value, value > 0 else { throw BenchmarkUsageError("\(flag) needs a positive integer (usage: \(usage))") }
    return value
}
