/// Command-line options of loquatd.
struct DaemonOptions {
    var showHelp = false
    var showVersion = false
    var threadCount: Int?
    var maximumMessageByteCount = 256 << 20

    static let usage = """
    usage: loquatd [--threads N] [--max-message-bytes N] [--version] [--help]

    Speaks JSON-RPC 2.0 on stdin/stdout: newline-delimited JSON or LSP Content-Length frames,
    detected from the first byte. Logs go to stderr. See protocol/README.md.

    Environment: OPENBLAS_CORETYPE is respected when set; otherwise loquatd re-executes itself
    with the best OpenBLAS kernel for this CPU (LOQUAT_NO_REEXEC=1 disables that).
    """

    static func parse(_ arguments: [String]) -> DaemonOptions {
        var options = DaemonOptions()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--help", "-h": options.showHelp = true
            case "--version": options.showVersion = true
            case "--threads":
                index += 1
                options.threadCount = index < arguments.count ? Int(arguments[index]) : nil
            case "--max-message-bytes":
                index += 1
                if index < arguments.count, let value = Int(arguments[index]), value > 0 { options.maximumMessageByteCount = value }
            default:
                options.showHelp = true
            }
            index += 1
        }
        return options
    }
}
