// swift-tools-version:6.0
// Loquat: a resident JSON-RPC daemon for low-bit LLM + LoRA numerics on the CPU.
// Layering (docs/ARCHITECTURE.md): imports only go down; the numeric branch and the wire
// branch meet only in LoquatServer. Each C library is imported by exactly one target.
import PackageDescription

let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Loquat",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "loquatd", targets: ["loquatd"]),
    ],
    targets: [
        // Layer 0: C surfaces, found through pkg-config.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CJansson", path: "Sources/CJansson", pkgConfig: "jansson",
                       providers: [.apt(["libjansson-dev"])]),
        // Layer 1-2.
        .target(name: "LoquatSupport", swiftSettings: optimized),
        .target(name: "Tensors", dependencies: ["LoquatSupport"], swiftSettings: optimized),
        .target(name: "JSON", dependencies: ["LoquatSupport", "CJansson"], swiftSettings: optimized),
        // Layer 3.
        .target(name: "LinearAlgebra", dependencies: ["Tensors", "CBLAS"], swiftSettings: optimized),
        .target(name: "Checkpoints", dependencies: ["Tensors", "JSON"], swiftSettings: optimized),
        // Layer 4.
        .target(name: "Quantization", dependencies: ["Tensors", "LinearAlgebra"], swiftSettings: optimized),
        .target(name: "Adapters", dependencies: ["Tensors", "LinearAlgebra", "Quantization"], swiftSettings: optimized),
        .target(name: "Models", dependencies: ["Tensors", "LinearAlgebra", "Quantization", "Adapters", "Checkpoints"],
                swiftSettings: optimized),
        // Layer 5-7.
        .target(name: "JSONRPC", dependencies: ["JSON"], swiftSettings: optimized),
        .target(name: "LoquatServer", dependencies: [
            "LoquatSupport", "Tensors", "LinearAlgebra", "Checkpoints", "Quantization", "Adapters", "Models",
            "JSON", "JSONRPC",
        ], swiftSettings: optimized),
        .executableTarget(name: "loquatd", dependencies: ["LoquatServer"], swiftSettings: optimized),
        // `make bench`: micro-benchmarks of our own kernels; peers are timed by scripts/bench.
        .executableTarget(name: "LoquatBench", dependencies: ["Adapters", "LoquatSupport", "Tensors", "LinearAlgebra", "Checkpoints", "Quantization", "Models", "JSON", "JSONRPC"],
                          swiftSettings: optimized),

        // Tests.
        .target(name: "TestSupport", dependencies: ["Tensors", "JSON"], path: "Tests/TestSupport"),
        .testTarget(name: "LoquatSupportTests", dependencies: ["LoquatSupport"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "LinearAlgebraTests", dependencies: ["LinearAlgebra", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Adapters", "Checkpoints", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "Checkpoints", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "Quantization", "LinearAlgebra", "Checkpoints", "Models", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "JSONRPCTests", dependencies: ["JSONRPC", "JSON"]),
        .testTarget(name: "LoquatServerTests", dependencies: ["LoquatServer", "JSON", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["JSON", "Checkpoints", "TestSupport"]),
    ]
)
