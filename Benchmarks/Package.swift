// swift-tools-version: 6.1
// Speed benchmarks of moesim, kept in their own package so that building and testing moesim never
// fetches or compiles the benchmark harness. Run from this folder: `swift package benchmark`.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which is whatever the clone was called.
let moesimFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "moesim-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TensorCore", package: moesimFolder),
            ],
            path: "Benchmarks/KernelBenchmarks",
            swiftSettings: [.unsafeFlags(["-Xcc", "-march=x86-64-v3"], .when(platforms: [.linux]))],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RuntimeBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CPURuntime", package: moesimFolder),
                .product(name: "ModelSpec", package: moesimFolder),
                .product(name: "TensorCore", package: moesimFolder),
            ],
            path: "Benchmarks/RuntimeBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "EstimatorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Estimator", package: moesimFolder),
                .product(name: "Planner", package: moesimFolder),
                .product(name: "ModelSpec", package: moesimFolder),
                .product(name: "Hardware", package: moesimFolder),
            ],
            path: "Benchmarks/EstimatorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ServingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Serving", package: moesimFolder),
                .product(name: "Estimator", package: moesimFolder),
                .product(name: "Planner", package: moesimFolder),
                .product(name: "ModelSpec", package: moesimFolder),
                .product(name: "Hardware", package: moesimFolder),
            ],
            path: "Benchmarks/ServingBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
