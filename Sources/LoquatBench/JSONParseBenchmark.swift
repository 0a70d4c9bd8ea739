// `LoquatBench json-parse <file.json> [--repeats 10]`: how long `JSON.parse` (jansson, strict:
// duplicate keys rejected, size cap checked) takes on one document, including the conversion of
// jansson's tree into `JSONValue` — the whole cost a request body pays before a handler sees it.
// One JSON line on stdout:
//
//   {"benchmark":"json-parse","implementation":"loquat","path":…,"byteCount":…,"repeats":10,
//    "seconds":[…every sample…],"seconds_p50":…,"seconds_min":…,"megabytesPerSecond":…,
//    "jansson":"2.14"}
//
// The file is read into memory once; one untimed warm-up parse pays the allocator's first
// growth. Compare with scripts/bench/json_parse_peer.py (json.loads, orjson.loads) on the same
// bytes, and scripts/bench/jansson_parse.c (bare jansson, the floor under this).
import Foundation
import JSON

func runJSONParseBenchmark(_ arguments: [String]) throws {
    var path: String?
    var repeats = 10
    var index = 0
    while index < arguments.count {
        switch arguments[index] {
        case "--repeats":
            guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else {
                throw JSONParseBenchmarkError.usage("--repeats needs a positive integer")
            }
            repeats = value
            index += 2
        case let argument where path == nil && !argument.hasPrefix("--"):
            path = argument
            index += 1
        default:
            throw JSONParseBenchmarkError.usage("unexpected argument \(arguments[index])")
        }
    }
    guard let path else { throw JSONParseBenchmarkError.usage("name a JSON file") }
    guard let data = FileManager.default.contents(atPath: path) else { throw JSONParseBenchmarkError.usage("cannot read \(path)") }
    let bytes = [UInt8](data)

    var elementCount = 0
    if case let .array(elements) = try JSON.parse(bytes) { elementCount = elements.count }  // warm-up
    var seconds: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<repeats {
        var parsed: JSONValue?
        let elapsed = try clock.measure { parsed = try JSON.parse(bytes) }
        seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        withExtendedLifetime(parsed) {}  // freeing the returned JSONValue is not timed (jansson's tree is freed inside JSON.parse, and is)
    }
    let samples = seconds
    seconds.sort()
    let median = seconds[seconds.count / 2]
    let line: JSONValue = [
        "benchmark": "json-parse",
        "implementation": "loquat",
        "path": .string(path),
        "byteCount": .int(bytes.count),
        "topLevelElements": .int(elementCount),
        "repeats": .int(repeats),
        "seconds": .array(samples.map(JSONValue.double)),
        "seconds_p50": .double(median),
        "seconds_min": .double(seconds[0]),
        "megabytesPerSecond": .double(Double(bytes.count) / median / 1e6),
        "jansson": .string(JSON.libraryVersion),
    ]
    print(try JSON.serializeToString(line))
}

enum JSONParseBenchmarkError: Error, CustomStringConvertible {
    case usage(String)
    var description: String {
        switch self {
        case let .usage(reason): return "json-parse: \(reason) (usage: json-parse <file.json> [--repeats n])"
        }
    }
}
