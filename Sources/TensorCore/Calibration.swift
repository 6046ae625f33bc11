import COpenBLAS

/// What `moesim calibrate` measures on this CPU, with the sizes it used.
public struct CalibrationResult: Sendable, Codable, Equatable {
    /// GEMM rate through TensorCore's `matmul(_:_:into:)`, in FLOP/s.
    public var gemmFlops: Double
    /// The same GEMM through a raw `cblas_sgemm` call, in FLOP/s.
    public var blasGemmFlops: Double
    /// STREAM triad bandwidth a = b + s·c, counting 12 bytes per element, in bytes/s.
    public var memoryBandwidth: Double
    /// Read-only bandwidth (a dot product of two arrays far beyond L3), in bytes/s: what streaming
    /// weights and KV cache in a decode step draws, and the figure the estimator prices reads at.
    public var readBandwidth: Double
    /// Weights streamed per second by the runtime's own decode kernel (one row through a Float32
    /// matrix far beyond L3, in the layout the runtime loads on this CPU): what a decode step
    /// actually draws, and what the estimator prices the CPU's reads at. On some CPUs it falls
    /// well short of `readBandwidth` (a fresh AMD EPYC: 26 against 45 GB/s).
    public var streamBandwidth: Double
    public var threads: Int
    public var gemmSize: Int
    public var triadBytes: Int
}

/// Measurements of the host CPU. Each figure is the best of `repeats` runs, the usual convention
/// for peak-rate measurements (the minimum time is the least disturbed by other work).
public enum Calibration {
    /// Buffers of the triad: three arrays of 128 Mi floats, 1.5 GiB in all, far beyond any L3
    /// (this machine's is 260 MiB), so the triad measures DRAM and not cache.
    public static let defaultTriadElements = 128 * 1024 * 1024

    public static func run(gemmSize: Int = 2048, triadElements: Int = defaultTriadElements,
                           repeats: Int = 3, progress: (String) -> Void = { _ in }) throws -> CalibrationResult {
        guard gemmSize >= 1, triadElements >= 8, repeats >= 1 else {
            throw TensorError.invalidArgument(operation: "calibrate",
                                              reason: "sizes and repeats must be positive")
        }
        progress("GEMM \(gemmSize)³ through TensorCore and raw BLAS")
        let (tensorCore, blas) = try measureGEMM(size: gemmSize, repeats: repeats)
        progress("memory triad and reads over \(3 * triadElements * 4 / (1 << 20)) MiB")
        let (bandwidth, reads) = measureMemory(elements: triadElements, repeats: repeats)
        progress("decode kernel streaming a \(2 * triadElements * 4 / (1 << 20)) MiB matrix")
        let stream = try measureStream(floats: 2 * triadElements, repeats: repeats)
        return CalibrationResult(gemmFlops: tensorCore, blasGemmFlops: blas, memoryBandwidth: bandwidth,
                                 readBandwidth: reads, streamBandwidth: stream, threads: Threading.count, gemmSize: gemmSize,
                                 triadBytes: 3 * triadElements * 4)
    }

    /// Bytes/s of one row through a matrix of about `floats` Float32 weights, 4,096 wide, through
    /// `WeightMatrix.apply` in the layout the runtime loads (panels on x86-64, else row-major).
    public static func measureStream(floats: Int, repeats: Int) throws -> Double {
        let cols = 4096, rows = max(64, floats / cols)
        var rng = SplitMix64(seed: 11)
        let weights: WeightMatrix
        if PanelMatrix.isSupported {
            let staging = UnsafeMutableBufferPointer<Float>.allocate(capacity: 64 * cols)
            defer { staging.deallocate() }
            weights = .panels(try PanelMatrix(rows: rows, cols: cols, element: .f32, staging: staging) { range, out in
                for i in 0..<(range.count * cols) { out[i] = rng.nextSigned() }
            })
        } else {
            weights = try WeightMatrix(f32: try Tensor(shape: [rows, cols]) { rng.nextSigned() })
        }
        let x = try Tensor(shape: [1, cols]) { rng.nextSigned() }
        var y = try Tensor(zeros: [1, rows])
        var best = Double.infinity
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
                weights.apply(xp, batch: 1, into: yp)  // warm-up
                for _ in 0..<(repeats + 1) {
                    best = min(best, time { weights.apply(xp, batch: 1, into: yp) })
                }
            }
        }
        return Double(weights.byteCount) / best
    }

    /// Best rate of n×n×n GEMM via `matmul` and via `cblas_sgemm` on the same operands.
    public static func measureGEMM(size n: Int, repeats: Int) throws -> (tensorCore: Double, blas: Double) {
        var rng = SplitMix64(seed: 7)
        let a = try Tensor(shape: [n, n]) { rng.nextSigned() }
        let b = try Tensor(shape: [n, n]) { rng.nextSigned() }
        let flops = 2 * Double(n) * Double(n) * Double(n)
        var c = try Tensor(zeros: [n, n])
        try matmul(a, b, into: &c) // warm-up: page faults, OpenBLAS thread start
        var bestTensorCore = Double.infinity
        for _ in 0..<repeats {
            let seconds = try time { try matmul(a, b, into: &c) }
            bestTensorCore = min(bestTensorCore, seconds)
        }
        var bestBLAS = Double.infinity
        // The raw library with its own threads, as a user of OpenBLAS would call it.
        BLAS.withOpenBLASThreads { a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    guard let ap = ap.baseAddress, let bp = bp.baseAddress, let cp = cp.baseAddress else { return }
                    for _ in 0..<repeats {
                        let seconds = time {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                                        1, ap, Int32(n), bp, Int32(n), 0, cp, Int32(n))
                        }
                        bestBLAS = min(bestBLAS, seconds)
                    }
                }
            }
        } }
        return (flops / bestTensorCore, flops / bestBLAS)
    }

    /// STREAM triad a[i] = b[i] + 3·c[i] and a read-only pass Σ b[i]·c[i], split over
    /// `Threading.count` threads; bytes/s of each.
    public static func measureMemory(elements: Int, repeats: Int) -> (triad: Double, reads: Double) {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: elements)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: elements)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: elements)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        let chunks = Threading.count
        // First touch from the threads that will use the pages.
        parallelFor(chunks: chunks) { chunk in
            let start = elements * chunk / chunks, end = elements * (chunk + 1) / chunks
            (a + start).initialize(repeating: 0, count: end - start)
            (b + start).initialize(repeating: 1, count: end - start)
            (c + start).initialize(repeating: 2, count: end - start)
        }
        var best = Double.infinity
        for _ in 0..<(repeats + 1) {
            let seconds = time {
                parallelFor(chunks: chunks) { chunk in
                    let start = elements * chunk / chunks, end = elements * (chunk + 1) / chunks
                    triad(b + start, c + start, scalar: 3, into: a + start, count: end - start)
                }
            }
            best = min(best, seconds)
        }
        var bestRead = Double.infinity
        var sink: Float = 0
        for _ in 0..<(repeats + 1) {
            var partial = [Float](repeating: 0, count: chunks)
            let seconds = time {
                partial.withUnsafeMutableBufferPointer { p in
                    parallelFor(chunks: chunks) { chunk in
                        let start = elements * chunk / chunks, end = elements * (chunk + 1) / chunks
                        p[chunk] = Reduction.dot(b + start, c + start, count: end - start)
                    }
                }
            }
            sink += partial.reduce(0, +)
            bestRead = min(bestRead, seconds)
        }
        if sink.isNaN { bestRead = .infinity }  // keeps the reads from being optimised away
        return (Double(3 * elements * MemoryLayout<Float>.stride) / best,
                Double(2 * elements * MemoryLayout<Float>.stride) / bestRead)
    }

    @inline(never)
    static func triad(_ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, scalar: Float,
                      into a: UnsafeMutablePointer<Float>, count: Int) {
        let s = Vector8(repeating: scalar)
        var i = 0
        while i + 8 <= count {
            store8(load8(b + i).addingProduct(load8(c + i), s), a + i)
            i += 8
        }
        while i < count { a[i] = b[i] + scalar * c[i]; i += 1 }
    }

    /// Seconds taken by `body`, on the monotonic clock.
    public static func time(_ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
