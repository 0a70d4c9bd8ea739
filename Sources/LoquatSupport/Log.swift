#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Logging to stderr. stdout carries only protocol frames, so nothing here ever touches it.
public enum Log {
    nonisolated(unsafe) public static var isVerbose = false

    public static func info(_ message: @autoclosure () -> String) {
        emit("info", message())
    }

    public static func debug(_ message: @autoclosure () -> String) {
        if isVerbose { emit("debug", message()) }
    }

    public static func warning(_ message: @autoclosure () -> String) {
        emit("warning", message())
    }

    private static func emit(_ level: String, _ message: String) {
        let line = "loquatd[\(level)]: \(message)\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
