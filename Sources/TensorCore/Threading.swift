import Foundation
import COpenBLAS
import Synchronization

/// Who owns the cores: TensorCore.
///
/// One thread count `Threading.count` governs everything. TensorCore's worker pool (`WorkerPool`:
/// the caller plus sleeping workers) runs every parallel region, and OpenBLAS is set to one
/// thread: a large `BLAS.gemm` is split into column (or row) slices, one single-threaded sgemm
/// call per pool thread, and attention runs its per-head GEMMs inside a region over heads.
/// OpenBLAS's own threads would otherwise keep spinning in sched_yield after each call, against
/// TensorCore's workers on the same cores (16% of a prefill's samples, measured with perf). The
/// default is every core the process may use; `MOESIM_THREADS` or the CLI's `--threads` set it.
public enum Threading {
    private static let current = Atomic<Int>(0)

    /// The number of threads TensorCore and OpenBLAS use.
    public static var count: Int {
        let value = current.load(ordering: .relaxed)
        if value > 0 { return value }
        let initial = defaultCount()
        configure(threads: initial)
        return initial
    }

    /// Sets the thread count for TensorCore and OpenBLAS. Throws unless `threads` ≥ 1.
    public static func set(_ threads: Int) throws {
        // More threads than 4 per core only adds contention (and each one a stack).
        let limit = max(4 * ProcessInfo.processInfo.activeProcessorCount, 4)
        guard threads >= 1, threads <= limit else {
            throw TensorError.invalidArgument(operation: "threads", reason: "must be 1 to \(limit) (4 per core), got \(threads)")
        }
        configure(threads: threads)
    }

    private static func configure(threads: Int) {
        current.store(threads, ordering: .relaxed)
        openblas_set_num_threads(1)
    }

    /// `MOESIM_THREADS` when it holds a positive integer, else the active processor count.
    /// An unusable value is ignored here; the CLI reports it as an error before any work starts.
    public static func defaultCount() -> Int {
        if let text = environmentThreads(), let value = Int(text), value >= 1 { return value }
        return ProcessInfoCores.active
    }

    public static func environmentThreads() -> String? {
        guard let raw = getenv("MOESIM_THREADS") else { return nil }
        return String(cString: raw)
    }

    /// The OpenBLAS build in use, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64".
    public static var blasConfiguration: String {
        guard let config = openblas_get_config() else { return "OpenBLAS" }
        return String(cString: config)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum ProcessInfoCores {
    static var active: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// Work split into chunks, as a value: a parallel region hands it to the workers by address, so
/// running it allocates nothing (the hot kernels use this form).
public protocol ChunkedWork {
    func run(chunk: Int)
}

/// TensorCore's parallel regions for callers outside the module (the runtime's row loops).
/// A region started inside another runs on the calling thread, so bodies may call anything in
/// TensorCore, BLAS included.
public enum Parallel {
    /// Runs `work.run(chunk:)` for chunk in 0..<chunks on TensorCore's threads, allocation-free.
    @inlinable
    public static func run<W: ChunkedWork>(chunks: Int, _ work: W) {
        parallelFor(chunks: min(chunks, Threading.count), work)
    }

    /// The same with a closure, at the cost of one small allocation per region: for loops that
    /// run a few times per forward pass (attention over heads), not per decode kernel.
    public static func forEach(chunks: Int, _ body: (Int) -> Void) {
        parallelFor(chunks: min(chunks, Threading.count), body)
    }

    /// How many chunks to split `rows` rows of `width` floats into: one below 256 Ki floats.
    @inlinable
    public static func chunks(rows: Int, width: Int) -> Int {
        rows * width >= Elementwise.parallelThreshold ? min(Threading.count, max(rows, 1)) : 1
    }
}

/// Runs `work.run(chunk:)` for every chunk in 0..<chunks, in parallel when more than one thread
/// is allowed. Allocation-free.
@inlinable
func parallelFor<W: ChunkedWork>(chunks: Int, _ work: W) {
    if chunks <= 1 {
        if chunks == 1 { work.run(chunk: 0) }
        return
    }
    withUnsafePointer(to: work) { pointer in
        WorkerPool.shared.run(chunks: chunks, threads: Threading.count, context: UnsafeRawPointer(pointer)) { raw, i in
            raw.assumingMemoryBound(to: W.self).pointee.run(chunk: i)
        }
    }
}

/// Runs `body(chunk)` for `chunk` in 0..<chunks, in parallel when more than one thread is allowed.
@inlinable
func parallelFor(chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 1 {
        if chunks == 1 { body(0) }
        return
    }
    // The chunks write disjoint ranges through raw pointers, which the caller guarantees.
    WorkerPool.shared.run(chunks: chunks, threads: Threading.count, body)
}
