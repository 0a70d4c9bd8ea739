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
    let (path, repeats) = try parsePathAndRepeats(arguments, defaultRepeats: 10, pathHint: "usage: json-parse <file.json> [--repeats n]")
    guard let data = FileManager.default.contents(atPath: path) else { throw BenchmarkUsageError("json-parse: cannot read \(path)") }
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
