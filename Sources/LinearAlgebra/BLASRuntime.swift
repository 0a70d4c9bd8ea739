internal import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS run-time introspection, and the pure decision of which kernel family
/// (`OPENBLAS_CORETYPE`) the daemon should ask for (docs/ARCHITECTURE.md, "OpenBLAS core
/// detection"). The core is chosen when the library loads, so changing it means re-executing
/// the process with the variable set; this type only answers the questions.
public enum BLASRuntime {
    /// The environment variable OpenBLAS reads at load time to force a kernel family.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// The kernel family OpenBLAS selected, e.g. "Prescott", "Haswell", "SkylakeX"
    /// (`openblas_get_corename`).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build configuration string (`openblas_get_config`).
    public static var configuration: String {
        guard let text = openblas_get_config() else { return "unknown" }
        return String(cString: text)
    }

    /// Threads OpenBLAS uses per call (`openblas_get_num_threads`/`openblas_set_num_threads`).
    /// Set it to match our own parallel-for so the two never oversubscribe the cores.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(clamping: max(1, newValue))) }
    }

    /// Runs `body` with one BLAS thread when `condition` holds (our own parallel-for already
    /// fills the cores), restoring the previous count afterwards.
    public static func singleThreaded<Result>(when condition: Bool, _ body: () throws -> Result) rethrows -> Result {
        guard condition, threadCount > 1 else { return try body() }
        let previous = threadCount
        threadCount = 1
        defer { threadCount = previous }
        return try body()
    }

    /// Instruction-set level of an OpenBLAS x86 kernel family, lowest first.
    enum KernelLevel: Int, Comparable {
        case legacy = 0, avx2 = 1, avx512 = 2
        static func < (lhs: KernelLevel, rhs: KernelLevel) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// OpenBLAS's x86-64 kernel families (lowercased names from its `dynamic.c`) by level.
    /// Names not listed (other architectures, future cores) are never overridden.
    static let kernelLevels: [String: KernelLevel] = {
        var levels: [String: KernelLevel] = [:]
        for name in ["katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
                     "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano",
                     "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"] { levels[name] = .legacy }
        for name in ["haswell", "zen"] { levels[name] = .avx2 }
        for name in ["skylakex", "cooperlake", "sapphirerapids"] { levels[name] = .avx512 }
        return levels
    }()

    /// The best kernel level the CPU flags (as in /proc/cpuinfo) allow. AVX-512 needs the
    /// Skylake-X subset (F, CD, BW, DQ, VL), which OpenBLAS's SkylakeX kernels use; AVX2 needs
    /// AVX, AVX2 and FMA (Haswell kernels).
    static func supportedLevel(cpuFlags: Set<String>) -> KernelLevel {
        let avx2 = ["avx", "avx2", "fma"].allSatisfy(cpuFlags.contains)
        let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(cpuFlags.contains)
        if avx2 && avx512 { return .avx512 }
        if avx2 { return .avx2 }
        return .legacy
    }

    /// The `OPENBLAS_CORETYPE` to re-execute with, or nil to keep the current core.
    ///
    /// Returns "SkylakeX" when the CPU supports the AVX-512 subset and `currentCore` is a known
    /// x86 family below that level (e.g. "Prescott", "Sandybridge", "Haswell", "Zen"), and
    /// "Haswell" when the CPU has AVX2+FMA (no AVX-512) and `currentCore` is a pre-AVX2 family.
    /// An unknown `currentCore` gives nil: we never override what we do not recognise. The
    /// caller must also respect an existing `OPENBLAS_CORETYPE` setting.
    public static func recommendedCoreType(cpuFlags: Set<String>, currentCore: String) -> String? {
        guard let current = kernelLevels[currentCore.lowercased()] else { return nil }
        let supported = supportedLevel(cpuFlags: cpuFlags)
        guard current < supported else { return nil }
        switch supported {
        case .avx512: return "SkylakeX"
        case .avx2: return "Haswell"
        case .legacy: return nil
        }
    }

    /// What the daemon does at start-up, as a pure function: the `OPENBLAS_CORETYPE` to
    /// re-execute with, or nil to carry on. An existing `OPENBLAS_CORETYPE` in `environment` is
    /// always respected (it may be set on purpose, and it is what stops a re-executed process
    /// from re-executing again); otherwise `recommendedCoreType(cpuFlags:currentCore:)`.
    public static func coreTypeForReexecution(environment: [String: String], cpuFlags: Set<String>,
                                              currentCore: String) -> String? {
        guard environment[coreTypeVariable] == nil else { return nil }
        return recommendedCoreType(cpuFlags: cpuFlags, currentCore: currentCore)
    }

    /// The CPU feature flags of the first processor in `cpuinfo` text (the x86 "flags" line,
    /// or the ARM "Features" line); empty when there is none.
    public static func cpuFlags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingWhitespace()
            guard key == "flags" || key == "Features" else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// The CPU feature flags from /proc/cpuinfo (empty when it cannot be read).
    public static func cpuFlags() -> Set<String> {
        cpuFlags(cpuinfo: readProcFile("/proc/cpuinfo") ?? "")
    }

    /// Reads a /proc file to its end (their reported size is 0, so read in chunks).
    static func readProcFile(_ path: String) -> String? {
        #if canImport(Glibc)
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
        #else
        return nil
        #endif
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
