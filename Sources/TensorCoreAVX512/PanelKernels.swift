// Register-blocked matrix kernels on 512-bit vectors, for weights stored in panels of 32 output
// columns (`PanelMatrix` in TensorCore): panel p holds W[32p + j, k] at k·32 + j, so one k step
// is two contiguous 64-byte loads.
//
// This module is compiled for x86-64-v4 (AVX-512) and only ever called after TensorCore has
// checked that the CPU has AVX-512F (`CPUFeatures`). It holds nothing but these non-generic
// functions on raw pointers, so no generic specialisation compiled for AVX-512 can be shared
// with (and picked by the linker for) code that runs on other CPUs.

import CPUHints

public typealias Vector16 = SIMD16<Float>

/// How far ahead of its reads a one-row kernel prefetches, in bytes. A matrix-vector product is
/// one sequential stream per thread; prefetching well ahead keeps more lines in flight than the
/// hardware prefetcher alone.
let streamAhead = 8192

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> Vector16 {
    UnsafeRawPointer(p).loadUnaligned(as: Vector16.self)
}

@inline(__always)
func store16(_ v: Vector16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector16.self)
}

/// y[r][0..<32] = Σₖ x[r][k] · panel[k][0..<32] for the eight rows r < 8 of x (row stride `ldx`),
/// into rows of y with stride `ldy`.
///
/// Sixteen accumulators (8 rows × 2 vectors) stay in registers for all k: each k step is two
/// panel loads and eight broadcasts of x feeding sixteen FMAs, enough independent chains to keep
/// both FMA units busy through their four-cycle latency.
///
/// It also prefetches `prefetchLines` 64-byte lines from `prefetch` on, spread evenly over the k
/// steps: the caller points it at the panel it will compute next, so that panel's trip from memory
/// overlaps this arithmetic instead of stalling the next call. (Issued in a burst, the prefetches
/// would exhaust the core's line-fill buffers and stall the kernel's own loads.)
@inline(never)
public func panelKernel8x32(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<Float>, _ k: Int,
                            _ y: UnsafeMutablePointer<Float>, _ ldy: Int,
                            prefetch: UnsafeRawPointer, prefetchLines: Int) {
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
        let ba = load16(b), bb = load16(b + 16)
        var s = Vector16(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector16(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector16(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector16(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        s = Vector16(repeating: x4[i]); c4a = c4a.addingProduct(s, ba); c4b = c4b.addingProduct(s, bb)
        s = Vector16(repeating: x5[i]); c5a = c5a.addingProduct(s, ba); c5b = c5b.addingProduct(s, bb)
        s = Vector16(repeating: x6[i]); c6a = c6a.addingProduct(s, ba); c6b = c6b.addingProduct(s, bb)
        s = Vector16(repeating: x7[i]); c7a = c7a.addingProduct(s, ba); c7b = c7b.addingProduct(s, bb)
        b += 32
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

/// The same for one row: y[0..<32] = Σₖ x[k] · panel[k][0..<32]. Even and odd k accumulate
/// separately so that four FMA chains are in flight; the matrix-vector case is bound by reading
/// the panel, not by these FMAs.
@inline(never)
public func panelKernel1x32(_ x: UnsafePointer<Float>, _ panel: UnsafePointer<Float>, _ k: Int,
                            _ y: UnsafeMutablePointer<Float>) {
    var ea = Vector16(), eb = Vector16(), oa = Vector16(), ob = Vector16()
    var b = panel
    var i = 0
    while i + 2 <= k {
        for line in 0..<4 { moesim_prefetch(UnsafeRawPointer(b) + streamAhead + 64 * line) }
        let s = Vector16(repeating: x[i]), t = Vector16(repeating: x[i + 1])
        ea = ea.addingProduct(s, load16(b)); eb = eb.addingProduct(s, load16(b + 16))
        oa = oa.addingProduct(t, load16(b + 32)); ob = ob.addingProduct(t, load16(b + 48))
        b += 64
        i += 2
    }
    if i < k {
        let s = Vector16(repeating: x[i])
        ea = ea.addingProduct(s, load16(b)); eb = eb.addingProduct(s, load16(b + 16))
    }
    store16(ea + oa, y); store16(eb + ob, y + 16)
}

// bf16 panels: each k step of a panel is 32 bf16 values (64 bytes) stored so that 32-bit word j
// holds column j in its low half and column j + 16 in its high half. One 64-byte load then
// widens to the two Float32 vectors with one shift and one mask (bf16 is the top half of a
// Float32, so widening is exact).

@inline(__always)
func loadBF16x32(_ p: UnsafePointer<UInt16>) -> (Vector16, Vector16) {
    let words = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt32>.self)
    return (unsafeBitCast(words &<< 16, to: Vector16.self),
            unsafeBitCast(words & SIMD16(repeating: 0xFFFF_0000), to: Vector16.self))
}

/// `panelKernel8x32` on a bf16 panel: the widening is shared by the eight rows.
@inline(never)
public func panelKernel8x32BF16(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<UInt16>, _ k: Int,
                                _ y: UnsafeMutablePointer<Float>, _ ldy: Int,
                                prefetch: UnsafeRawPointer, prefetchLines: Int) {
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
        let (ba, bb) = loadBF16x32(b)
        var s = Vector16(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector16(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector16(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector16(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        s = Vector16(repeating: x4[i]); c4a = c4a.addingProduct(s, ba); c4b = c4b.addingProduct(s, bb)
        s = Vector16(repeating: x5[i]); c5a = c5a.addingProduct(s, ba); c5b = c5b.addingProduct(s, bb)
        s = Vector16(repeating: x6[i]); c6a = c6a.addingProduct(s, ba); c6b = c6b.addingProduct(s, bb)
        s = Vector16(repeating: x7[i]); c7a = c7a.addingProduct(s, ba); c7b = c7b.addingProduct(s, bb)
        b += 32
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

/// `panelKernel1x32` on a bf16 panel.
@inline(never)
public func panelKernel1x32BF16(_ x: UnsafePointer<Float>, _ panel: UnsafePointer<UInt16>, _ k: Int,
                                _ y: UnsafeMutablePointer<Float>) {
    var ea = Vector16(), eb = Vector16(), oa = Vector16(), ob = Vector16()
    var b = panel
    var i = 0
    while i + 2 <= k {
        moesim_prefetch(UnsafeRawPointer(b) + streamAhead)
        moesim_prefetch(UnsafeRawPointer(b) + streamAhead + 64)
        let s = Vector16(repeating: x[i]), t = Vector16(repeating: x[i + 1])
        let (p, q) = loadBF16x32(b), (u, v) = loadBF16x32(b + 32)
        ea = ea.addingProduct(s, p); eb = eb.addingProduct(s, q)
        oa = oa.addingProduct(t, u); ob = ob.addingProduct(t, v)
        b += 64
        i += 2
    }
    if i < k {
        let s = Vector16(repeating: x[i])
        let (p, q) = loadBF16x32(b)
        ea = ea.addingProduct(s, p); eb = eb.addingProduct(s, q)
    }
    store16(ea + oa, y); store16(eb + ob, y + 16)
}

/// Four rows against one panel (decode at batch 4–7): eight accumulators, each panel load feeds
/// four rows, and the panel streams with the same software prefetch as the one-row kernel.
@inline(never)
public func panelKernel4x32(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<Float>, _ k: Int,
                            _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
    var c0a = Vector16(), c0b = Vector16(), c1a = Vector16(), c1b = Vector16()
    var c2a = Vector16(), c2b = Vector16(), c3a = Vector16(), c3b = Vector16()
    var b = panel
    for i in 0..<k {
        if i & 1 == 0 { moesim_prefetch(UnsafeRawPointer(b) + streamAhead); moesim_prefetch(UnsafeRawPointer(b) + streamAhead + 64) }
        let ba = load16(b), bb = load16(b + 16)
        var s = Vector16(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector16(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector16(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector16(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        b += 32
    }
    store16(c0a, y); store16(c0b, y + 16)
    store16(c1a, y + ldy); store16(c1b, y + ldy + 16)
    store16(c2a, y + 2 * ldy); store16(c2b, y + 2 * ldy + 16)
    store16(c3a, y + 3 * ldy); store16(c3b, y + 3 * ldy + 16)
}

/// `panelKernel4x32` on a bf16 panel.
@inline(never)
public func panelKernel4x32BF16(_ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafePointer<UInt16>, _ k: Int,
                                _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
    var c0a = Vector16(), c0b = Vector16(), c1a = Vector16(), c1b = Vector16()
    var c2a = Vector16(), c2b = Vector16(), c3a = Vector16(), c3b = Vector16()
    var b = panel
    for i in 0..<k {
        if i & 3 == 0 { moesim_prefetch(UnsafeRawPointer(b) + streamAhead); moesim_prefetch(UnsafeRawPointer(b) + streamAhead + 64) }
        let (ba, bb) = loadBF16x32(b)
        var s = Vector16(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector16(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector16(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector16(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        b += 32
    }
    store16(c0a, y); store16(c0b, y + 16)
    store16(c1a, y + ldy); store16(c1b, y + ldy + 16)
    store16(c2a, y + 2 * ldy); store16(c2b, y + 2 * ldy + 16)
    store16(c3a, y + 3 * ldy); store16(c3b, y + 3 * ldy + 16)
}
