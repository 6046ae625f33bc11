// Register-blocked matrix kernels on 512-bit vectors, for weights stored in panels of 32 output
// columns (`PanelMatrix` in TensorCore): panel p holds W[32p + j, k] at k·32 + j, so one k step
// is two contiguous 64-byte loads (Float32) or one (bf16, widened in registers).
//
// This module is compiled for x86-64-v4 (AVX-512) and only ever called after TensorCore has
// checked that the CPU has AVX-512F (`CPUFeatures`). Its public functions are non-generic and
// take raw pointers; the generic kernels below are internal and always inlined into them, so no
// generic specialisation compiled for AVX-512 can be shared with (and picked by the linker for)
// code that runs on other CPUs.

import CPUHints

typealias Vector16 = SIMD16<Float>

/// How far ahead of its reads a one- or four-row kernel prefetches, in bytes. A matrix-vector
/// product is one sequential stream per thread; prefetching well ahead keeps more lines in flight
/// than the hardware prefetcher alone (bf16 panels 23 → 31 GB/s).
let streamAhead = 8192

@inline(__always)
func load16(_ p: UnsafeRawPointer) -> Vector16 {
    p.loadUnaligned(as: Vector16.self)
}

@inline(__always)
func store16(_ v: Vector16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector16.self)
}

/// How one k step of a panel (32 weights) is stored and widened to two Float32 vectors.
protocol PanelElement {
    /// Bytes of one k step.
    static var stepBytes: Int { get }
    static func load(_ p: UnsafeRawPointer) -> (Vector16, Vector16)
}

enum F32Panel: PanelElement {
    static var stepBytes: Int { 128 }

    @inline(__always)
    static func load(_ p: UnsafeRawPointer) -> (Vector16, Vector16) { (load16(p), load16(p + 64)) }
}

/// bf16 panels store each k step so that 32-bit word j holds column j in its low half and column
/// j + 16 in its high half: one 64-byte load widens to both vectors with one shift and one mask
/// (bf16 is the top half of a Float32, so widening is exact).
enum BF16Panel: PanelElement {
    static var stepBytes: Int { 64 }

    @inline(__always)
    static func load(_ p: UnsafeRawPointer) -> (Vector16, Vector16) {
        let words = p.loadUnaligned(as: SIMD16<UInt32>.self)
        return (unsafeBitCast(words &<< 16, to: Vector16.self),
                unsafeBitCast(words & SIMD16(repeating: 0xFFFF_0000), to: Vector16.self))
    }
}

/// y[r][0..<32] = Σₖ x[r][k] · panel[k][0..<32] for the eight rows r < 8 of x (row stride `ldx`),
/// into rows of y with stride `ldy`.
///
/// Sixteen accumulators (8 rows × 2 vectors) stay in registers for all k: each k step is the
/// panel load and eight broadcasts of x feeding sixteen FMAs, enough independent chains to keep
/// both FMA units busy through their four-cycle latency.
///
/// It also prefetches `prefetchLines` 64-byte lines from `prefetch` on, spread evenly over the k
/// steps: the caller points it at the panel it will compute next, so that panel's trip from memory
/// overlaps this arithmetic instead of stalling the next call. (Issued in a burst, the prefetches
/// would exhaust the core's line-fill buffers and stall the kernel's own loads.)
@inline(__always)
func kernel8x32<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafeRawPointer, _ k: Int,
                                 _ y: UnsafeMutablePointer<Float>, _ ldy: Int, prefetch: UnsafeRawPointer, prefetchLines: Int) {
    let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
    let x4 = x + 4 * ldx, x5 = x + 5 * ldx, x6 = x + 6 * ldx, x7 = x + 7 * ldx
    var c0a = Vector16(), c0b = Vector16(), c1a = Vector16(), c1b = Vector16()
    var c2a = Vector16(), c2b = Vector16(), c3a = Vector16(), c3b = Vector16()
    var c4a = Vector16(), c4b = Vector16(), c5a = Vector16(), c5b = Vector16()
    var c6a = Vector16(), c6b = Vector16(), c7a = Vector16(), c7b = Vector16()
    var b = panel
    let interval = prefetchLines > 0 ? max(1, k / prefetchLines) : k + 1
    var countdown = 0, line = prefetch, issued = 0
    for i in 0..<k {
        if countdown == 0 {
            countdown = interval
            if issued < prefetchLines { moesim_prefetch(line); line += 64; issued += 1 }
        }
        countdown -= 1
        let (ba, bb) = E.load(b)
        var s = Vector16(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector16(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector16(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector16(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        s = Vector16(repeating: x4[i]); c4a = c4a.addingProduct(s, ba); c4b = c4b.addingProduct(s, bb)
        s = Vector16(repeating: x5[i]); c5a = c5a.addingProduct(s, ba); c5b = c5b.addingProduct(s, bb)
        s = Vector16(repeating: x6[i]); c6a = c6a.addingProduct(s, ba); c6b = c6b.addingProduct(s, bb)
        s = Vector16(repeating: x7[i]); c7a = c7a.addingProduct(s, ba); c7b = c7b.addingProduct(s, bb)
        b += E.stepBytes
    }
    store16(c0a, y); store16(c0b, y + 16)
    store16(c1a, y + ldy); store16(c1b, y + ldy + 16)
    store16(c2a, y + 2 * ldy); store16(c2b, y + 2 * ldy + 16)
    store16(c3a, y + 3 * ldy); store16(c3b, y + 3 * ldy + 16)
    store16(c4a, y + 4 * ldy); store16(c4b, y + 4 * ldy + 16)
    store16(c5a, y + 5 * ldy); store16(c5b, y + 5 * ldy + 16)
    store16(c6a, y + 6 * ldy); store16(c6b, y + 6 * ldy + 16)
    store16(c7a, y + 7 * ldy); store16(c7b, y + 7 * ldy + 16)
}

/// Four rows against one panel (decode batches of 4–7): eight accumulators, each panel load feeds
/// four rows, and the panel streams with software prefetch `streamAhead` bytes ahead.
@inline(__always)
func kernel4x32<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafeRawPointer, _ k: Int,
                                 _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
    var c0a = Vector16(), c0b = Vector16(), c1a = Vector16(), c1b = Vector16()
    var c2a = Vector16(), c2b = Vector16(), c3a = Vector16(), c3b = Vector16()
    var b = panel
    let stepsPerLine = max(1, 64 / E.stepBytes)
    for i in 0..<k {
        if i % stepsPerLine == 0 {
            for line in 0..<max(1, E.stepBytes / 64) { moesim_prefetch(b + streamAhead + 64 * line) }
        }
        let (ba, bb) = E.load(b)
        var s = Vector16(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector16(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector16(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector16(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        b += E.stepBytes
    }
    store16(c0a, y); store16(c0b, y + 16)
    store16(c1a, y + ldy); store16(c1b, y + ldy + 16)
    store16(c2a, y + 2 * ldy); store16(c2b, y + 2 * ldy + 16)
    store16(c3a, y + 3 * ldy); store16(c3b, y + 3 * ldy + 16)
}

/// One row: y[0..<32] = Σₖ x[k] · panel[k][0..<32]. Even and odd k accumulate separately so that
/// four FMA chains are in flight; the matrix-vector case is bound by reading the panel, which
/// streams with software prefetch `streamAhead` bytes ahead.
@inline(__always)
func kernel1x32<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ panel: UnsafeRawPointer, _ k: Int,
                                 _ y: UnsafeMutablePointer<Float>) {
    var ea = Vector16(), eb = Vector16(), oa = Vector16(), ob = Vector16()
    var b = panel
    var i = 0
    while i + 2 <= k {
        for line in 0..<(2 * E.stepBytes / 64) { moesim_prefetch(b + streamAhead + 64 * line) }
        let s = Vector16(repeating: x[i]), t = Vector16(repeating: x[i + 1])
        let (p, q) = E.load(b), (u, v) = E.load(b + E.stepBytes)
        ea = ea.addingProduct(s, p); eb = eb.addingProduct(s, q)
        oa = oa.addingProduct(t, u); ob = ob.addingProduct(t, v)
        b += 2 * E.stepBytes
        i += 2
    }
    if i < k {
        let s = Vector16(repeating: x[i])
        let (p, q) = E.load(b)
        ea = ea.addingProduct(s, p); eb = eb.addingProduct(s, q)
    }
    store16(ea + oa, y); store16(eb + ob, y + 16)
}

// The entry points TensorCore calls, one per kernel and element type.

@inline(never)
public func panelKernel8x32(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<Float>, _ k: Int,
                            _ y: UnsafeMutablePointer<Float>, _ ldy: Int, prefetch: UnsafeRawPointer, prefetchLines: Int) {
    kernel8x32(F32Panel.self, x, ldx, UnsafeRawPointer(panel), k, y, ldy, prefetch: prefetch, prefetchLines: prefetchLines)
}

@inline(never)
public func panelKernel8x32BF16(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<UInt16>, _ k: Int,
                                _ y: UnsafeMutablePointer<Float>, _ ldy: Int, prefetch: UnsafeRawPointer, prefetchLines: Int) {
    kernel8x32(BF16Panel.self, x, ldx, UnsafeRawPointer(panel), k, y, ldy, prefetch: prefetch, prefetchLines: prefetchLines)
}

@inline(never)
public func panelKernel4x32(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<Float>, _ k: Int,
                            _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    kernel4x32(F32Panel.self, x, ldx, UnsafeRawPointer(panel), k, y, ldy)
}

@inline(never)
public func panelKernel4x32BF16(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<UInt16>, _ k: Int,
                                _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    kernel4x32(BF16Panel.self, x, ldx, UnsafeRawPointer(panel), k, y, ldy)
}

@inline(never)
public func panelKernel1x32(_ x: UnsafePointer<Float>, _ panel: UnsafePointer<Float>, _ k: Int, _ y: UnsafeMutablePointer<Float>) {
    kernel1x32(F32Panel.self, x, UnsafeRawPointer(panel), k, y)
}

@inline(never)
public func panelKernel1x32BF16(_ x: UnsafePointer<Float>, _ panel: UnsafePointer<UInt16>, _ k: Int, _ y: UnsafeMutablePointer<Float>) {
    kernel1x32(BF16Panel.self, x, UnsafeRawPointer(panel), k, y)
}
