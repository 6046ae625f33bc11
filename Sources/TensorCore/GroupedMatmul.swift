/// Which experts each token goes to, and with what weight: the output of a router.
public struct ExpertAssignments: Sendable {
    public let tokenCount: Int
    public let expertsPerToken: Int
    public let expertCount: Int
    /// tokenCount × expertsPerToken expert ids, row-major.
    public let experts: [Int32]
    /// The matching routing weights.
    public let weights: [Float]

    public init(tokenCount: Int, expertsPerToken: Int, expertCount: Int,
                experts: [Int32], weights: [Float]) throws {
        guard tokenCount >= 0, expertsPerToken >= 1, expertCount >= 1 else {
            throw TensorError.invalidArgument(
                operation: "expert assignments",
                reason: "need tokens ≥ 0, experts per token ≥ 1 and experts ≥ 1")
        }
        let n = tokenCount * expertsPerToken
        guard experts.count == n, weights.count == n else {
            throw TensorError.shapeMismatch(operation: "expert assignments",
                                            shapes: [[tokenCount, expertsPerToken], [experts.count], [weights.count]])
        }
        if let bad = experts.first(where: { $0 < 0 || Int($0) >= expertCount }) {
            throw TensorError.indexOutOfRange(operation: "expert assignments", index: Int(bad), bound: expertCount)
        }
        self.tokenCount = tokenCount
        self.expertsPerToken = expertsPerToken
        self.expertCount = expertCount
        self.experts = experts
        self.weights = weights
    }
}

/// The (token, expert) pairs sorted by expert, stably by token: a counting sort. Row r of the
/// packed order belongs to expert e when offsets[e] ≤ r < offsets[e + 1].
public struct ExpertGrouping: Sendable {
    public private(set) var expertCount: Int
    public private(set) var offsets: [Int]
    public private(set) var tokenOfRow: [Int32]
    public private(set) var weightOfRow: [Float]
    private var cursor: [Int] = []

    public init(_ assignments: ExpertAssignments) {
        self.init(expertCount: assignments.expertCount)
        // ExpertAssignments has validated the ids.
        assignments.experts.withUnsafeBufferPointer { ids in
            assignments.weights.withUnsafeBufferPointer { w in
                _ = try? regroup(experts: ids, weights: w, expertsPerToken: assignments.expertsPerToken)
            }
        }
    }

    /// An empty grouping whose arrays `regroup` fills and then reuses.
    public init(expertCount: Int) {
        self.expertCount = max(0, expertCount)
        offsets = Array(repeating: 0, count: self.expertCount + 1)
        tokenOfRow = []
        weightOfRow = []
    }

    /// Regroups in place for new (token, expert) pairs, reusing the arrays' storage: no
    /// allocation once they have grown to the largest batch. Throws for an expert id out of range.
    public mutating func regroup(experts ids: UnsafeBufferPointer<Int32>, weights: UnsafeBufferPointer<Float>,
                                 expertsPerToken: Int) throws {
        let e = expertCount
        for id in ids where id < 0 || Int(id) >= e {
            throw TensorError.indexOutOfRange(operation: "expert grouping", index: Int(id), bound: e)
        }
        for i in 0...e { offsets[i] = 0 }
        for id in ids { offsets[Int(id) + 1] += 1 }
        for i in 0..<e { offsets[i + 1] += offsets[i] }
        cursor.removeAll(keepingCapacity: true)
        cursor.append(contentsOf: offsets)
        tokenOfRow.removeAll(keepingCapacity: true)
        weightOfRow.removeAll(keepingCapacity: true)
        tokenOfRow.append(contentsOf: repeatElement(0, count: ids.count))
        weightOfRow.append(contentsOf: repeatElement(0, count: ids.count))
        for pair in 0..<ids.count {
            let expert = Int(ids[pair])
            let row = cursor[expert]
            cursor[expert] += 1
            tokenOfRow[row] = Int32(pair / max(expertsPerToken, 1))
            weightOfRow[row] = weights[pair]
        }
    }

    public var rowCount: Int { tokenOfRow.count }

    /// Tokens routed to each expert.
    public var tokensPerExpert: [Int] { (0..<expertCount).map { offsets[$0 + 1] - offsets[$0] } }
}

/// The MoE expert matmul: every expert runs one matrix product on the tokens routed to it.
///
/// Three steps, each usable alone so that an MoE layer can chain gate/up, SwiGLU and down on the
/// packed rows without scattering in between: `gather` copies token rows into expert order,
/// `multiply` runs one GEMM (or small-batch kernel) per expert on its contiguous rows, and
/// `scatterAdd` adds each row back to its token times its routing weight.
public enum GroupedMatmul {
    /// Rows per expert at which the expert products reach half the rate of one large GEMM, for the
    /// estimator's M / (M + half) curve, measured with the grouped benchmark (64 experts, top-8,
    /// 2048 → 1024, 512 tokens, so 64 rows per expert; docs/performance.md): with the AVX-512 panel
    /// kernels 74% of one GEMM, so 22; the AVX2 panel kernels reach 87% of the same machine's GEMM
    /// (2026-12), so 22 holds for them too (conservatively: 87% alone would give 10); with OpenBLAS
    /// per expert 59%, so 44.
    public static var halfEfficiencyRows: Double { PanelMatrix.isSupported ? 22 : 44 }

    /// packed[r] = x[tokenOfRow[r]], rows of `width` floats.
    @inlinable
    public static func gather(_ x: UnsafePointer<Float>, width: Int, grouping: ExpertGrouping,
                              into packed: UnsafeMutablePointer<Float>) {
        parallelFor(chunks: chunks(rows: grouping.rowCount, width: width),
                    Gather(x: x, width: width, grouping: grouping, packed: packed))
    }

    /// Threads for a gather or scatter of rows × width floats: one below 256 Ki floats.
    @inlinable
    static func chunks(rows: Int, width: Int) -> Int {
        rows * width >= Elementwise.parallelThreshold ? min(Threading.count, rows) : 1
    }

    /// Packed rows `chunk` of `chunks` (rows are disjoint, so threads never write the same row).
    @usableFromInline
    struct Gather: ChunkedWork {
        @usableFromInline let x: UnsafePointer<Float>, width: Int, grouping: ExpertGrouping
        @usableFromInline let packed: UnsafeMutablePointer<Float>

        @inlinable
        init(x: UnsafePointer<Float>, width: Int, grouping: ExpertGrouping, packed: UnsafeMutablePointer<Float>) {
            self.x = x; self.width = width; self.grouping = grouping; self.packed = packed
        }

        @inlinable
        func run(chunk: Int) {
            let rows = grouping.rowCount, chunks = GroupedMatmul.chunks(rows: rows, width: width)
            grouping.tokenOfRow.withUnsafeBufferPointer { tokens in
                for r in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
                    (packed + r * width).update(from: x + Int(tokens[r]) * width, count: width)
                }
            }
        }
    }

    /// out[r] = packed[r] · W_eᵀ for each expert e and its rows r. `weights[e]` is rows × cols with
    /// cols the packed width; `out` has rows floats per packed row. Experts with no tokens are
    /// skipped, so their weights are never read.
    ///
    /// When every expert has a decode-sized handful of rows, the experts themselves are split over
    /// the threads (each expert's small product on one thread): one parallel region per layer
    /// instead of one per expert.
    @inlinable
    public static func multiply(_ packed: UnsafePointer<Float>, grouping: ExpertGrouping,
                                weights: [WeightMatrix], into out: UnsafeMutablePointer<Float>) {
        guard let first = weights.first else { return }
        let inWidth = first.cols, outWidth = first.rows
        var busy = 0, largest = 0
        for expert in 0..<grouping.expertCount {
            let count = grouping.offsets[expert + 1] - grouping.offsets[expert]
            if count > 0 { busy += 1; largest = max(largest, count) }
        }
        if largest <= SmallBatch.limit && busy > 1 {
            // Busy experts dealt round-robin to the threads, in expert order.
            let chunks = min(Threading.count, busy)
            parallelFor(chunks: chunks, ExpertsRoundRobin(packed: packed, grouping: grouping, weights: weights,
                                                          inWidth: inWidth, outWidth: outWidth, out: out, chunks: chunks))
            return
        }
        if case .panels = first, weights.allSatisfy({ if case .panels = $0 { true } else { false } }) {
            PanelExpertsWork.run(packed, grouping: grouping, weights: weights, into: out)
            return
        }
        for expert in 0..<grouping.expertCount {
            let start = grouping.offsets[expert], count = grouping.offsets[expert + 1] - start
            guard count > 0 else { continue }
            weights[expert].apply(packed + start * inWidth, batch: count, into: out + start * outWidth)
        }
    }

    /// Decode-sized experts, one expert at a time per thread, dealt round-robin.
    @usableFromInline
    struct ExpertsRoundRobin: ChunkedWork {
        @usableFromInline let packed: UnsafePointer<Float>, grouping: ExpertGrouping, weights: [WeightMatrix]
        @usableFromInline let inWidth: Int, outWidth: Int, out: UnsafeMutablePointer<Float>, chunks: Int

        @inlinable
        init(packed: UnsafePointer<Float>, grouping: ExpertGrouping, weights: [WeightMatrix], inWidth: Int, outWidth: Int,
             out: UnsafeMutablePointer<Float>, chunks: Int) {
            self.packed = packed; self.grouping = grouping; self.weights = weights
            self.inWidth = inWidth; self.outWidth = outWidth; self.out = out; self.chunks = chunks
        }

        @inlinable
        func run(chunk: Int) {
            var seen = 0
            for expert in 0..<grouping.expertCount {
                let start = grouping.offsets[expert], count = grouping.offsets[expert + 1] - start
                guard count > 0 else { continue }
                defer { seen += 1 }
                guard seen % chunks == chunk else { continue }
                weights[expert].apply(packed + start * inWidth, batch: count, into: out + start * outWidth, parallel: false)
            }
        }
    }

    /// y[tokenOfRow[r]] += weightOfRow[r] · out[r] (or out[r] alone when not `weighted`: the
    /// weights were applied to the experts' input). No two threads write one token.
    @inlinable
    public static func scatterAdd(_ out: UnsafePointer<Float>, width: Int, grouping: ExpertGrouping, weighted: Bool = true,
                                  into y: UnsafeMutablePointer<Float>) {
        parallelFor(chunks: chunks(rows: grouping.rowCount, width: width),
                    Scatter(out: out, width: width, grouping: grouping, weighted: weighted, y: y))
    }

    /// Tokens `chunk` of `chunks`: each thread scans every packed row and adds only those whose
    /// token falls in its range, so no two threads write the same token.
    @usableFromInline
    struct Scatter: ChunkedWork {
        @usableFromInline let out: UnsafePointer<Float>, width: Int, grouping: ExpertGrouping, weighted: Bool
        @usableFromInline let y: UnsafeMutablePointer<Float>

        @inlinable
        init(out: UnsafePointer<Float>, width: Int, grouping: ExpertGrouping, weighted: Bool, y: UnsafeMutablePointer<Float>) {
            self.out = out; self.width = width; self.grouping = grouping; self.weighted = weighted; self.y = y
        }

        @inlinable
        func run(chunk: Int) {
            let rows = grouping.rowCount, chunks = GroupedMatmul.chunks(rows: rows, width: width)
            grouping.tokenOfRow.withUnsafeBufferPointer { tokens in
                grouping.weightOfRow.withUnsafeBufferPointer { weights in
                    // Tokens are numbered below rows; split that range evenly.
                    var largest = 0
                    for r in 0..<rows { largest = max(largest, Int(tokens[r])) }
                    let span = largest + 1
                    let low = span * chunk / chunks, high = span * (chunk + 1) / chunks
                    for r in 0..<rows {
                        let t = Int(tokens[r])
                        guard t >= low, t < high else { continue }
                        Elementwise.addScaled(out + r * width, by: weighted ? weights[r] : 1, into: y + t * width, count: width)
                    }
                }
            }
        }
    }


    /// y[t] = Σ over t's experts e of weight(t, e) · x[t] · W_eᵀ, for all tokens at once.
    public static func expertMatmul(_ x: Tensor, assignments: ExpertAssignments,
                                    weights: [WeightMatrix]) throws -> Tensor {
        let outWidth = weights.first?.rows ?? 0
        var y = try Tensor(zeros: [assignments.tokenCount, outWidth])
        try expertMatmul(x, assignments: assignments, weights: weights, workspace: GroupedMatmulWorkspace(), into: &y)
        return y
    }

    /// The same into an existing output (overwritten), with buffers kept in `workspace` between
    /// calls: the form for loops, where fresh buffers would cost page faults on every call.
    public static func expertMatmul(_ x: Tensor, assignments: ExpertAssignments, weights: [WeightMatrix],
                                    workspace: GroupedMatmulWorkspace, into y: inout Tensor) throws {
        guard weights.count == assignments.expertCount else {
            throw TensorError.shapeMismatch(operation: "grouped matmul: one weight per expert",
                                            shapes: [[weights.count], [assignments.expertCount]])
        }
        guard let first = weights.first else { return }
        for w in weights where w.rows != first.rows || w.cols != first.cols {
            throw TensorError.shapeMismatch(operation: "grouped matmul: expert weights differ",
                                            shapes: [[first.rows, first.cols], [w.rows, w.cols]])
        }
        guard x.rank == 2, x.shape[0] == assignments.tokenCount, x.shape[1] == first.cols else {
            throw TensorError.shapeMismatch(operation: "grouped matmul x·Wᵀ",
                                            shapes: [x.shape, [first.rows, first.cols]])
        }
        guard y.shape == [assignments.tokenCount, first.rows] else {
            throw TensorError.shapeMismatch(operation: "grouped matmul output", shapes: [x.shape, y.shape])
        }
        let grouping = ExpertGrouping(assignments)
        let (packedIn, packedOut) = workspace.reserve(rows: grouping.rowCount, inWidth: first.cols, outWidth: first.rows)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
                yp.update(repeating: 0, count: yb.count)
                gather(xp, width: first.cols, grouping: grouping, into: packedIn)
                multiply(packedIn, grouping: grouping, weights: weights, into: packedOut)
                scatterAdd(packedOut, width: first.rows, grouping: grouping, into: yp)
            }
        }
    }
}

/// Scratch buffers for `GroupedMatmul`, grown on demand and reused across calls.
public final class GroupedMatmulWorkspace: @unchecked Sendable {
    private var input: UnsafeMutablePointer<Float>?
    private var output: UnsafeMutablePointer<Float>?
    private var inputCapacity = 0
    private var outputCapacity = 0

    public init() {}

    /// Buffers of at least rows × inWidth and rows × outWidth floats.
    func reserve(rows: Int, inWidth: Int, outWidth: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        (grow(&input, &inputCapacity, max(1, rows * inWidth)), grow(&output, &outputCapacity, max(1, rows * outWidth)))
    }

    private func grow(_ buffer: inout UnsafeMutablePointer<Float>?, _ capacity: inout Int,
                      _ needed: Int) -> UnsafeMutablePointer<Float> {
        if let buffer, capacity >= needed { return buffer }
        buffer?.deallocate()
        let fresh = UnsafeMutablePointer<Float>.allocate(capacity: needed)
        fresh.initialize(repeating: 0, count: needed)
        buffer = fresh
        capacity = needed
        return fresh
    }

    deinit {
        input?.deallocate()
        output?.deallocate()
    }
}
