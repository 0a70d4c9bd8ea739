import LinearAlgebra
import XCTest

final class BLASRuntimeTests: XCTestCase {
    private let sse: Set<String> = ["fpu", "sse", "sse2", "ssse3", "sse4_1", "sse4_2"]
    private var avx2: Set<String> { sse.union(["avx", "avx2", "fma"]) }
    private var avx512: Set<String> { avx2.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) }

    func testAVX512CPUWithGenericCoreGetsSkylakeX() {
        for core in ["Prescott", "Core2", "Nehalem", "Sandybridge", "Barcelona", "Haswell", "Zen", "prescott"] {
            XCTAssertEqual(BLASRuntime.recommendedCoreType(cpuFlags: avx512, currentCore: core), "SkylakeX", core)
        }
    }

    func testAVX2CPUWithGenericCoreGetsHaswell() {
        for core in ["Prescott", "Sandybridge", "Bulldozer"] {
            XCTAssertEqual(BLASRuntime.recommendedCoreType(cpuFlags: avx2, currentCore: core), "Haswell", core)
        }
        XCTAssertNil(BLASRuntime.recommendedCoreType(cpuFlags: avx2, currentCore: "Haswell"))
        XCTAssertNil(BLASRuntime.recommendedCoreType(cpuFlags: avx2, currentCore: "Zen"))
    }

    func testNoOverrideWhenCoreIsAlreadyGoodOrUnknownOrCPUIsOld() {
        for core in ["SkylakeX", "Cooperlake", "SapphireRapids"] {
            XCTAssertNil(BLASRuntime.recommendedCoreType(cpuFlags: avx512, currentCore: core), core)
        }
        XCTAssertNil(BLASRuntime.recommendedCoreType(cpuFlags: avx512, currentCore: "NeoverseN1"), "unknown core")
        XCTAssertNil(BLASRuntime.recommendedCoreType(cpuFlags: sse, currentCore: "Prescott"))
        // AVX-512F alone (e.g. Knights Landing) is not the Skylake-X subset; AVX2 still applies.
        XCTAssertEqual(BLASRuntime.recommendedCoreType(cpuFlags: avx2.union(["avx512f"]), currentCore: "Prescott"), "Haswell")
        // AVX2 without FMA is not enough for the Haswell kernels.
        XCTAssertNil(BLASRuntime.recommendedCoreType(cpuFlags: sse.union(["avx", "avx2"]), currentCore: "Prescott"))
    }

    func testExistingCoreTypeSettingIsRespected() {
        XCTAssertEqual(BLASRuntime.coreTypeForReexecution(environment: ["PATH": "/bin"], cpuFlags: avx512,
                                                          currentCore: "Prescott"), "SkylakeX")
        for value in ["SkylakeX", "Prescott", ""] {
            XCTAssertNil(BLASRuntime.coreTypeForReexecution(environment: ["OPENBLAS_CORETYPE": value], cpuFlags: avx512,
                                                            currentCore: "Prescott"), "set to \(value)")
        }
    }

    func testCPUFlagsParsing() {
        let cpuinfo = """
        processor\t: 0
        model name\t: AMD EPYC
        flags\t\t: fpu sse2 avx2 avx512f
        processor\t: 1
        flags\t\t: something else
        """
        XCTAssertEqual(BLASRuntime.cpuFlags(cpuinfo: cpuinfo), ["fpu", "sse2", "avx2", "avx512f"])
        XCTAssertEqual(BLASRuntime.cpuFlags(cpuinfo: "Features\t: fp asimd sve\n"), ["fp", "asimd", "sve"])
        XCTAssertEqual(BLASRuntime.cpuFlags(cpuinfo: ""), [])
        #if os(Linux) && arch(x86_64)
        XCTAssertTrue(BLASRuntime.cpuFlags().contains("sse2"), "this machine's /proc/cpuinfo")
        #endif
    }

    func testRuntimeIntrospection() {
        XCTAssertFalse(BLASRuntime.coreName.isEmpty)
        XCTAssertTrue(BLASRuntime.configuration.contains("OpenBLAS"))
        let original = BLASRuntime.threadCount
        XCTAssertGreaterThanOrEqual(original, 1)
        BLASRuntime.threadCount = 1
        XCTAssertEqual(BLASRuntime.threadCount, 1)
        BLASRuntime.threadCount = original
        XCTAssertEqual(BLASRuntime.threadCount, original)
    }
}
