// swift-tools-version: 6.1
import PackageDescription

// The SIMD kernels in TensorCore are written with Swift's SIMD types. Without these flags LLVM
// targets baseline x86-64 (SSE2): no AVX registers, and `fma` becomes a libm call. x86-64-v3
// (AVX2 + FMA + F16C) is the oldest level that runs the kernels at full width; every x86 server
// CPU since 2015 has it. Checked once in the assembly of `Kernels.dot` (vfmadd231ps on ymm).
//
// The flags are x86-64 only (the manifest is compiled for the machine that builds): on aarch64
// Linux (Grace, Graviton) and on macOS the same Swift SIMD code compiles for the native vector
// unit (NEON), the AVX-512 module builds without them and is never called (its run-time check
// reads no avx512f flag), and OpenBLAS comes from the system.
#if arch(x86_64)
let simdFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"], .when(platforms: [.linux])),
]

// The AVX-512 panel kernels use 512-bit vectors. Their module is compiled for x86-64-v4 and is
// called only after a run-time check of the CPU (TensorCore's `CPUFeatures`); TensorCoreAVX2 holds
// the same kernels on 256-bit vectors for the x86-64-v3 baseline (AMD Zen 1–3, Intel client).
let avx512Flags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v4"], .when(platforms: [.linux])),
]
#else
let simdFlags: [SwiftSetting] = []
let avx512Flags: [SwiftSetting] = []
#endif

let package = Package(
    name: "moesim",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "moesim", targets: ["moesim"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "ModelSpec", targets: ["ModelSpec"]),
        .library(name: "Hardware", targets: ["Hardware"]),
        .library(name: "Planner", targets: ["Planner"]),
        .library(name: "Estimator", targets: ["Estimator"]),
        .library(name: "Serving", targets: ["Serving"]),
        .library(name: "CPURuntime", targets: ["CPURuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "CPUHints"),
        .target(name: "TensorCoreAVX512", dependencies: ["CPUHints"], swiftSettings: avx512Flags),
        .target(name: "TensorCoreAVX2", dependencies: ["CPUHints"], swiftSettings: simdFlags),
        .target(name: "TensorCore", dependencies: ["COpenBLAS", "CPUHints", "TensorCoreAVX512", "TensorCoreAVX2"], swiftSettings: simdFlags),
        .target(name: "ConfigFile"),
        .target(name: "ModelSpec", dependencies: ["ConfigFile"]),
        .target(name: "Hardware", dependencies: ["ConfigFile"]),
        .target(name: "CPURuntime", dependencies: ["TensorCore", "ModelSpec", "Hardware", "ConfigFile"], swiftSettings: simdFlags),
        .target(name: "Planner", dependencies: ["ModelSpec", "Hardware"]),
        .target(name: "Estimator", dependencies: ["Planner", "ModelSpec", "Hardware", "ConfigFile"]),
        .target(name: "Serving", dependencies: ["Estimator", "Planner", "ModelSpec", "Hardware", "ConfigFile"]),
        .executableTarget(
            name: "moesim",
            dependencies: [
                "TensorCore", "ModelSpec", "Hardware", "Planner", "Estimator", "Serving", "CPURuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The repository root and its presets for every test target (not a test target itself).
        .target(name: "TestSupport", dependencies: ["ModelSpec", "Hardware"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"], swiftSettings: simdFlags),
        .testTarget(name: "ModelSpecTests", dependencies: ["ModelSpec", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "HardwareTests", dependencies: ["Hardware"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "ModelSpec", "Hardware", "TestSupport"]),
        .testTarget(name: "CPURuntimeTests", dependencies: ["CPURuntime", "ModelSpec", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "CLITests", dependencies: ["moesim", "TestSupport"]),
        .testTarget(name: "EstimatorTests", dependencies: ["Estimator", "Planner", "ModelSpec", "Hardware", "ConfigFile", "TestSupport"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Estimator", "Planner", "ModelSpec", "Hardware", "ConfigFile", "TestSupport"]),
    ]
)
