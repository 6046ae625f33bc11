import Dispatch
import Foundation
import Synchronization

/// TensorCore's own threads: `Threading.count − 1` workers that sleep on a semaphore between
/// parallel regions, plus the calling thread. A region hands out chunk indices through an atomic
/// counter and waits for the last one; it allocates nothing, unlike a Dispatch region (which
/// copies its closure to the heap), so a decode step can run without heap allocations.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    @usableFromInline static let shared = WorkerPool()

    private let lock = NSLock()
    private var workers = 0
    private let wake = DispatchSemaphore(value: 0)
    private let nextChunk = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    /// Workers woken for the region that have left it; the region ends only when all have, so
    /// no worker still holds the body when the caller's closure goes out of scope.
    private let departed = Atomic<Int>(0)
    /// The region's work: a function of (context, chunk) that captures nothing, and the address
    /// of the caller's work value, which lives on the caller's stack for the whole region.
    /// Written before the workers are woken, read after.
    private var invoke: (UnsafeRawPointer, Int) -> Void = { _, _ in }
    private var context: UnsafeRawPointer?
    private var chunks = 0
    /// Polls of the region counter before a worker sleeps (tens of microseconds).
    static let spinTries = 200_000
    /// Counts regions, so that a spinning worker sees a new one without touching the semaphore.
    private let generation = Atomic<Int>(0)
    /// Held for the length of a region; a region that finds it taken runs serially.
    private let regionLock = NSLock()

    /// Runs `work(chunk)` for chunk in 0..<chunks on up to `threads` threads (the caller included).
    /// Converting the closure for the workers costs one small allocation; hot kernels use the
    /// `ChunkedWork` form of `parallelFor`, which allocates nothing.
    @usableFromInline
    func run(chunks count: Int, threads: Int, _ work: (Int) -> Void) {
        guard count > 1, threads > 1 else {
            for i in 0..<max(count, 0) { work(i) }
            return
        }
        withoutActuallyEscaping(work) { escapable in
            var closure = escapable
            withUnsafePointer(to: &closure) { pointer in
                run(chunks: count, threads: threads, context: UnsafeRawPointer(pointer)) { raw, i in
                    raw.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
                }
            }
        }
    }

    /// Runs `invoke(context, chunk)` for chunk in 0..<chunks. `invoke` must capture nothing (so
    /// that storing it allocates nothing) and `context` must stay valid until this returns.
    @usableFromInline
    func run(chunks count: Int, threads: Int, context: UnsafeRawPointer,
             invoke: @escaping (UnsafeRawPointer, Int) -> Void) {
        guard count > 1, threads > 1 else {
            for i in 0..<max(count, 0) { invoke(context, i) }
            return
        }
        // A region already running (nested in this one's body, or another thread's) means the
        // workers are busy: run this one on the caller rather than wait for them.
        guard regionLock.try() else {
            for i in 0..<count { invoke(context, i) }
            return
        }
        defer { regionLock.unlock() }
        ensureWorkers(threads - 1)
        self.invoke = invoke
        self.context = context
        chunks = count
        nextChunk.store(0, ordering: .relaxed)
        finished.store(0, ordering: .relaxed)
        departed.store(0, ordering: .releasing)
        let helpers = min(threads - 1, count - 1)
        generation.add(1, ordering: .releasing)
        for _ in 0..<helpers { wake.signal() }
        drain()
        while finished.load(ordering: .acquiring) < count || departed.load(ordering: .acquiring) < helpers { }
        self.context = nil
    }

    /// Takes chunks until none is left.
    private func drain() {
        guard let context else { return }
        let work = invoke
        while true {
            let i = nextChunk.add(1, ordering: .acquiringAndReleasing).oldValue
            if i >= chunks { return }
            work(context, i)
            finished.add(1, ordering: .releasing)
        }
    }

    private func ensureWorkers(_ wanted: Int) {
        lock.lock()
        defer { lock.unlock() }
        while workers < wanted {
            workers += 1
            // Strong capture: the pool is a process-wide singleton. An unowned one would make
            // every field access in the spin loop an atomic retain/release on the pool's header,
            // a cache line the caller's thread reads at every region start.
            let thread = Thread { [self] in
                var seen = self.generation.load(ordering: .acquiring)
                while true {
                    // Spin briefly on the region counter before sleeping: decode runs dozens of
                    // short regions back to back, and waking a sleeping thread costs more than a
                    // region's work. The semaphore token of the new region is consumed either way.
                    var tries = 0
                    while tries < WorkerPool.spinTries && self.generation.load(ordering: .acquiring) == seen {
                        tries += 1
                    }
                    self.wake.wait()
                    seen = self.generation.load(ordering: .acquiring)
                    self.drain()
                    self.departed.add(1, ordering: .releasing)
                }
            }
            thread.name = "TensorCore worker \(workers)"
            thread.start()
        }
    }
}
