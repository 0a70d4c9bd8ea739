#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only, private memory map of a whole file. Tensors point into it without copying;
/// pages are read on first touch, so resident memory grows only by what is used.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?

    public struct OpenError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public let isMissing: Bool
        public var description: String { "\(path): \(reason)" }
    }

    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            throw OpenError(path: path, reason: String(cString: strerror(code)), isMissing: code == ENOENT)
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw OpenError(path: path, reason: String(cString: strerror(errno)), isMissing: false)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw OpenError(path: path, reason: "not a regular file", isMissing: false)
        }
        let byteCount = Int(status.st_size)
        if byteCount == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw OpenError(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))", isMissing: false)
        }
        base = mapped
        bytes = UnsafeRawBufferPointer(start: mapped, count: byteCount)
    }

    /// Runs `body` on the bytes while keeping the mapping alive. Prefer this to `bytes` on a
    /// temporary: Swift may release an object right after its last use, and `munmap` would
    /// then pull the pages from under a pointer still being read.
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withExtendedLifetime(self) { try body(bytes) }
    }

    deinit {
        if let base { munmap(base, bytes.count) }
    }
}
