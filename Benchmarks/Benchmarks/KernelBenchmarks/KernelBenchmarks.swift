import Benchmark
import COpenBLAS
import TensorCore

// Speed of TensorCore against the physical limits and against raw OpenBLAS. Each benchmark records
// wall-clock time and the mallocs of its measured loop; derived rates (GFLOP/s, GB/s) are in the
// custom metrics, scaled as integers (MFLOP/s, MB/s) because package-benchmark stores integers.
// docs/performance.md lists the figures of one run with the machine they ran on.

extension BenchmarkMetric {
    static let megaflops = BenchmarkMetric.custom("MFLOP/s", polarity: .prefersLarger, useScalingFactor: false)
    static let megabytes = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
}

let rateMetrics: [BenchmarkMetric] = [.wallClock, .mallocCountTotal, .megaflops, .megabytes]

func configuration(_ seconds: Int = 3) -> Benchmark.Configuration {
    .init(metrics: rateMetrics, timeUnits: .milliseconds, warmupIterations: 2,
          maxDuration: .seconds(seconds), maxIterations: 50)
}

func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    // Shapes here are constants, so this cannot fail.
    return (try? Tensor(shape: shape) { rng.nextSigned() }) ?? (try? Tensor(zeros: [0]))!
}

/// Times `body` once and records FLOP/s and bytes/s derived from the given counts.
func measure(_ benchmark: Benchmark, flops: Double, bytes: Double, _ body: () -> Void) {
    let seconds = Calibration.time {
        benchmark.startMeasurement()
        body()
        benchmark.stopMeasurement()
    }
    if flops > 0 { benchmark.measurement(.megaflops, Int(flops / seconds / 1e6)) }
    if bytes > 0 { benchmark.measurement(.megabytes, Int(bytes / seconds / 1e6)) }
}

func gemmBenchmarks() {
    for (m, n, k) in [(2048, 2048, 2048), (512, 2048, 2048)] {
        let a = random([m, k], seed: 1), b = random([k, n], seed: 2)
        var c = (try? Tensor(zeros: [m, n]))!
        let flops = 2 * Double(m * n * k)
        Benchmark("GEMM \(m)x\(n)x\(k) TensorCore", configuration: configuration()) { benchmark in
            measure(benchmark, flops: flops, bytes: 0) { try? matmul(a, b, into: &c) }
        }
        Benchmark("GEMM \(m)x\(n)x\(k) raw cblas_sgemm", configuration: configuration()) { benchmark in
            // The pointers are taken inside the benchmark, while the captured tensors keep them alive.
            // OpenBLAS with its own threads (TensorCore keeps it at one; see Threading).
            BLAS.withOpenBLASThreads { a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        measure(benchmark, flops: flops, bytes: 0) {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                                        1, ap.baseAddress, Int32(k), bp.baseAddress, Int32(n), 0, cp.baseAddress, Int32(n))
                        }
                    }
                }
            } }
        }
    }
}

/// GEMV on a 32768 × 8192 matrix: 1 GiB in f32, 512 MiB in bf16, both beyond this machine's
/// 260 MiB L3 (a smaller matrix in bf16 would be served from L3 and overstate bandwidth).
func gemvBenchmarks() {
    let rows = 32768, cols = 8192
    let w = random([rows, cols], seed: 3)
    let x = random([1, cols], seed: 4)
    var y = (try? Tensor(zeros: [1, rows]))!
    let f32 = (try? WeightMatrix(f32: w))!
    let bf16 = WeightMatrix.bf16((try? BF16Matrix(w))!)
    var formats = [("f32", f32), ("bf16", bf16)]
    // The panel layouts the runtime uses on x86-64 (experts in f32, everything in bf16), with every
    // kernel family this CPU runs: on an AVX-512 machine the AVX2 kernels too, as a stand-in for
    // AVX2-only CPUs.
    for family in PanelMatrix.Kernels.allCases where family.isSupported {
        let suffix = family == .avx512 ? "" : " \(family.rawValue)"
        formats.append(("f32 panels\(suffix)", .panels((try? PanelMatrix(w, kernels: family))!)))
        formats.append(("bf16 panels\(suffix)", .panels((try? PanelMatrix(w, element: .bf16, kernels: family))!)))
    }
    for (name, matrix) in formats {
        Benchmark("GEMV 32768x8192 \(name)", configuration: configuration()) { benchmark in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    measure(benchmark, flops: 2 * Double(rows * cols), bytes: Double(matrix.byteCount)) {
                        matrix.apply(xp.baseAddress!, batch: 1, into: yp.baseAddress!)
                    }
                }
            }
        }
    }
}

/// 64 experts, top-8, 2048 → 1024, against one plain GEMM with the same FLOPs. At 512 tokens
/// each expert gets about 64 rows; at 4096 tokens about 512 (a prefill-sized batch).
func groupedBenchmarks() {
    let experts = 64, k = 8, inWidth = 2048, outWidth = 1024
    let expertTensors = (0..<experts).map { random([outWidth, inWidth], seed: 100 + UInt64($0)) }
    let expertWeights = expertTensors.map { (try? WeightMatrix(f32: $0))! }
    // The same experts repacked as panels (what the runtime loads on x86-64), for each kernel family.
    let panelWeights = PanelMatrix.Kernels.allCases.filter(\.isSupported).map { family in
        (family, expertTensors.map { WeightMatrix.panels((try? PanelMatrix($0, kernels: family))!) })
    }
    for tokens in [512, 4096] {
        var rng = SplitMix64(seed: 5)
        var ids: [Int32] = [], weights: [Float] = []
        for _ in 0..<tokens {
            var chosen = Set<Int32>()
            while chosen.count < k { chosen.insert(Int32(rng.next() % UInt64(experts))) }
            ids += chosen.sorted()
            weights += Array(repeating: 1 / Float(k), count: k)
        }
        let assignments = (try? ExpertAssignments(tokenCount: tokens, expertsPerToken: k, expertCount: experts,
                                                  experts: ids, weights: weights))!
        let x = random([tokens, inWidth], seed: 6)
        var y = (try? Tensor(zeros: [tokens, outWidth]))!
        let workspace = GroupedMatmulWorkspace()
        let flops = 2 * Double(tokens * k * inWidth * outWidth)
        Benchmark("Grouped expert matmul 64e \(tokens)t top8 2048->1024", configuration: configuration()) { benchmark in
            measure(benchmark, flops: flops, bytes: 0) {
                try? GroupedMatmul.expertMatmul(x, assignments: assignments, weights: expertWeights,
                                                workspace: workspace, into: &y)
            }
        }
        for (family, weights) in panelWeights {
            let suffix = family == .avx512 ? "" : " \(family.rawValue)"
            Benchmark("Grouped expert matmul 64e \(tokens)t top8 2048->1024 panels\(suffix)", configuration: configuration()) { benchmark in
                measure(benchmark, flops: flops, bytes: 0) {
                    try? GroupedMatmul.expertMatmul(x, assignments: assignments, weights: weights,
                                                    workspace: workspace, into: &y)
                }
            }
        }
        let a = random([tokens * k, inWidth], seed: 7), b = random([outWidth, inWidth], seed: 8)
        var c = (try? Tensor(zeros: [tokens * k, outWidth]))!
        Benchmark("Plain GEMM \(tokens * k)x1024x2048 (same FLOPs)", configuration: configuration()) { benchmark in
            measure(benchmark, flops: flops, bytes: 0) { try? matmul(a, b, transposeB: true, into: &c) }
        }
    }
}

/// Elementwise kernels on 64 Mi floats (256 MiB per operand, three operands well past the 260 MiB
/// L3): bytes moved = reads + writes.
func elementwiseBenchmarks() {
    let count = 64 * 1024 * 1024
    let a = random([count], seed: 9), b = random([count], seed: 10)
    var out = (try? Tensor(zeros: [count]))!
    let kernels: [(String, Int, (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)] = [
        ("add", 12, { Elementwise.add($0, $1, into: $2, count: count) }),
        ("siluMul", 12, { Elementwise.siluMul(gate: $0, up: $1, into: $2, count: count) }),
        // Kimi K3's activation: three exponentials a lane (σ and two tanh), so compute, not bytes, may bound it.
        ("situMul", 12, { Elementwise.situMul(gate: $0, up: $1, beta: 4, linearBeta: 25, into: $2, count: count) }),
        ("scale", 8, { a, _, o in Elementwise.scale(a, by: 0.5, into: o, count: count) }),
    ]
    for (name, bytesPerElement, kernel) in kernels {
        Benchmark("Elementwise \(name) 64Mi", configuration: configuration()) { benchmark in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        measure(benchmark, flops: 0, bytes: Double(bytesPerElement * count)) {
                            kernel(ap.baseAddress!, bp.baseAddress!, op.baseAddress!)
                        }
                    }
                }
            }
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    BLASCore.reexecWithOptimizedKernelsIfNeeded()
    gemmBenchmarks()
    gemvBenchmarks()
    groupedBenchmarks()
    elementwiseBenchmarks()
}


