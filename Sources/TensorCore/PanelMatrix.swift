import Foundation
import TensorCoreAVX2
import TensorCoreAVX512

/// A weight matrix (out × in, like `nn.Linear.weight`) stored once, at load, in the order the
/// panel kernels (TensorCoreAVX512, or TensorCoreAVX2 on CPUs without AVX-512) read: panels of 32 output rows, each panel k-major — W[32p + j, k] at
/// p·in·32 + k·32 + j, the last panel padded with zero rows. Elements are Float32 or bf16; a bf16
/// panel stores each k step's 32 values so that 32-bit word j holds column j (low half) and column
/// j + 16 (high half), which widens with one shift and one mask.
///
/// Why: the MoE experts' products have few rows each (64 tokens per expert in a 512-token prefill
/// of a 64-expert top-8 layer), and OpenBLAS repacks the whole expert weight on every call, which
/// at that size costs about as much as the arithmetic. Packed once, a product streams each panel
/// from memory once and reuses it from cache for every block of eight rows, and a matrix-vector
/// product (decode) reads the same panels as one sequential stream per panel. In bf16 the
/// kernels widen inside the loop, so no Float32 copy of the weights ever exists.
///
/// On x86-64 Linux (`PanelMatrix.isSupported`: AVX-512, else AVX2 + FMA); elsewhere (aarch64,
/// macOS) weights stay row-major for OpenBLAS and the portable kernels.
public final class PanelMatrix: @unchecked Sendable {
    public enum Element: String, Sendable {
        case f32, bf16
        var bytes: Int { self == .f32 ? 4 : 2 }
    }

    /// Which module's kernels a matrix calls. Both read the same layout.
    public enum Kernels: String, Sendable, CaseIterable {
        case avx512, avx2

        /// The kernels the runtime uses: those `MOESIM_KERNELS` names (`avx512`, `avx2`, or `none`
        /// for the row-major path of other CPUs) when this CPU runs them, else the widest it runs;
        /// nil: row-major. The variable lets an AVX-512 machine measure what an AVX2-only or an
        /// aarch64 one would run; `checkEnvironment` refuses a value that cannot be honoured.
        public static let native: Kernels? = {
            switch requested {
            case .some(.some(let kernels)) where kernels.isSupported: kernels
            case .some(.none): nil
            default: CPUFeatures.avx512 ? .avx512 : CPUFeatures.avx2 ? .avx2 : nil
            }
        }()

        /// MOESIM_KERNELS as given: nil when unset, .some(nil) for `none`.
        static var requested: Kernels?? {
            guard let value = ProcessInfo.processInfo.environment["MOESIM_KERNELS"], !value.isEmpty else { return nil }
            return value == "none" ? .some(nil) : Kernels(rawValue: value).map { .some($0) }
        }

        /// Throws when MOESIM_KERNELS names no kernel family or one this CPU cannot run.
        public static func checkEnvironment() throws {
            guard let value = ProcessInfo.processInfo.environment["MOESIM_KERNELS"], !value.isEmpty else { return }
            guard let wanted = requested else {
                throw TensorError.invalidArgument(operation: "MOESIM_KERNELS", reason: "'\(value)' is not avx512, avx2 or none")
            }
            if let kernels = wanted, !kernels.isSupported {
                throw TensorError.invalidArgument(operation: "MOESIM_KERNELS", reason: "this CPU cannot run the \(PanelMatrix.describe(kernels)) kernels")
            }
        }

        public var isSupported: Bool {
            switch self {
            case .avx512: CPUFeatures.avx512
            case .avx2: CPUFeatures.avx2
            }
        }
    }

    public static let width = 32
    public static var isSupported: Bool { Kernels.native != nil }

    /// A family's name for people ("AVX-512", "AVX2").
    public static func describe(_ kernels: Kernels) -> String { kernels == .avx512 ? "AVX-512" : "AVX2" }

    /// Where output row j (of 32) of a panel sits within each k step: j for Float32; for bf16,
    /// the low half of word j (j < 16) or the high half of word j − 16.
    static func slot(_ j: Int, _ element: Element) -> Int {
        switch element {
        case .f32: j
        case .bf16: j < 16 ? 2 * j : 2 * (j - 16) + 1
        }
    }

    public let rows: Int
    public let cols: Int
    public let element: Element
    public let panelCount: Int
    public let kernels: Kernels
    let storage: UnsafeMutableRawPointer

    /// Repacks a rank-2 row-major tensor (rounding to bf16 for `.bf16`, to nearest even). Throws
    /// for another rank or where the CPU cannot run `kernels` (default: the widest it runs).
    public convenience init(_ tensor: Tensor, element: Element = .f32, kernels: Kernels? = nil) throws {
        guard tensor.rank == 2 else {
            throw TensorError.invalidShape(shape: tensor.shape, reason: "a weight matrix needs rank 2")
        }
        let elements = tensor.elements
        try self.init(rows: tensor.shape[0], cols: tensor.shape[1], element: element, kernels: kernels, rowMajor: elements)
    }

    /// Repacks rows × cols row-major floats from an array.
    public convenience init(rows: Int, cols: Int, element: Element = .f32, kernels: Kernels? = nil, rowMajor source: [Float]) throws {
        guard rows >= 0, cols >= 1, source.count >= rows * cols else {
            throw TensorError.elementCountMismatch(shape: [rows, cols], elementCount: source.count)
        }
        let staging = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
        defer { staging.deallocate() }
        try self.init(rows: rows, cols: cols, element: element, kernels: kernels, staging: staging) { block, out in
            for (i, n) in block.enumerated() {
                for k in 0..<cols { out[i * cols + k] = source[n * cols + k] }
            }
        }
    }

    /// Builds the matrix a block of rows at a time: `fill(rows, out)` writes those rows, row-major,
    /// into `staging`, which is then packed. A loader passes one staging buffer for every matrix, so
    /// a matrix never exists in full in Float32 beside its packed form. Throws when `staging` holds
    /// less than one row, when the CPU cannot run `kernels` (default: the widest it runs), and
    /// whatever `fill` throws.
    public init(rows: Int, cols: Int, element: Element = .f32, kernels: Kernels? = nil, staging: UnsafeMutableBufferPointer<Float>,
                fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        guard let chosen = kernels ?? Kernels.native, chosen.isSupported else {
            throw TensorError.invalidArgument(operation: "panel matrix",
                                              reason: "this CPU cannot run the \(kernels?.rawValue ?? "AVX2 or AVX-512") panel kernels")
        }
        self.kernels = chosen
        guard rows >= 0, cols >= 1, let buffer = staging.baseAddress, staging.count >= cols else {
            throw TensorError.invalidArgument(operation: "panel matrix",
                                              reason: "\(rows) × \(cols) with a staging buffer of \(staging.count) floats")
        }
        (self.rows, self.cols, self.element) = (rows, cols, element)
        let w = PanelMatrix.width
        panelCount = (rows + w - 1) / w
        let count = max(1, panelCount * cols * w)
        // 64-byte alignment: every panel load is one whole cache line.
        storage = UnsafeMutableRawPointer.allocate(byteCount: count * element.bytes, alignment: 64)
        switch element {
        case .f32: storage.initializeMemory(as: Float.self, repeating: 0, count: count)
        case .bf16: storage.initializeMemory(as: UInt16.self, repeating: 0, count: count)
        }
        let blockRows = staging.count / cols
        var first = 0
        while first < rows {
            let block = first..<min(rows, first + blockRows)
            try fill(block, buffer)
            for n in block {
                let source = buffer + (n - first) * cols, j = n % w, base = (n / w) * cols * w
                let at = base + PanelMatrix.slot(j, element)
                switch element {
                case .f32:
                    let panel = storage.assumingMemoryBound(to: Float.self) + at
                    for k in 0..<cols { panel[k * w] = source[k] }
                case .bf16:
                    let panel = storage.assumingMemoryBound(to: UInt16.self) + at
                    for k in 0..<cols { panel[k * w] = BF16Matrix.round(source[k]) }
                }
            }
            first = block.upperBound
        }
    }

    deinit { storage.deallocate() }

    /// Bytes stored, padding included: what one full read costs.
    public var byteCount: Int { panelCount * cols * PanelMatrix.width * element.bytes }

    /// The weights as plain row-major Float32 (a copy, for tests and tools).
    public func widened() throws -> Tensor {
        let w = PanelMatrix.width
        var t = try Tensor(zeros: [rows, cols])
        t.withUnsafeMutableBufferPointer { out in
            for n in 0..<rows {
                let at = (n / w) * cols * w + PanelMatrix.slot(n % w, element)
                for k in 0..<cols {
                    switch element {
                    case .f32: out[n * cols + k] = storage.assumingMemoryBound(to: Float.self)[at + k * w]
                    case .bf16: out[n * cols + k] = BF16Matrix.widen(storage.assumingMemoryBound(to: UInt16.self)[at + k * w])
                    }
                }
            }
        }
        return t
    }

    /// y[m, n] = Σₖ x[m, k] · W[n, k] for m < batch; x is batch × cols, y batch × rows.
    ///
    /// Panels are split over the threads. Rows of x go in blocks small enough to stay in L2 while
    /// every panel passes over them; inside a block, eight rows at a time use the 8 × 32 kernel,
    /// four of what is left the 4 × 32 kernel, and the rest the one-row kernel. `parallel: false` keeps the work on the calling thread.
    public func apply(_ x: UnsafePointer<Float>, batch: Int, into y: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        guard batch > 0, rows > 0 else { return }
        let chunks = parallel ? min(Threading.count, panelCount, max(1, batch * rows * cols / PanelMatrix.parallelWork)) : 1
        parallelFor(chunks: chunks, PanelWork(matrix: self, x: x, batch: batch, y: y, chunks: chunks))
    }

    /// Below this many multiply-adds a product stays on one thread.
    static let parallelWork = 65_536

    /// Panels `chunk` of `chunks`.
    struct PanelWork: ChunkedWork {
        let matrix: PanelMatrix, x: UnsafePointer<Float>, batch: Int, y: UnsafeMutablePointer<Float>, chunks: Int

        func run(chunk: Int) {
            let range = matrix.panels(chunk: chunk, of: chunks)
            matrix.compute(x, batch: batch, into: y, panels: range, following: nil)
        }
    }

    /// The panels thread `chunk` of `chunks` computes.
    func panels(chunk: Int, of chunks: Int) -> Range<Int> {
        (panelCount * chunk / chunks)..<(panelCount * (chunk + 1) / chunks)
    }

    /// The first byte of panel p.
    func panel(_ p: Int) -> UnsafeRawPointer { UnsafeRawPointer(storage + p * cols * PanelMatrix.width * element.bytes) }

    /// The 8-row kernel for this element type and kernel family.
    func kernel8(_ x: UnsafePointer<Float>, _ panel: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ ldy: Int,
                 prefetch: UnsafeRawPointer, lines: Int) {
        switch (element, kernels) {
        case (.f32, .avx512):
            TensorCoreAVX512.panelKernel8x32(x, cols, panel.assumingMemoryBound(to: Float.self), cols, y, ldy, prefetch: prefetch, prefetchLines: lines)
        case (.bf16, .avx512):
            TensorCoreAVX512.panelKernel8x32BF16(x, cols, panel.assumingMemoryBound(to: UInt16.self), cols, y, ldy, prefetch: prefetch, prefetchLines: lines)
        case (.f32, .avx2):
            TensorCoreAVX2.panelKernel8x32(x, cols, panel.assumingMemoryBound(to: Float.self), cols, y, ldy, prefetch: prefetch, prefetchLines: lines)
        case (.bf16, .avx2):
            TensorCoreAVX2.panelKernel8x32BF16(x, cols, panel.assumingMemoryBound(to: UInt16.self), cols, y, ldy, prefetch: prefetch, prefetchLines: lines)
        }
    }

    /// The four-row kernel for this element type and kernel family.
    func kernel4(_ x: UnsafePointer<Float>, _ panel: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
        switch (element, kernels) {
        case (.f32, .avx512): TensorCoreAVX512.panelKernel4x32(x, cols, panel.assumingMemoryBound(to: Float.self), cols, y, ldy)
        case (.bf16, .avx512): TensorCoreAVX512.panelKernel4x32BF16(x, cols, panel.assumingMemoryBound(to: UInt16.self), cols, y, ldy)
        case (.f32, .avx2): TensorCoreAVX2.panelKernel4x32(x, cols, panel.assumingMemoryBound(to: Float.self), cols, y, ldy)
        case (.bf16, .avx2): TensorCoreAVX2.panelKernel4x32BF16(x, cols, panel.assumingMemoryBound(to: UInt16.self), cols, y, ldy)
        }
    }

    /// The one-row kernel for this element type and kernel family.
    func kernel1(_ x: UnsafePointer<Float>, _ panel: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        switch (element, kernels) {
        case (.f32, .avx512): TensorCoreAVX512.panelKernel1x32(x, panel.assumingMemoryBound(to: Float.self), cols, y)
        case (.bf16, .avx512): TensorCoreAVX512.panelKernel1x32BF16(x, panel.assumingMemoryBound(to: UInt16.self), cols, y)
        case (.f32, .avx2): TensorCoreAVX2.panelKernel1x32(x, panel.assumingMemoryBound(to: Float.self), cols, y)
        case (.bf16, .avx2): TensorCoreAVX2.panelKernel1x32BF16(x, panel.assumingMemoryBound(to: UInt16.self), cols, y)
        }
    }

    /// y = x · Wᵀ restricted to the output columns of `range`'s panels, on the calling thread.
    ///
    /// While one panel is computed, the 8-row calls prefetch the next one between them, so that
    /// streaming the weights from memory overlaps the arithmetic; after the last panel of the range
    /// they prefetch `following` (the first panel of the caller's next product), if any.
    func compute(_ x: UnsafePointer<Float>, batch: Int, into y: UnsafeMutablePointer<Float>,
                 panels range: Range<Int>, following: UnsafeRawPointer?) {
        let w = PanelMatrix.width, k = cols, ldy = rows
        let rowBlock = max(8, (65_536 / max(k, 1)) / 8 * 8)  // rows of x per pass: ~256 KB, stays in L2
        let panelBytes = k * w * element.bytes, panelLines = panelBytes / 64
        // A full-width tile for the last panel when rows is not a multiple of 32.
        var tile = (Vector16Tile(), Vector16Tile())
        withUnsafeMutableBytes(of: &tile) { tileBytes in
            guard let scratch = tileBytes.baseAddress?.assumingMemoryBound(to: Float.self) else { return }
            var start = 0
            while start < batch {
                let end = min(batch, start + rowBlock)
                let blocks = (end - start) / 8
                let share = blocks > 0 ? min(k, (panelLines + blocks - 1) / blocks) : 0
                for p in range {
                    let current = panel(p)
                    let next: UnsafeRawPointer? = p + 1 < range.upperBound ? current + panelBytes : following
                    let valid = min(w, rows - p * w)
                    // `count` rows from r through `kernel(output, its row stride)`: straight into y,
                    // or for a last panel narrower than 32 into the scratch tile, then its columns.
                    func emit(_ r: Int, _ count: Int, _ kernel: (UnsafeMutablePointer<Float>, Int) -> Void) {
                        if valid == w { return kernel(y + r * ldy + p * w, ldy) }
                        kernel(scratch, w)
                        for i in 0..<count { (y + (r + i) * ldy + p * w).update(from: scratch + i * w, count: valid) }
                    }
                    var r = start, block = 0
                    while r + 8 <= end {
                        // This call's share of the next panel.
                        let lines = next == nil ? 0 : max(0, min(share, panelLines - block * share))
                        let ahead = (next ?? current) + 64 * block * share
                        block += 1
                        emit(r, 8) { kernel8(x + r * k, current, $0, $1, prefetch: ahead, lines: lines) }
                        r += 8
                        // Three or more rows left over (with eight before them): one more 8-row
                        // call on the last eight rows is cheaper than three one-row calls; the
                        // rows it repeats get the same values again.
                        if end - r >= 3, r + 8 > end { r = end - 8 }
                    }
                    // Four to seven rows (decode batches): one 4-row call reads the panel once for four.
                    if end - r >= 4 {
                        emit(r, 4) { kernel4(x + r * k, current, $0, $1) }
                        r += 4
                    }
                    while r < end {
                        emit(r, 1) { output, _ in kernel1(x + r * k, current, output) }
                        r += 1
                    }
                }
                start = end
            }
        }
    }
}

/// Every expert's product in one parallel region, each thread taking its share of every expert's
/// panels: one synchronisation per layer instead of one per expert, and each thread prefetches
/// its first panel of the next expert while finishing the current one. For `GroupedMatmul`, when
/// every expert weight is a `PanelMatrix`.
@usableFromInline
struct PanelExpertsWork: ChunkedWork {
    @usableFromInline
    static func run(_ packed: UnsafePointer<Float>, grouping: ExpertGrouping, weights: [WeightMatrix],
                    into out: UnsafeMutablePointer<Float>) {
        let chunks = Threading.count
        parallelFor(chunks: chunks, PanelExpertsWork(packed: packed, grouping: grouping, weights: weights,
                                                     out: out, chunks: chunks))
    }

    let packed: UnsafePointer<Float>, grouping: ExpertGrouping, weights: [WeightMatrix]
    let out: UnsafeMutablePointer<Float>, chunks: Int

    func matrix(_ expert: Int) -> PanelMatrix? {
        if case let .panels(m) = weights[expert] { return m }
        return nil
    }

    @usableFromInline
    func run(chunk: Int) {
        var expert = nextBusy(after: -1)
        while expert < grouping.expertCount, let m = matrix(expert) {
            let following = nextBusy(after: expert)
            var ahead: UnsafeRawPointer? = nil
            if following < grouping.expertCount, let n = matrix(following) {
                let range = n.panels(chunk: chunk, of: chunks)
                if !range.isEmpty { ahead = n.panel(range.lowerBound) }
            }
            let start = grouping.offsets[expert], count = grouping.offsets[expert + 1] - start
            m.compute(packed + start * m.cols, batch: count, into: out + start * m.rows,
                      panels: m.panels(chunk: chunk, of: chunks), following: ahead)
            expert = following
        }
    }

    func nextBusy(after expert: Int) -> Int {
        var e = expert + 1
        while e < grouping.expertCount, grouping.offsets[e + 1] == grouping.offsets[e] { e += 1 }
        return e
    }
}

/// 8 × 16 floats of stack space (two of them make the 8 × 32 scratch tile).
private struct Vector16Tile {
    var v: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>,
            SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) =
        (.zero, .zero, .zero, .zero, .zero, .zero, .zero, .zero)
}

