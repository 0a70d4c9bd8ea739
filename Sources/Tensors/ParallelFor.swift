import Dispatch

/// The one owner of parallelism for our own loops (layers, blocks, rows). Work is split into
/// at most `workerCount` contiguous chunks so that each worker touches a contiguous range.
public enum Parallel {
    /// Number of workers; the daemon sets it once at start-up to the core count.
    nonisolated(unsafe) public static var workerCount: Int = max(1, sysconfCPUCount())

    /// Calls `body(range)` on disjoint chunks covering `0..<count`, concurrently.
    public static func forEachChunk(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = max(1, min(workerCount, count / max(1, minimumChunk)))
        if chunks == 1 { body(0..<count); return }
        // The body writes disjoint ranges of caller-owned buffers; the caller guarantees that
        // the chunks do not race, which the compiler cannot see through unsafe pointers.
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                if start < end { box.value(start..<end) }
            }
        }
    }

    /// Calls `body(index)` for every index in `0..<count`, concurrently in chunks.
    public static func forEach(_ count: Int, minimumChunk: Int = 1, _ body: (Int) -> Void) {
        forEachChunk(count, minimumChunk: minimumChunk) { range in
            for index in range { body(index) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

func sysconfCPUCount() -> Int {
    #if canImport(Glibc)
    return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    #else
    return 1
    #endif
}

/// Wraps a value whose thread safety the caller guarantees by construction.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
