// `LoquatBench safetensors-open <file-or-directory> [--repeats 20]`: how long opening a
// safetensors checkpoint takes (mmap + header validation, no tensor bytes read) and how much
// resident memory it costs. One JSON line on stdout:
//
//   {"benchmark":"safetensors-open","path":…,"repeats":20,"seconds_p50":…,"seconds_min":…,
//    "tensorCount":…,"byteCount":…,"rssGrowthBytes":…,"rssGrowthBytesPerOpen":…}
//
// One warm-up open (not timed, not counted) pays the one-time costs (code pages, allocator
// arenas). Resident memory is then read from /proc/self/statm (field 2, resident pages × page
// size) before the first timed open and after the last, with every opened checkpoint still
// alive. Tensors are windows into the mapping, so each open should cost the header's pages
// (the kernel faults in 64 KiB around the header read) plus a few hundred bytes of bookkeeping
// per tensor — for all-MiniLM-L6-v2 about 110 KB against 91 MB of weights — never the weights.
import Checkpoints
import Foundation
import JSON

func runLoadBenchmark(_ arguments: [String]) throws {
    let (path, repeats) = try parsePathAndRepeats(arguments, defaultRepeats: 20, pathHint: "usage: safetensors-open <file-or-directory> [--repeats n]")

    _ = try SafetensorsCheckpoint.open(path: path)
    let residentBefore = residentByteCount()
    var opened: [SafetensorsCheckpoint] = []
    opened.reserveCapacity(repeats)
    var seconds: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<repeats {
        var checkpoint: SafetensorsCheckpoint?
        let elapsed = try clock.measure { checkpoint = try SafetensorsCheckpoint.open(path: path) }
        seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        opened.append(checkpoint!)
    }
    let residentAfter = residentByteCount()
    seconds.sort()
    let last = opened[opened.count - 1]
    let line: JSONValue = [
        "benchmark": "safetensors-open",
        "path": .string(path),
        "repeats": .int(repeats),
        "seconds_p50": .double(seconds[seconds.count / 2]),
        "seconds_min": .double(seconds[0]),
        "tensorCount": .int(last.tensors.count),
        "byteCount": .int(last.tensors.reduce(0) { $0 + $1.byteCount }),
        "rssGrowthBytes": .int(residentAfter - residentBefore),
        "rssGrowthBytesPerOpen": .int((residentAfter - residentBefore) / repeats),
    ]
    print(try JSON.serializeToString(line))
    withExtendedLifetime(opened) {}
}

/// Resident set size from /proc/self/statm ("size resident shared text lib data dt", in pages).
private func residentByteCount() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
