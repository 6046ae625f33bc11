// The panel kernels of TensorCoreAVX512 for CPUs with AVX2 and FMA but no AVX-512 (AMD Zen 1–3,
// Intel client cores): same panels of 32 output columns (`PanelMatrix` in TensorCore), same
// entry points, on 256-bit vectors.
//
// AVX2 has 16 vector registers, half of AVX-512's 32, so a 8 × 32 tile (32 vectors) cannot stay
// in registers. The 8-row kernel runs four 4 × 16 sub-tiles (8 accumulators, 2 weight vectors and
// one broadcast: 11 registers; 8 FMAs per 6 loads, so the FMA units, not the loads, set the pace)
// over blocks of k short enough that a block of the panel (`kBlock` steps, 16 KB in Float32) is
// read from memory by the first sub-tile and from L1 by the other three; the accumulators go back
// to y between blocks.
//
// This module is compiled for x86-64-v3 (the baseline of the whole package on x86-64) and called
// only after TensorCore's `CPUFeatures` check. Its public functions are non-generic and take raw
// pointers; the generic kernels are internal and inlined into them, as in TensorCoreAVX512.

import CPUHints

typealias Vector8 = SIMD8<Float>

/// Software prefetch distance of the streaming (one- and four-row) kernels, in bytes.
let streamAhead = 8192

/// k steps per block of the 8- and 4-row kernels: 128 × 128 B = 16 KB of a Float32 panel, half
/// of the smallest L1 data cache of these CPUs (32 KB), leaving room for the rows of x.
let kBlock = 128

@inline(__always)
func load8(_ p: UnsafeRawPointer) -> Vector8 { p.loadUnaligned(as: Vector8.self) }

@inline(__always)
func loadOutput(_ p: UnsafeMutablePointer<Float>) -> Vector8 { load8(UnsafeRawPointer(p)) }

@inline(__always)
func store8(_ v: Vector8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector8.self)
}

/// How a k step of a panel (32 weights) is stored. A half (0 or 1) is 16 of the 32 columns as two
/// 8-wide vectors, and `columns(half)` says which output columns they are.
protocol PanelElement {
    /// Bytes of one k step.
    static var stepBytes: Int { get }
    static func load(_ p: UnsafeRawPointer, half: Int) -> (Vector8, Vector8)
    static func columns(half: Int) -> (Int, Int)
}

/// Float32: half h is columns 16h ..< 16h + 16, contiguous.
enum F32Panel: PanelElement {
    static var stepBytes: Int { 128 }

    @inline(__always)
    static func load(_ p: UnsafeRawPointer, half: Int) -> (Vector8, Vector8) {
        (load8(p + 64 * half), load8(p + 64 * half + 32))
    }

    @inline(__always)
    static func columns(half: Int) -> (Int, Int) { (16 * half, 16 * half + 8) }
}

/// bf16: 32-bit word j holds column j (low half) and column j + 16 (high half), so eight words
/// 8h ..< 8h + 8 widen to columns 8h ..< 8h + 8 and 16 + 8h ..< 24 + 8h.
enum BF16Panel: PanelElement {
    static var stepBytes: Int { 64 }

    @inline(__always)
    static func load(_ p: UnsafeRawPointer, half: Int) -> (Vector8, Vector8) {
        let words = (p + 32 * half).loadUnaligned(as: SIMD8<UInt32>.self)
        return (unsafeBitCast(words &<< 16, to: Vector8.self),
                unsafeBitCast(words & SIMD8(repeating: 0xFFFF_0000), to: Vector8.self))
    }

    @inline(__always)
    static func columns(half: Int) -> (Int, Int) { (8 * half, 16 + 8 * half) }
}

/// y[r][cols of `half`] (+)= Σ over k steps `steps` of x[r][k] · panel[k][half] for four rows.
/// `accumulate` adds to what y holds (every k block after the first). Prefetches `lines` lines
/// from `prefetch` on, spread evenly over the steps (in a burst they would exhaust the core's
/// line-fill buffers and stall the tile's own loads).
@inline(__always)
func tile4x16<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafeRawPointer, _ steps: Range<Int>,
                               half: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int, accumulate: Bool,
                               prefetch: UnsafeRawPointer, lines: Int) {
    let (ca, cb) = E.columns(half: half)
    let y0 = y, y1 = y + ldy, y2 = y + 2 * ldy, y3 = y + 3 * ldy
    var c0a = Vector8(), c0b = Vector8(), c1a = Vector8(), c1b = Vector8()
    var c2a = Vector8(), c2b = Vector8(), c3a = Vector8(), c3b = Vector8()
    if accumulate {
        c0a = loadOutput(y0 + ca); c0b = loadOutput(y0 + cb); c1a = loadOutput(y1 + ca); c1b = loadOutput(y1 + cb)
        c2a = loadOutput(y2 + ca); c2b = loadOutput(y2 + cb); c3a = loadOutput(y3 + ca); c3b = loadOutput(y3 + cb)
    }
    let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
    var b = panel + steps.lowerBound * E.stepBytes
    var issued = 0, due = 0
    for i in steps {
        // Line j is due at step j · count / lines: `due` runs ahead by `lines` per step.
        due += lines
        while issued < lines, issued * steps.count < due { moesim_prefetch(prefetch + 64 * issued); issued += 1 }
        let (ba, bb) = E.load(b, half: half)
        var s = Vector8(repeating: x0[i]); c0a = c0a.addingProduct(s, ba); c0b = c0b.addingProduct(s, bb)
        s = Vector8(repeating: x1[i]); c1a = c1a.addingProduct(s, ba); c1b = c1b.addingProduct(s, bb)
        s = Vector8(repeating: x2[i]); c2a = c2a.addingProduct(s, ba); c2b = c2b.addingProduct(s, bb)
        s = Vector8(repeating: x3[i]); c3a = c3a.addingProduct(s, ba); c3b = c3b.addingProduct(s, bb)
        b += E.stepBytes
    }
    store8(c0a, y0 + ca); store8(c0b, y0 + cb); store8(c1a, y1 + ca); store8(c1b, y1 + cb)
    store8(c2a, y2 + ca); store8(c2b, y2 + cb); store8(c3a, y3 + ca); store8(c3b, y3 + cb)
}

/// y[r][0..<32] = Σₖ x[r][k] · panel[k][0..<32] for the eight rows r < 8 of x, k block by k block,
/// each block as four 4 × 16 sub-tiles. Prefetches `prefetchLines` lines from `prefetch` on,
/// spread over the k blocks.
@inline(__always)
func kernel8x32<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafeRawPointer, _ k: Int,
                                 _ y: UnsafeMutablePointer<Float>, _ ldy: Int, prefetch: UnsafeRawPointer, prefetchLines lines: Int) {
    let blocks = (k + kBlock - 1) / kBlock
    let perBlock = (lines + blocks - 1) / max(blocks, 1)
    var issued = 0, start = 0
    while start < k {
        let steps = start..<min(k, start + kBlock)
        // This block's share of the next panel, issued by the first sub-tile.
        let count = max(0, min(perBlock, lines - issued))
        tile4x16(E.self, x, ldx, panel, steps, half: 0, y, ldy, accumulate: start > 0,
                 prefetch: prefetch + 64 * issued, lines: count)
        issued += count
        tile4x16(E.self, x, ldx, panel, steps, half: 1, y, ldy, accumulate: start > 0, prefetch: prefetch, lines: 0)
        tile4x16(E.self, x + 4 * ldx, ldx, panel, steps, half: 0, y + 4 * ldy, ldy, accumulate: start > 0, prefetch: prefetch, lines: 0)
        tile4x16(E.self, x + 4 * ldx, ldx, panel, steps, half: 1, y + 4 * ldy, ldy, accumulate: start > 0, prefetch: prefetch, lines: 0)
        start = steps.upperBound
    }
}

/// Four rows against one panel (decode batches of 4–7), k block by k block, the two halves in
/// turn (the second from L1); the panel streams with software prefetch `streamAhead` bytes ahead.
@inline(__always)
func kernel4x32<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ ldx: Int, _ panel: UnsafeRawPointer, _ k: Int,
                                 _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
    var start = 0
    while start < k {
        let steps = start..<min(k, start + kBlock)
        // The first half's pass streams the block from memory (and prefetches ahead of itself);
        // the second reads the same lines (bf16) or the other line of each step (f32) from L1.
        tile4x16(E.self, x, ldx, panel, steps, half: 0, y, ldy, accumulate: start > 0,
                 prefetch: panel + start * E.stepBytes + streamAhead, lines: steps.count * E.stepBytes / 64)
        tile4x16(E.self, x, ldx, panel, steps, half: 1, y, ldy, accumulate: start > 0, prefetch: panel, lines: 0)
        start = steps.upperBound
    }
}

/// One row: y[0..<32] = Σₖ x[k] · panel[k][0..<32], the whole panel per k step (four vectors),
/// even and odd k in separate accumulators (eight FMA chains); bound by reading the panel, which
/// streams with software prefetch `streamAhead` bytes ahead.
@inline(__always)
func kernel1x32<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ panel: UnsafeRawPointer, _ k: Int,
                                 _ y: UnsafeMutablePointer<Float>) {
    var e0 = Vector8(), e1 = Vector8(), e2 = Vector8(), e3 = Vector8()
    var o0 = Vector8(), o1 = Vector8(), o2 = Vector8(), o3 = Vector8()
    var b = panel
    var i = 0
    while i + 2 <= k {
        for line in 0..<(2 * E.stepBytes / 64) { moesim_prefetch(b + streamAhead + 64 * line) }
        let s = Vector8(repeating: x[i]), t = Vector8(repeating: x[i + 1])
        var (p, q) = E.load(b, half: 0), (u, v) = E.load(b, half: 1)
        e0 = e0.addingProduct(s, p); e1 = e1.addingProduct(s, q); e2 = e2.addingProduct(s, u); e3 = e3.addingProduct(s, v)
        (p, q) = E.load(b + E.stepBytes, half: 0); (u, v) = E.load(b + E.stepBytes, half: 1)
        o0 = o0.addingProduct(t, p); o1 = o1.addingProduct(t, q); o2 = o2.addingProduct(t, u); o3 = o3.addingProduct(t, v)
        b += 2 * E.stepBytes
        i += 2
    }
    if i < k {
        let s = Vector8(repeating: x[i])
        let (p, q) = E.load(b, half: 0), (u, v) = E.load(b, half: 1)
        e0 = e0.addingProduct(s, p); e1 = e1.addingProduct(s, q); e2 = e2.addingProduct(s, u); e3 = e3.addingProduct(s, v)
    }
    let (a0, b0) = E.columns(half: 0), (a1, b1) = E.columns(half: 1)
    store8(e0 + o0, y + a0); store8(e1 + o1, y + b0); store8(e2 + o2, y + a1); store8(e3 + o3, y + b1)
}

// The entry points TensorCore calls, one per kernel and element type (the signatures of
// TensorCoreAVX512's).

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
