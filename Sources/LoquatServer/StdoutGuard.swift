#if canImport(Glibc)
import Glibc
#endif

/// Keeps stray writes off the protocol stream: the real stdout is duplicated to a private
/// descriptor for frames, and descriptor 1 is pointed at stderr, so a `print` anywhere (ours or
/// a library's) lands in the log instead of corrupting a frame.
public enum StdoutGuard {
    public struct Streams: Sendable {
        public let input: Int32
        public let protocolOutput: Int32
    }

    public static func install() -> Streams {
        signal(SIGPIPE, SIG_IGN)
        let protocolOutput = dup(STDOUT_FILENO)
        _ = fcntl(protocolOutput, F_SETFD, FD_CLOEXEC)
        dup2(STDERR_FILENO, STDOUT_FILENO)
        return Streams(input: STDIN_FILENO, protocolOutput: protocolOutput)
    }
}
