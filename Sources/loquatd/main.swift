// loquatd: the Loquat daemon. Speaks JSON-RPC 2.0 on stdin/stdout (newline-delimited or LSP
// Content-Length framing, detected from the first byte); logs go to stderr.
#if canImport(Glibc)
import Glibc
#endif
import LoquatServer

let options = DaemonOptions.parse(Array(CommandLine.arguments.dropFirst()))
if options.showHelp {
    print(DaemonOptions.usage)
    exit(0)
}
if options.showVersion {
    print("loquatd \(LoquatServer.version)")
    exit(0)
}
// Must run before any BLAS call: OpenBLAS picks its kernel when the library loads.
let coreTypeSource = BLASStartup.ensureBestCore(arguments: CommandLine.arguments)
let streams = StdoutGuard.install()
if getenv("LOQUAT_DEBUG_STRAY_STDOUT") != nil {
    // Test hook: a library that prints to stdout must not corrupt the protocol stream.
    print("a stray line that must land on stderr")
    fflush(nil)
}
let environment = BLASStartup.configure(threadCount: options.threadCount, coreTypeSource: coreTypeSource)
exit(Daemon.run(input: streams.input, output: streams.protocolOutput, environment: environment,
                maximumMessageByteCount: options.maximumMessageByteCount))
