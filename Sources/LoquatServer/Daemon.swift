import JSONRPC
import LinearAlgebra
import LoquatSupport
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// Wires a server to a connection.
public enum Daemon {
    public static func run(input: Int32, output: Int32, environment: ServerEnvironment, maximumMessageByteCount: Int) -> Int32 {
        let server = LoquatServer(environment: environment)
        let connection = Connection(input: input, output: output, handler: server,
                                    limits: .init(maximumMessageByteCount: maximumMessageByteCount))
        return connection.run()
    }
}

/// OpenBLAS kernel selection at start-up (ARCHITECTURE.md, "OpenBLAS core detection").
public enum BLASStartup {
    /// When the CPU supports a better kernel than the one OpenBLAS detected and
    /// `OPENBLAS_CORETYPE` is unset, re-executes this binary with it set (the core is fixed
    /// when the library loads, so it cannot be changed in-process). Returns how the core was
    /// chosen: "environment", "re-exec", "detected".
    public static func ensureBestCore(arguments: [String]) -> String {
        if getenv("OPENBLAS_CORETYPE") != nil {
            return getenv("LOQUAT_REEXECUTED") != nil ? "re-exec" : "environment"
        }
        let current = BLASRuntime.coreName
        guard getenv("LOQUAT_NO_REEXEC") == nil,
              let better = BLASRuntime.recommendedCoreType(cpuFlags: BLASRuntime.cpuFlags(), currentCore: current) else {
            return "detected"
        }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv("LOQUAT_REEXECUTED", "1", 1)
        var cArguments = arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArguments)
        // exec failed: carry on with the detected core.
        Log.warning("could not re-execute with OPENBLAS_CORETYPE=\(better): \(String(cString: strerror(errno)))")
        unsetenv("OPENBLAS_CORETYPE")
        return "detected"
    }

    /// One owner of parallelism: our parallel-for uses every core; BLAS calls made from the
    /// work queue use the same count.
    public static func configure(threadCount: Int?, coreTypeSource: String) -> ServerEnvironment {
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let threads = threadCount ?? cores
        Parallel.workerCount = threads
        BLASRuntime.threadCount = threads
        let core = BLASRuntime.coreName
        Log.info("OpenBLAS core \(core) (\(coreTypeSource)), \(BLASRuntime.threadCount) threads")
        return ServerEnvironment(blasCore: core, blasThreadCount: BLASRuntime.threadCount,
                                 blasCoreTypeSource: coreTypeSource, workerCount: threads)
    }
}
