#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file atomically: the bytes go to a temporary file in the target directory, are
/// flushed with fsync, and the file is renamed into place. A reader never sees a half-written
/// file, and a failure leaves any existing file untouched.
public struct AtomicFileWriter {
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    public let path: String
    private let temporaryPath: String
    private let descriptor: Int32
    private var finished = false

    /// Opens a temporary sibling of `path`. With `overwrite: false` an existing `path` is an error.
    public init(path: String, overwrite: Bool) throws {
        if !overwrite && access(path, F_OK) == 0 {
            throw WriteError(path: path, reason: "file exists; pass \"overwrite\": true to replace it")
        }
        self.path = path
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw WriteError(path: path, reason: "cannot create a temporary file: \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        self.temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(descriptor, 0o644)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw WriteError(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes and renames into place.
    public mutating func commit() throws {
        finished = true
        guard fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor); unlink(temporaryPath)
            throw WriteError(path: path, reason: "fsync failed: \(reason)")
        }
        close(descriptor)
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw WriteError(path: path, reason: "rename failed: \(reason)")
        }
    }

    /// Removes the temporary file; call when a write fails part way.
    public mutating func abandon() {
        guard !finished else { return }
        finished = true
        close(descriptor)
        unlink(temporaryPath)
    }

    /// Writes `bytes` to `path` in one step.
    public static func write(_ bytes: [UInt8], to path: String, overwrite: Bool) throws {
        var writer = try AtomicFileWriter(path: path, overwrite: overwrite)
        do {
            try writer.write(bytes)
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }
}
